//! One condition of a binding's filter on one column, and how it is evaluated on a committed
//! value typed by its column: in the service, on the WAL's values, never under a subscriber's
//! role. `filter` reads the conditions from a binding's `filter` text; `match` and `imatch`
//! patterns are `pattern`'s.

use std::cmp::Ordering;

use super::like::like;
use super::pattern::Pattern;
use super::table::TypeKind;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Like,
    ILike,
    Is,
    /// `~`: a PostgreSQL regular expression (`pattern`).
    Match,
    /// `~*`: the same, case-insensitive.
    IMatch,
    /// `IS DISTINCT FROM`: like `neq`, but NULL is a value (distinct from any value).
    IsDistinct,
}

/// One condition on one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub negate: bool,
    /// The operand(s): one for every op but `in`.
    pub values: Vec<String>,
    /// For `match` and `imatch`: the operand, compiled.
    pub pattern: Option<Pattern>,
}

impl Condition {
    /// Evaluates the condition on a cell: `None` when the column is absent from the tuple
    /// (unchanged TOAST), `Some(None)` for SQL NULL. Absent columns and NULL comparisons fail,
    /// as in SQL's three-valued logic.
    pub fn matches(&self, kind: TypeKind, cell: Option<Option<&str>>) -> bool {
        let Some(cell) = cell else {
            return false;
        };
        if self.op == Op::Is {
            let result = match (self.values[0].as_str(), cell) {
                ("null", v) => v.is_none(),
                ("unknown", v) => v.is_none(),
                ("true", Some(v)) => compare(TypeKind::Bool, v, "true") == Some(Ordering::Equal),
                ("false", Some(v)) => compare(TypeKind::Bool, v, "false") == Some(Ordering::Equal),
                _ => false,
            };
            return result != self.negate;
        }
        if self.op == Op::IsDistinct {
            // NULL is distinct from every value; a value that does not parse as the column's
            // type decides nothing (fails closed, negated or not).
            let result = match cell {
                None => true,
                Some(v) => match compare(kind, v, &self.values[0]) {
                    Some(ord) => ord != Ordering::Equal,
                    None => return false,
                },
            };
            return result != self.negate;
        }
        let Some(cell) = cell else {
            return false;
        };
        let result = match self.op {
            Op::Like | Op::ILike => match like(cell, &self.values[0], self.op == Op::ILike) {
                Some(m) => m,
                None => return false,
            },
            Op::Match | Op::IMatch => match &self.pattern {
                Some(p) => p.is_match(cell),
                None => return false,
            },
            Op::In => self
                .values
                .iter()
                .any(|v| compare(kind, cell, v) == Some(Ordering::Equal)),
            op => match compare(kind, cell, &self.values[0]) {
                None => return false,
                Some(ord) => match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Neq => ord != Ordering::Equal,
                    Op::Lt => ord == Ordering::Less,
                    Op::Lte => ord != Ordering::Greater,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Gte => ord != Ordering::Less,
                    _ => false,
                },
            },
        };
        result != self.negate
    }
}

/// Compares a cell's text with a filter value as the column's type would; `None` when the
/// value does not parse as that type (the condition then fails).
pub fn compare(kind: TypeKind, cell: &str, value: &str) -> Option<Ordering> {
    match kind {
        TypeKind::Integer => {
            let (a, b) = (
                cell.trim().parse::<i128>().ok()?,
                value.trim().parse::<i128>().ok()?,
            );
            Some(a.cmp(&b))
        }
        TypeKind::Float | TypeKind::Numeric => {
            let (a, b) = (
                cell.trim().parse::<f64>().ok()?,
                value.trim().parse::<f64>().ok()?,
            );
            a.partial_cmp(&b)
        }
        TypeKind::Bool => {
            let parse = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
                "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
                _ => None,
            };
            Some(parse(cell)?.cmp(&parse(value)?))
        }
        TypeKind::Uuid => Some(
            cell.to_ascii_lowercase()
                .replace('-', "")
                .cmp(&value.to_ascii_lowercase().replace('-', "")),
        ),
        TypeKind::Timestamp => Some(normalize_time(cell).cmp(&normalize_time(value))),
        _ => Some(cell.cmp(value)),
    }
}

/// Makes `2024-01-02 03:04:05+00` and `2024-01-02T03:04:05+00:00` compare equal (UTC output only).
fn normalize_time(s: &str) -> String {
    let s = s.trim().replacen('T', " ", 1);
    let s = s.strip_suffix('Z').map(|x| format!("{x}+00")).unwrap_or(s);
    s.strip_suffix(":00")
        .filter(|x| x.len() > 19 && x.as_bytes().get(x.len() - 3) == Some(&b'+'))
        .map(str::to_owned)
        .unwrap_or(s)
        .replace(".000000", "")
}
