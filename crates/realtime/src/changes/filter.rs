//! `postgres_changes` binding filters (§3.5.5), read as Supabase Realtime reads them:
//! `col=op.value`, several joined by commas outside double quotes and parentheses and combined
//! with AND, an optional `not.` prefix; ops eq, neq, lt, lte, gt, gte, in, like, ilike, is,
//! match, imatch and isdistinct (the set current Supabase Realtime accepts). Any other op
//! (PostgREST's `fts`, `cs`, ...) is refused, with Supabase's reasons, so a filter that works here
//! works there. The conditions it reads are evaluated by `condition`.

use super::condition::{Condition, Op};
use super::pattern::Pattern;

/// Maximum number of values of an `in` filter, as Supabase allows.
pub const MAX_IN_VALUES: usize = 100;

/// Why a filter string is refused; the texts are Supabase's, which clients may show or match.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("Error parsing `filter` params: {0}")]
    Syntax(String),
    #[error("Error parsing `filter` params: in accepts at most 100 values")]
    TooManyValues,
}

/// Parses a binding's filter; an absent or blank filter has no conditions.
pub fn parse(filter: Option<&str>) -> Result<Vec<Condition>, FilterError> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(Vec::new());
    };
    split(filter, false)
        .into_iter()
        .map(|part| parse_one(part.trim()))
        .collect()
}

fn syntax(reason: impl Into<String>) -> FilterError {
    FilterError::Syntax(reason.into())
}

/// One `col=op.value` segment.
fn parse_one(part: &str) -> Result<Condition, FilterError> {
    if part.is_empty() {
        return Err(syntax(
            "filter must not contain empty segments (check for extra commas)",
        ));
    }
    let (column, rest) = part
        .split_once('=')
        .ok_or_else(|| syntax(inspect(&[part])))?;
    let (op, negate, value) = match rest.strip_prefix("not.") {
        Some(r) => {
            let (op, value) = r.split_once('.').ok_or_else(|| syntax(inspect_str(rest)))?;
            let op = op_named(op)
                .ok_or_else(|| syntax(format!("not.{op} is not a supported operator")))?;
            (op, true, value)
        }
        None => match rest.split_once('.') {
            Some((op, value)) => {
                let op = op_named(op).ok_or_else(|| syntax(inspect(&[op, value])))?;
                (op, false, value)
            }
            None => return Err(syntax(inspect(&[rest]))),
        },
    };
    let values = match op {
        Op::In => {
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| {
                    let name = if negate { "not_in" } else { "in" };
                    syntax(format!(
                        "`{name}` filter value must be wrapped by parentheses"
                    ))
                })?;
            let items: Vec<String> = split(inner, true).into_iter().map(unquote).collect();
            if items.len() > MAX_IN_VALUES {
                return Err(FilterError::TooManyValues);
            }
            items
        }
        _ => {
            let value = match value.strip_prefix('"') {
                Some(r) => r
                    .strip_suffix('"')
                    .ok_or_else(|| syntax("unmatched double-quote in filter value"))?,
                None => value,
            };
            if op == Op::Is {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "null" | "true" | "false" | "unknown") {
                    return Err(syntax(inspect(&["is", value])));
                }
                vec![v]
            } else {
                vec![value.to_owned()]
            }
        }
    };
    let pattern = match op {
        Op::Match | Op::IMatch => Some(Pattern::new(&values[0], op == Op::IMatch).map_err(
            |reason| {
                let name = if op == Op::IMatch { "imatch" } else { "match" };
                syntax(format!(
                    "invalid regular expression for {name} filter: {reason}"
                ))
            },
        )?),
        _ => None,
    };
    Ok(Condition {
        column: column.to_owned(),
        op,
        negate,
        values,
        pattern,
    })
}

fn op_named(name: &str) -> Option<Op> {
    Some(match name {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "in" => Op::In,
        "like" => Op::Like,
        "ilike" => Op::ILike,
        "is" => Op::Is,
        "match" => Op::Match,
        "imatch" => Op::IMatch,
        "isdistinct" => Op::IsDistinct,
        _ => return None,
    })
}

/// A string as Elixir's `inspect` prints it, the form Supabase's reasons quote: quoted with
/// escapes, or as its bytes (`<<97, 1>>`) when it holds a character Elixir deems unprintable.
fn inspect_str(s: &str) -> String {
    let escape = |c: char| match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '\n' => Some("\\n"),
        '\t' => Some("\\t"),
        '\r' => Some("\\r"),
        '\u{0B}' => Some("\\v"),
        '\u{08}' => Some("\\b"),
        '\u{0C}' => Some("\\f"),
        '\u{1B}' => Some("\\e"),
        '\u{07}' => Some("\\a"),
        _ => None,
    };
    if s.chars().any(|c| c.is_control() && escape(c).is_none()) {
        let bytes: Vec<String> = s.bytes().map(|b| b.to_string()).collect();
        return format!("<<{}>>", bytes.join(", "));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match escape(c) {
            Some(e) => out.push_str(e),
            None if c == '#' && chars.peek() == Some(&'{') => out.push_str("\\#"),
            None => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A list of strings as Elixir's `inspect` prints it: `["fts", "hey"]`.
fn inspect(items: &[&str]) -> String {
    let items: Vec<String> = items.iter().map(|s| inspect_str(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Splits on commas outside double quotes and parentheses. Between segments a quote simply
/// toggles (Supabase's scan); inside `in (...)`, whose items PostgreSQL reads as an array
/// literal, a backslash in quotes escapes the next character.
fn split(s: &str, array_items: bool) -> Vec<&str> {
    let (mut parts, mut depth, mut quoted, mut start, mut escaped) =
        (Vec::new(), 0u32, false, 0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted && array_items => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
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

/// One item of an `in` list, unquoted as an array literal's element is.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::table::TypeKind;

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
    fn refuses_bad_filters_with_supabases_reasons() {
        let reason = |f: &str| match parse(Some(f)) {
            Err(FilterError::Syntax(r)) => r,
            other => panic!("{f}: {other:?}"),
        };
        assert_eq!(reason("nope"), r#"["nope"]"#);
        assert_eq!(reason("undefined"), r#"["undefined"]"#);
        assert_eq!(reason("a=zz.1"), r#"["zz", "1"]"#);
        assert_eq!(reason("a=eq"), r#"["eq"]"#);
        assert_eq!(reason("subject=fts.hey"), r#"["fts", "hey"]"#);
        for op in ["fts", "cs", "ov"] {
            assert_eq!(reason(&format!("a={op}.x")), format!(r#"["{op}", "x"]"#));
        }
        assert_eq!(reason("a=not.zz.1"), "not.zz is not a supported operator");
        assert_eq!(reason("a=not.eq"), r#""not.eq""#);
        assert_eq!(
            reason("a=in.1,2"),
            "`in` filter value must be wrapped by parentheses"
        );
        assert_eq!(
            reason("a=not.in.1"),
            "`not_in` filter value must be wrapped by parentheses"
        );
        assert_eq!(
            reason(r#"a=eq."x"#),
            "unmatched double-quote in filter value"
        );
        assert_eq!(
            reason(r#"a=eq.""#),
            "unmatched double-quote in filter value"
        );
        assert_eq!(
            reason("a=eq.1,,b=eq.2"),
            "filter must not contain empty segments (check for extra commas)"
        );
        assert_eq!(
            reason("a=eq.1,"),
            "filter must not contain empty segments (check for extra commas)"
        );
        assert_eq!(
            reason(r#"a=x"y\"#),
            r#"["x\"y\\"]"#,
            "escaped as Elixir prints"
        );
        assert_eq!(reason("a=x\u{1}"), "[<<120, 1>>]", "unprintable: bytes");
        assert_eq!(reason("a=is.maybe"), r#"["is", "maybe"]"#);
        let many = format!(
            "a=in.({})",
            (0..101)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse(Some(&many)), Err(FilterError::TooManyValues));
        assert_eq!(parse(Some("  ")).unwrap(), vec![]);
    }

    #[test]
    fn splits_on_top_level_commas_and_ands() {
        let all = parse(Some(r#"label=like."a,b%",n=in.(1,2),x=eq.(p,q), y=gt.0"#)).unwrap();
        let parts: Vec<_> = all
            .iter()
            .map(|c| (c.column.as_str(), c.values.clone()))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("label", vec!["a,b%".to_owned()]),
                ("n", vec!["1".to_owned(), "2".to_owned()]),
                ("x", vec!["(p,q)".to_owned()]),
                ("y", vec!["0".to_owned()]),
            ]
        );
        let both = parse(Some("n=gt.1,label=like.a%")).unwrap();
        let row = |n: &str, label: &str| {
            both[0].matches(TypeKind::Integer, Some(Some(n)))
                && both[1].matches(TypeKind::Text, Some(Some(label)))
        };
        assert!(row("2", "abc"));
        assert!(!row("1", "abc"));
        assert!(!row("2", "xbc"));
    }

    #[test]
    fn like_and_ilike() {
        let c = one("label=like.a%");
        assert_eq!((c.op, c.negate), (Op::Like, false));
        assert!(c.matches(TypeKind::Text, Some(Some("abc"))));
        assert!(!c.matches(TypeKind::Text, Some(Some("Abc"))));
        assert!(one("label=ilike.A%").matches(TypeKind::Text, Some(Some("abc"))));
        assert!(one("label=ilike.ÉT_").matches(TypeKind::Text, Some(Some("été"))));
        assert!(one("label=not.like.a%").matches(TypeKind::Text, Some(Some("b"))));
        assert!(!one("label=not.ilike.A%").matches(TypeKind::Text, Some(Some("abc"))));
        // A quoted value keeps its backslashes: LIKE's own escape, as in Supabase.
        let pct = one(r#"label=like."100\%""#);
        assert_eq!(pct.values, vec![r"100\%"]);
        assert!(pct.matches(TypeKind::Text, Some(Some("100%"))));
        assert!(!pct.matches(TypeKind::Text, Some(Some("1000"))));
        assert!(one(r"label=like.a\_c").matches(TypeKind::Text, Some(Some("a_c"))));
        assert!(!one(r"label=like.a\_c").matches(TypeKind::Text, Some(Some("abc"))));
        assert!(!one(r"label=like.a\").matches(TypeKind::Text, Some(Some("a"))));
        assert!(
            one("n=like.1%").matches(TypeKind::Integer, Some(Some("12"))),
            "as printed"
        );
        for f in ["a=like.%", "a=ilike.%", "a=not.like.x", "a=not.ilike.x"] {
            assert!(!one(f).matches(TypeKind::Text, Some(None)), "{f} on NULL");
            assert!(!one(f).matches(TypeKind::Text, None), "{f} on absent");
        }
    }

    #[test]
    fn match_imatch_and_isdistinct() {
        let m = one("label=match.^po[s]t-");
        assert_eq!((m.op, m.negate), (Op::Match, false));
        assert!(m.matches(TypeKind::Text, Some(Some("post-1"))));
        assert!(!m.matches(TypeKind::Text, Some(Some("Post-1"))));
        assert!(one("label=imatch.^POST-").matches(TypeKind::Text, Some(Some("post-1"))));
        assert!(one("label=not.match.^a").matches(TypeKind::Text, Some(Some("b"))));
        assert!(!one("label=not.match.^a").matches(TypeKind::Text, Some(None)));
        assert!(one(r#"label=match."a,b""#).matches(TypeKind::Text, Some(Some("xa,b"))));
        let reason = |f: &str| match parse(Some(f)) {
            Err(FilterError::Syntax(r)) => r,
            other => panic!("{f}: {other:?}"),
        };
        assert!(
            reason("label=match.(a").starts_with("invalid regular expression for match filter: ")
        );
        assert!(reason(r"label=imatch.(a)\1")
            .starts_with("invalid regular expression for imatch filter: "));
        let d = one("n=isdistinct.1");
        assert_eq!(d.op, Op::IsDistinct);
        assert!(d.matches(TypeKind::Integer, Some(Some("2"))));
        assert!(
            !d.matches(TypeKind::Integer, Some(Some("01"))),
            "typed: 01 = 1"
        );
        assert!(
            d.matches(TypeKind::Integer, Some(None)),
            "NULL is distinct from 1"
        );
        assert!(
            !d.matches(TypeKind::Integer, None),
            "absent decides nothing"
        );
        let nd = one("n=not.isdistinct.1");
        assert!(nd.matches(TypeKind::Integer, Some(Some("1"))));
        assert!(!nd.matches(TypeKind::Integer, Some(None)));
        assert!(!one("n=isdistinct.x").matches(TypeKind::Integer, Some(Some("1"))));
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
