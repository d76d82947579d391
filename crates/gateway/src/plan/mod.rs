//! From a parsed request and the schema cache to one SQL statement. Names are checked here;
//! the SQL that comes out quotes every identifier and carries every value as a parameter.

mod computed;
mod condition;
mod embed;
mod expr;
pub mod read;
pub mod rpc;
pub mod write;

use std::collections::{BTreeSet, HashMap};

use crate::error::ApiError;
use crate::preferences::{Format, FormatKind};
use crate::query::{ApiQuery, Field, SelectItem};
use crate::schema_cache::{Column, SchemaCache, Table};
use crate::sql::Sql;

/// What the rows of a statement are read from.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// For error messages.
    pub name: &'a str,
    pub columns: &'a [Column],
    /// The table, when rows come from one (embeds need it).
    pub table: Option<&'a Table>,
    /// The schema of the table or function, for error messages.
    pub schema: &'a str,
    /// How deep the embed is (0 at the top): PostgREST aliases an embedded table
    /// `name_depth`, and PostgreSQL's 42703 names that alias.
    pub depth: usize,
}

impl<'a> Source<'a> {
    /// The rows of a table or view.
    pub fn table(table: &'a Table) -> Self {
        Source {
            name: &table.name,
            columns: &table.columns,
            table: Some(table),
            schema: &table.schema,
            depth: 0,
        }
    }

    /// The rows of a table embedded `depth` levels down.
    pub fn embedded(table: &'a Table, depth: usize) -> Self {
        Source {
            depth,
            ..Source::table(table)
        }
    }

    /// The column `name`, or 42703 when it has none.
    pub fn column(&self, name: &str) -> Result<&'a Column, ApiError> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ApiError::UnknownColumn {
                table: if self.depth == 0 {
                    self.name.to_owned()
                } else {
                    format!("{}_{}", self.name, self.depth)
                },
                column: name.to_owned(),
            })
    }
}

/// Builds one statement, numbering table aliases and remembering which embed paths of the query
/// string were used.
pub struct Builder<'a> {
    pub cache: &'a SchemaCache,
    pub query: &'a ApiQuery,
    pub sql: Sql,
    /// Each alias handed out, with the table and depth it stands for.
    aliases: HashMap<String, (String, usize)>,
    used_paths: BTreeSet<Vec<String>>,
}

impl<'a> Builder<'a> {
    /// A builder for one statement over `query`.
    pub fn new(cache: &'a SchemaCache, query: &'a ApiQuery) -> Self {
        Builder {
            cache,
            query,
            sql: Sql::default(),
            aliases: HashMap::new(),
            used_paths: BTreeSet::new(),
        }
    }

    /// The alias of `table` read `depth` embeds down, as PostgREST names it (and as plans
    /// show it): the table's name at the top, `name_depth` below (`cities_1`). Reads of the same
    /// table at the same depth are never nested, so they share it; a name another table already
    /// took, or one the statement uses itself, gets a `_n` suffix, so no alias hides another.
    pub fn table_alias(&mut self, table: &str, depth: usize) -> String {
        const RESERVED: [&str; 5] = ["_s", "_e", "pgrst_count", "pgrst_source", "pgrst_call"];
        let base = if depth == 0 {
            table.to_owned()
        } else {
            format!("{table}_{depth}")
        };
        let mut candidate = base.clone();
        for n in 2.. {
            match self.aliases.get(&candidate) {
                Some((t, d)) if t == table && *d == depth => break,
                None if !RESERVED.contains(&candidate.as_str()) => {
                    self.aliases
                        .insert(candidate.clone(), (table.to_owned(), depth));
                    break;
                }
                _ => candidate = format!("{base}_{n}"),
            }
        }
        candidate
    }

    /// Fails with PGRST108 when the query string filters or orders an embed it did not select.
    pub fn check_paths_used(&self) -> Result<(), ApiError> {
        for path in self.query.modifiers.keys() {
            if !path.is_empty() && !self.used_paths.contains(path) {
                return Err(ApiError::BadRequest {
                    code: "PGRST108",
                    message: format!(
                        "'{}' is not an embedded resource in this request",
                        path.join(".")
                    ),
                });
            }
        }
        Ok(())
    }
}

/// `*` becomes the table's columns, so helper columns of a CTE never reach the body.
pub fn expand_star(table: &Table, items: &[SelectItem]) -> Vec<SelectItem> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::Star => out.extend(table.columns.iter().map(|c| SelectItem::Column {
                field: Field {
                    name: c.name.clone(),
                    path: vec![],
                },
                alias: None,
                cast: None,
            })),
            other => out.push(other.clone()),
        }
    }
    out
}

/// The response GUCs as the statement's last two columns: the projection runs after the rows
/// (and any function they called), so it sees what SQL set.
pub fn response_gucs(sql: &mut Sql) {
    sql.push(
        ", current_setting('response.status', true), current_setting('response.headers', true)",
    );
}

/// The expression that turns the rows of `_s` into the response body.
pub fn body_expression(sql: &mut Sql, format: Format, scalar: bool) {
    let rows = if scalar { "_s.pgrst_scalar" } else { "_s" };
    let agg = format!("json_agg({rows})");
    match format.kind {
        FormatKind::Json if format.strip_nulls => {
            sql.push(&format!(
                "coalesce((select json_agg(json_strip_nulls(x)) from json_array_elements({agg}) x), '[]')::text"
            ));
        }
        FormatKind::Json => {
            sql.push(&format!("coalesce({agg}, '[]')::text"));
        }
        FormatKind::Object if format.strip_nulls => {
            sql.push(&format!("json_strip_nulls({agg}->0)::text"));
        }
        FormatKind::Object => {
            sql.push(&format!("({agg}->0)::text"));
        }
        FormatKind::GeoJson => {
            // As PostgREST: PostGIS's ST_AsGeoJSON(record) over each row, found through the
            // search_path (PostGIS lives in `extensions` on Supabase). Without PostGIS this is
            // PostgreSQL's 42883, which PostgREST answers with 404 too.
            sql.push(
                "json_build_object('type', 'FeatureCollection', 'features', \
                 coalesce(json_agg(ST_AsGeoJSON(_s)::json), '[]'))::text",
            );
        }
        FormatKind::Csv => {
            // As PostgREST writes CSV: the first row's keys as the header, a newline, then each
            // row as PostgreSQL's record text without its parentheses, so fields are quoted by
            // the record rules (commas, quotes, spaces, parentheses, backslashes, the empty
            // string), NULL is an empty field and arrays and json are their text.
            sql.push(
                "coalesce((select string_agg(k, ',' order by o) \
                 from json_object_keys(json_agg(_s)->0) with ordinality k(k, o)), '') \
                 || E'\\n' || coalesce(string_agg(substring(_s::text, 2, length(_s::text) - 2), E'\\n'), '')",
            );
        }
    }
}
