//! `postgres_changes` binding filters (§3.5.5): `col=op.value`, several joined by commas and
//! combined with AND, an optional `not.` prefix; ops eq, neq, lt, lte, gt, gte, in and is.
//! Evaluated in the service against the values of the WAL record, never under a subscriber's role.

use std::cmp::Ordering;

use super::catalog::TypeKind;

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
    Is,
}

/// One condition on one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub column: String,
    pub op: Op,
    pub negate: bool,
    /// The operand(s): one for every op but `in`.
    pub values: Vec<String>,
}

/// Maximum number of values of an `in` filter, as Supabase allows.
pub const MAX_IN_VALUES: usize = 100;

/// Why a filter string is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("Error parsing `filter` params: {0}")]
    Syntax(String),
    #[error("Error parsing `filter` params: in accepts at most 100 values")]
    TooManyValues,
}

/// Parses a binding's filter; an absent or empty filter has no conditions.
pub fn parse(filter: Option<&str>) -> Result<Vec<Condition>, FilterError> {
    let Some(filter) = filter.filter(|f| !f.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    split_top_level(filter)
        .into_iter()
        .map(|part| parse_one(part.trim()))
        .collect()
}

fn parse_one(part: &str) -> Result<Condition, FilterError> {
    let syntax = || FilterError::Syntax(format!("{part:?}"));
    let (column, rest) = part.split_once('=').ok_or_else(syntax)?;
    let (negate, rest) = match rest.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (op, value) = rest.split_once('.').ok_or_else(syntax)?;
    let op = match op {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "in" => Op::In,
        "is" => Op::Is,
        _ => return Err(syntax()),
    };
    let column = column.trim();
    if column.is_empty() {
        return Err(syntax());
    }
    let values = if op == Op::In {
        let inner = value
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(syntax)?;
        let items: Vec<String> = split_top_level(inner).into_iter().map(unquote).collect();
        if items.len() > MAX_IN_VALUES {
            return Err(FilterError::TooManyValues);
        }
        items
    } else if op == Op::Is {
        let v = value.to_ascii_lowercase();
        if !matches!(v.as_str(), "null" | "true" | "false" | "unknown") {
            return Err(syntax());
        }
        vec![v]
    } else {
        vec![unquote(value)]
    };
    Ok(Condition {
        column: column.to_owned(),
        op,
        negate,
        values,
    })
}

/// Splits on commas outside double quotes and parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quoted, mut start, mut escaped) =
        (Vec::new(), 0i32, false, 0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_owned(),
    }
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
        let Some(cell) = cell else {
            return false;
        };
        let result = match self.op {
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
                    Op::In | Op::Is => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(f: &str) -> Condition {
        let mut all = parse(Some(f)).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn parses_each_operator() {
        for (text, op) in [
            ("a=eq.1", Op::Eq),
            ("a=neq.1", Op::Neq),
            ("a=lt.1", Op::Lt),
            ("a=lte.1", Op::Lte),
            ("a=gt.1", Op::Gt),
            ("a=gte.1", Op::Gte),
        ] {
            let c = one(text);
            assert_eq!(
                (c.column.as_str(), c.op, c.values.clone()),
                ("a", op, vec!["1".into()])
            );
        }
        let c = one(r#"name=in.(a,"b,c",d)"#);
        assert_eq!(c.op, Op::In);
        assert_eq!(c.values, vec!["a", "b,c", "d"]);
        assert!(one("a=not.eq.1").negate);
        assert_eq!(parse(None).unwrap(), vec![]);
        assert_eq!(parse(Some("id=gt.0,id=lt.100")).unwrap().len(), 2);
    }

    #[test]
    fn refuses_bad_filters() {
        assert!(parse(Some("nope")).is_err());
        assert!(parse(Some("a=zz.1")).is_err());
        assert!(parse(Some("a=in.1,2")).is_err());
        let many = format!(
            "a=in.({})",
            (0..101)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse(Some(&many)), Err(FilterError::TooManyValues));
    }

    #[test]
    fn compares_by_type() {
        let gt = one("n=gt.9");
        assert!(gt.matches(TypeKind::Integer, Some(Some("10"))));
        assert!(
            !gt.matches(TypeKind::Text, Some(Some("10"))),
            "text compares as text"
        );
        assert!(one("f=lte.1.5").matches(TypeKind::Float, Some(Some("1.50"))));
        assert!(one("b=eq.true").matches(TypeKind::Bool, Some(Some("t"))));
        assert!(one("u=eq.ABCDEF00-0000-0000-0000-000000000000").matches(
            TypeKind::Uuid,
            Some(Some("abcdef00-0000-0000-0000-000000000000"))
        ));
        assert!(one("s=in.(queued,running)").matches(TypeKind::Text, Some(Some("running"))));
        assert!(!one("s=in.(queued,running)").matches(TypeKind::Text, Some(Some("failed"))));
        assert!(one("t=eq.2024-01-02T03:04:05+00:00")
            .matches(TypeKind::Timestamp, Some(Some("2024-01-02 03:04:05+00"))));
    }

    #[test]
    fn null_and_absent_cells_fail_closed() {
        for f in ["a=eq.x", "a=neq.x", "a=not.eq.x", "a=lt.x", "a=in.(x)"] {
            assert!(!one(f).matches(TypeKind::Text, Some(None)), "{f} on NULL");
            assert!(!one(f).matches(TypeKind::Text, None), "{f} on absent");
        }
        assert!(one("a=is.null").matches(TypeKind::Text, Some(None)));
        assert!(!one("a=is.null").matches(TypeKind::Text, Some(Some("x"))));
        assert!(one("a=not.is.null").matches(TypeKind::Text, Some(Some("x"))));
    }
}
