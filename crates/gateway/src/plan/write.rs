//! POST (insert, upsert), PATCH, DELETE and PUT: one statement, the write in a CTE, the
//! representation built over the rows it returned.

use serde_json::{Map, Value};

use super::{body_expression, Builder, Source};
use crate::error::ApiError;
use crate::preferences::{Format, Resolution};
use crate::query::SelectItem;
use crate::schema_cache::Table;
use crate::sql::Sql;

/// The kind of write.
pub enum WriteKind {
    Insert {
        rows: Vec<Map<String, Value>>,
        resolution: Option<Resolution>,
        missing_default: bool,
    },
    Update {
        row: Map<String, Value>,
    },
    Delete,
}

/// Builds the statement. Its columns: total, rows, body, rows newly inserted, location.
pub fn build(
    b: &mut Builder,
    table: &Table,
    kind: &WriteKind,
    format: Option<Format>,
) -> Result<Sql, ApiError> {
    let star = [SelectItem::Star];
    let items: Vec<SelectItem> =
        super::expand_star(table, b.query.select.as_deref().unwrap_or(&star));
    let src = Source::table(table);
    let mut has_inserted = false;
    b.sql.push("WITH ");
    match kind {
        WriteKind::Insert {
            rows,
            resolution,
            missing_default,
        } => {
            has_inserted = true;
            insert(b, table, rows, *resolution, *missing_default)?;
        }
        WriteKind::Update { row } => update(b, table, &src, &items, row)?,
        WriteKind::Delete => {
            b.sql
                .push("pgrst_source AS (DELETE FROM ")
                .qualified(&table.schema, &table.name)
                .push(" AS \"t0\"");
            b.where_clause(&src, "t0", &items, &[])?;
            b.sql.push(" RETURNING \"t0\".*)");
        }
    }
    b.sql.push(" SELECT count(*), count(*), ");
    match format {
        Some(f) => body_expression(&mut b.sql, f, false),
        None => {
            b.sql.push("NULL::text");
        }
    }
    if has_inserted {
        b.sql
            .push(", (SELECT count(*) FROM pgrst_source WHERE pgrst_inserted)");
    } else {
        b.sql.push(", NULL::int8");
    }
    b.sql.push(", ");
    location(&mut b.sql, table);
    super::response_gucs(&mut b.sql);
    let alias = b.table_alias(&table.name, 0);
    b.sql.push(" FROM (SELECT ");
    b.select_list(&src, &alias, &items, &[])?;
    b.sql
        .push(" FROM pgrst_source AS ")
        .ident(&alias)
        .push(") _s");
    b.check_paths_used()?;
    Ok(std::mem::take(&mut b.sql))
}

/// The columns a write names, each checked against the table (PGRST204).
pub fn checked_columns(
    table: &Table,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<&str>, ApiError> {
    let mut out: Vec<&str> = Vec::new();
    for name in names {
        let column = table
            .column(&name)
            .ok_or_else(|| ApiError::ColumnNotFound {
                table: table.name.clone(),
                column: name.clone(),
            })?;
        if !out.contains(&column.name.as_str()) {
            out.push(&column.name);
        }
    }
    Ok(out)
}

fn insert(
    b: &mut Builder,
    table: &Table,
    rows: &[Map<String, Value>],
    resolution: Option<Resolution>,
    missing_default: bool,
) -> Result<(), ApiError> {
    let named: Vec<String> = match &b.query.columns {
        Some(cols) => cols.clone(),
        None => {
            let mut keys: Vec<String> = Vec::new();
            for row in rows {
                for k in row.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            keys
        }
    };
    let columns = checked_columns(table, named)?;
    let conflict: Vec<String> = match &b.query.on_conflict {
        Some(cols) => checked_columns(table, cols.clone())?
            .into_iter()
            .map(str::to_owned)
            .collect(),
        None => table.primary_key.clone(),
    };
    let body = Value::Array(rows.iter().map(|m| Value::Object(m.clone())).collect());
    b.sql
        .push("pgrst_source AS (INSERT INTO ")
        .qualified(&table.schema, &table.name)
        .push(" AS \"pgrst_t\"");
    if columns.is_empty() {
        if rows.len() == 1 {
            // One row of defaults only; `INSERT ... SELECT` with no columns is not allowed.
            b.sql.push(" DEFAULT VALUES");
        } else {
            b.sql
                .push(" SELECT FROM json_array_elements(")
                .param(body.to_string())
                .push("::json)");
        }
    } else {
        b.sql.push(" (");
        push_list(&mut b.sql, &columns);
        b.sql.push(") SELECT ");
        push_list(&mut b.sql, &columns);
        b.sql.push(" FROM json_populate_recordset(NULL::");
        b.sql.qualified(&table.schema, &table.name);
        b.sql.push(", ");
        let defaults: Vec<(&str, &str)> = columns
            .iter()
            .filter_map(|c| {
                let column = table.column(c)?;
                Some((column.name.as_str(), column.default.as_deref()?))
            })
            .collect();
        if missing_default && !defaults.is_empty() {
            // PostgREST's missing=default: each row is the listed columns' defaults overlaid by
            // the keys it has, so an omitted column gets its DEFAULT on insert and, through
            // EXCLUDED, on conflict too. The expressions are the catalog's, never the request's.
            b.sql.push("(SELECT coalesce(jsonb_agg(jsonb_build_object(");
            for (i, (name, default)) in defaults.iter().enumerate() {
                if i > 0 {
                    b.sql.push(", ");
                }
                b.sql.param(*name).push("::text, (").push(default).push(")");
            }
            b.sql
                .push(") || \"pgrst_row\" ORDER BY \"pgrst_ord\"), '[]')::json FROM jsonb_array_elements(")
                .param(body.to_string())
                .push("::jsonb) WITH ORDINALITY AS \"pgrst_rows\"(\"pgrst_row\", \"pgrst_ord\"))");
        } else {
            b.sql.param(body.to_string()).push("::json");
        }
        b.sql.push(")");
    }
    match resolution {
        Some(res) if !conflict.is_empty() => {
            b.sql.push(" ON CONFLICT (");
            push_list(&mut b.sql, &conflict);
            b.sql.push(")");
            if res == Resolution::IgnoreDuplicates || columns.is_empty() {
                b.sql.push(" DO NOTHING");
            } else {
                b.sql.push(" DO UPDATE SET ");
                for (j, c) in columns.iter().enumerate() {
                    if j > 0 {
                        b.sql.push(", ");
                    }
                    b.sql.ident(c).push(" = EXCLUDED.").ident(c);
                }
            }
        }
        _ => {}
    }
    b.sql
        .push(" RETURNING \"pgrst_t\".*, (\"pgrst_t\".xmax = 0) AS pgrst_inserted)");
    Ok(())
}

fn update(
    b: &mut Builder,
    table: &Table,
    src: &Source,
    items: &[SelectItem],
    row: &Map<String, Value>,
) -> Result<(), ApiError> {
    let columns = checked_columns(table, row.keys().cloned())?;
    if columns.is_empty() {
        b.sql
            .push("pgrst_source AS (SELECT * FROM ")
            .qualified(&table.schema, &table.name)
            .push(" WHERE false)");
        return Ok(());
    }
    b.sql
        .push("pgrst_source AS (UPDATE ")
        .qualified(&table.schema, &table.name)
        .push(" AS \"t0\" SET ");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            b.sql.push(", ");
        }
        b.sql.ident(c).push(" = \"pgrst_body\".").ident(c);
    }
    b.sql.push(" FROM json_populate_record(NULL::");
    b.sql.qualified(&table.schema, &table.name);
    b.sql
        .push(", ")
        .param(Value::Object(row.clone()).to_string())
        .push("::json) AS \"pgrst_body\"");
    b.where_clause(src, "t0", items, &[])?;
    b.sql.push(" RETURNING \"t0\".*)");
    Ok(())
}

/// `pk=eq.value&...` of the first row, for the Location header.
fn location(sql: &mut Sql, table: &Table) {
    if table.primary_key.is_empty() {
        sql.push("NULL::text");
        return;
    }
    sql.push("(SELECT concat_ws('&'");
    for pk in &table.primary_key {
        sql.push(", ")
            .param(format!("{pk}=eq."))
            .push("::text || ")
            .ident(pk)
            .push("::text");
    }
    sql.push(") FROM pgrst_source LIMIT 1)");
}

fn push_list<S: AsRef<str>>(sql: &mut Sql, names: &[S]) {
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(n.as_ref());
    }
}
