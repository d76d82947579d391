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
    pub count: bool,
    pub max_rows: Option<u64>,
}

/// `SELECT total, rows, body FROM (SELECT ... FROM table WHERE ... ORDER ... LIMIT ...) _s`.
pub fn build(b: &mut Builder, table: &Table, opts: &ReadOptions) -> Result<Sql, ApiError> {
    let star = [SelectItem::Star];
    let items: &[SelectItem] = b.query.select.as_deref().unwrap_or(&star);
    let src = Source::table(table);
    let root = b.query.root();
    b.sql.push("SELECT ");
    if opts.count {
        let alias = b.alias();
        b.sql
            .push("(SELECT count(*) FROM ")
            .qualified(&table.schema, &table.name)
            .push(" AS ")
            .ident(&alias);
        b.where_clause(&src, &alias, items, &[])?;
        b.sql.push(")");
    } else {
        b.sql.push("NULL::int8");
    }
    b.sql.push(", count(*), ");
    body_expression(&mut b.sql, opts.format, false);
    super::response_gucs(&mut b.sql);
    let alias = b.alias();
    b.sql.push(" FROM (SELECT ");
    b.select_list(&src, &alias, items, &[])?;
    b.sql
        .push(" FROM ")
        .qualified(&table.schema, &table.name)
        .push(" AS ")
        .ident(&alias);
    b.where_clause(&src, &alias, items, &[])?;
    b.order_by(&src, &alias, &root.order)?;
    b.limit_offset(root.limit, root.offset, opts.max_rows);
    b.sql.push(") _s");
    b.check_paths_used()?;
    Ok(std::mem::take(&mut b.sql))
}
