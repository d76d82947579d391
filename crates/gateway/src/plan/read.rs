//! GET and HEAD on a table or view: one statement returning the total (when counted), the
//! number of rows and the body, built by PostgreSQL.

use super::{body_expression, Builder, Source};
use crate::error::ApiError;
use crate::preferences::Format;
use crate::query::SelectItem;
use crate::schema_cache::Table;
use crate::sql::Sql;

/// Options of a read that do not come from the query string.
pub struct ReadOptions {
    pub format: Format,
    /// `Prefer: count=exact|planned|estimated`.
    pub count: Option<&'static str>,
    pub max_rows: Option<u64>,
}

/// Above this many rows, `count=estimated` answers with the planner's estimate.
pub const ESTIMATE_THRESHOLD: u64 = 1000;

/// The statement, and the query whose plan estimates the total for planned/estimated counts.
pub struct ReadPlan {
    pub sql: Sql,
    pub explain: Option<Sql>,
}

/// `SELECT total, rows, body FROM (SELECT ... FROM table WHERE ... ORDER ... LIMIT ...) _s`.
pub fn build(b: &mut Builder, table: &Table, opts: &ReadOptions) -> Result<ReadPlan, ApiError> {
    let star = [SelectItem::Star];
    let items: &[SelectItem] = b.query.select.as_deref().unwrap_or(&star);
    let src = Source::table(table);
    let root = b.query.root();
    let explain = match opts.count {
        Some("planned" | "estimated") => {
            let mut e = Builder::new(b.cache, b.query);
            let alias = e.table_alias(&table.name, 0);
            e.sql
                .push("SELECT 1 FROM ")
                .qualified(&table.schema, &table.name)
                .push(" AS ")
                .ident(&alias);
            e.where_clause(&src, &alias, items, &[])?;
            Some(e.sql)
        }
        _ => None,
    };
    b.sql.push("SELECT ");
    match opts.count {
        Some(kind @ ("exact" | "estimated")) => {
            let alias = b.table_alias(&table.name, 0);
            b.sql.push("(SELECT count(*) FROM (SELECT 1 FROM ");
            b.sql
                .qualified(&table.schema, &table.name)
                .push(" AS ")
                .ident(&alias);
            b.where_clause(&src, &alias, items, &[])?;
            if kind == "estimated" {
                // Counting stops past the threshold; the plan's estimate answers beyond it.
                b.sql.push(&format!(" LIMIT {}", ESTIMATE_THRESHOLD + 1));
            }
            b.sql.push(") pgrst_count)");
        }
        _ => {
            b.sql.push("NULL::int8");
        }
    }
    b.sql.push(", count(*), ");
    body_expression(&mut b.sql, opts.format, false);
    super::response_gucs(&mut b.sql);
    let alias = b.table_alias(&table.name, 0);
    b.sql.push(" FROM (SELECT ");
    b.select_list(&src, &alias, items, &[])?;
    b.sql
        .push(" FROM ")
        .qualified(&table.schema, &table.name)
        .push(" AS ")
        .ident(&alias);
    b.where_clause(&src, &alias, items, &[])?;
    b.group_by(&src, &alias, items)?;
    b.order_by(&src, &alias, items, &[], &root.order)?;
    b.limit_offset(root.limit, root.offset, opts.max_rows);
    b.sql.push(") _s");
    b.check_paths_used()?;
    Ok(ReadPlan {
        sql: std::mem::take(&mut b.sql),
        explain,
    })
}
