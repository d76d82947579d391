//! A row as the WAL carried it, the unit every step of the pipeline reads.

use std::sync::Arc;

/// Column name and text value (`None` = NULL). Columns missing from the list were not sent
/// (unchanged TOAST).
pub type Row = Vec<(Arc<str>, Option<String>)>;

/// The cell of `column`: `None` when the column is absent (unchanged TOAST), `Some(None)` for
/// NULL.
pub fn cell<'a>(row: &'a Row, column: &str) -> Option<Option<&'a str>> {
    row.iter()
        .find(|(n, _)| &**n == column)
        .map(|(_, v)| v.as_deref())
}
