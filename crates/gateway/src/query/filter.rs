//! Filters (§1.4): `col=op.value`, `not.`, `any`/`all`, and `or=`/`and=` trees nested at any depth.

use super::{parse_field, split_logic_list, split_top_level, Field, ParseError};

/// A filter or a logical tree of filters.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Filter {
        field: Field,
        negate: bool,
        op: Operation,
    },
    Tree {
        and: bool,
        negate: bool,
        children: Vec<Condition>,
    },
}

/// The operator and its operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// A binary operator with one value (`eq.v`, `cs.{a}`, `like.a*`).
    Binary { op: Operator, value: String },
    /// `eq(any).{a,b}`: the operator against any/all elements of an array literal.
    Quantified {
        op: Operator,
        all: bool,
        array: String,
    },
    /// `in.(a,b,"c,d")`.
    In(Vec<String>),
    /// `is.null|true|false|unknown|not_null`.
    Is(IsValue),
    /// `fts(config).query` and its plain, phrase and websearch variants.
    Fts {
        kind: FtsKind,
        config: Option<String>,
        query: String,
    },
}

/// Binary operators, by their PostgREST names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    Match,
    Imatch,
    IsDistinct,
    Contains,
    ContainedBy,
    Overlaps,
    StrictlyRight,
    NotExtendLeft,
    StrictlyLeft,
    NotExtendRight,
    Adjacent,
}

impl Operator {
    fn from_name(name: &str) -> Option<Self> {
        use Operator::*;
        Some(match name {
            "eq" => Eq,
            "neq" => Neq,
            "gt" => Gt,
            "gte" => Gte,
            "lt" => Lt,
            "lte" => Lte,
            "like" => Like,
            "ilike" => Ilike,
            "match" => Match,
            "imatch" => Imatch,
            "isdistinct" => IsDistinct,
            "cs" => Contains,
            "cd" => ContainedBy,
            "ov" => Overlaps,
            "sr" => StrictlyRight,
            "nxl" => NotExtendLeft,
            "sl" => StrictlyLeft,
            "nxr" => NotExtendRight,
            "adj" => Adjacent,
            _ => return None,
        })
    }

    /// The SQL operator; a fixed string, never user text.
    pub fn sql(self) -> &'static str {
        use Operator::*;
        match self {
            Eq => "=",
            Neq => "<>",
            Gt => ">",
            Gte => ">=",
            Lt => "<",
            Lte => "<=",
            Like => "LIKE",
            Ilike => "ILIKE",
            Match => "~",
            Imatch => "~*",
            IsDistinct => "IS DISTINCT FROM",
            Contains => "@>",
            ContainedBy => "<@",
            Overlaps => "&&",
            StrictlyRight => ">>",
            NotExtendLeft => "&>",
            StrictlyLeft => "<<",
            NotExtendRight => "&<",
            Adjacent => "-|-",
        }
    }

    fn quantifiable(self) -> bool {
        use Operator::*;
        matches!(
            self,
            Eq | Neq | Gt | Gte | Lt | Lte | Like | Ilike | Match | Imatch
        )
    }

    /// Like and ilike accept `*` for `%`.
    pub fn is_like(self) -> bool {
        matches!(self, Operator::Like | Operator::Ilike)
    }
}

/// The right-hand side of `IS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

impl IsValue {
    /// The SQL after `IS`; a fixed string.
    pub fn sql(self) -> &'static str {
        match self {
            IsValue::Null => "NULL",
            IsValue::NotNull => "NOT NULL",
            IsValue::True => "TRUE",
            IsValue::False => "FALSE",
            IsValue::Unknown => "UNKNOWN",
        }
    }
}

/// Which `to_tsquery` function a text search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtsKind {
    Fts,
    Plain,
    Phrase,
    Websearch,
}

impl FtsKind {
    /// The function's name; a fixed string.
    pub fn function(self) -> &'static str {
        match self {
            FtsKind::Fts => "to_tsquery",
            FtsKind::Plain => "plainto_tsquery",
            FtsKind::Phrase => "phraseto_tsquery",
            FtsKind::Websearch => "websearch_to_tsquery",
        }
    }
}

fn error(details: impl Into<String>) -> ParseError {
    ParseError::new("failed to parse filter", details)
}

/// Parses a filter's value (`not.eq.5`) for the column `field`.
pub fn parse_filter(field: Field, value: &str) -> Result<Condition, ParseError> {
    let (negate, op) = parse_operation(value, false)?;
    Ok(Condition::Filter { field, negate, op })
}

/// Parses `[not.]op[(mod)].value`; inside a tree, a double-quoted value is unquoted.
fn parse_operation(value: &str, in_tree: bool) -> Result<(bool, Operation), ParseError> {
    let (negate, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (word, operand) = rest
        .split_once('.')
        .ok_or_else(|| error(format!("expected \"operator.value\" in \"{value}\"")))?;
    let (name, modifier) = match word.split_once('(') {
        Some((name, m)) => (
            name,
            Some(
                m.strip_suffix(')')
                    .ok_or_else(|| error(format!("unclosed modifier in \"{word}\"")))?,
            ),
        ),
        None => (word, None),
    };
    let unquote = |s: &str| {
        if in_tree {
            unquote_value(s)
        } else {
            s.to_owned()
        }
    };
    let op = match name {
        "in" if modifier.is_none() => Operation::In(parse_list(operand)?),
        "is" if modifier.is_none() => Operation::Is(match operand.to_ascii_lowercase().as_str() {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            _ => return Err(error(format!("unknown value \"{operand}\" for \"is\""))),
        }),
        "fts" | "plfts" | "phfts" | "wfts" => Operation::Fts {
            kind: match name {
                "fts" => FtsKind::Fts,
                "plfts" => FtsKind::Plain,
                "phfts" => FtsKind::Phrase,
                _ => FtsKind::Websearch,
            },
            config: modifier.map(str::to_owned),
            query: unquote(operand),
        },
        _ => {
            let op = Operator::from_name(name)
                .ok_or_else(|| error(format!("unknown operator \"{name}\"")))?;
            match modifier {
                None => Operation::Binary {
                    op,
                    value: unquote(operand),
                },
                Some(m @ ("any" | "all")) if op.quantifiable() => Operation::Quantified {
                    op,
                    all: m == "all",
                    array: unquote(operand),
                },
                Some(m) => {
                    return Err(error(format!(
                        "modifier \"{m}\" is not allowed on \"{name}\""
                    )))
                }
            }
        }
    };
    Ok((negate, op))
}

/// Parses `(a,b,"c,d")` into its elements.
fn parse_list(operand: &str) -> Result<Vec<String>, ParseError> {
    let inner = operand
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| error(format!("expected a list in parentheses, got \"{operand}\"")))?;
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    Ok(split_top_level(inner)?
        .into_iter()
        .map(|s| unquote_value(&s))
        .collect())
}

/// Removes double quotes around a value, honouring `\"` and `\\`.
fn unquote_value(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Trees nest no deeper than this.
const MAX_DEPTH: usize = 16;

/// Parses the value of an `or=` / `and=` key: `(a.eq.1,and(b.gt.2,c.not.lt.3))`.
pub fn parse_tree(and: bool, negate: bool, value: &str) -> Result<Condition, ParseError> {
    tree(and, negate, value, 0)
}

fn tree(and: bool, negate: bool, value: &str, depth: usize) -> Result<Condition, ParseError> {
    if depth > MAX_DEPTH {
        return Err(error("logic tree nested too deeply"));
    }
    let inner = value
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| error(format!("expected a parenthesised list, got \"{value}\"")))?;
    let mut children = Vec::new();
    for part in split_logic_list(inner)? {
        children.push(tree_element(&part, depth)?);
    }
    if children.is_empty() {
        return Err(error("empty logic tree"));
    }
    Ok(Condition::Tree {
        and,
        negate,
        children,
    })
}

fn tree_element(part: &str, depth: usize) -> Result<Condition, ParseError> {
    for (prefix, and, negate) in [
        ("and(", true, false),
        ("or(", false, false),
        ("not.and(", true, true),
        ("not.or(", false, true),
    ] {
        if part.starts_with(prefix) {
            return tree(and, negate, &part[prefix.len() - 1..], depth + 1);
        }
    }
    let (field, rest) = parse_field(part)?;
    let rest = rest
        .strip_prefix('.')
        .ok_or_else(|| error(format!("expected \"column.operator.value\" in \"{part}\"")))?;
    let (negate, op) = parse_operation(rest, true)?;
    Ok(Condition::Filter { field, negate, op })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Field {
        Field {
            name: name.into(),
            path: vec![],
        }
    }

    #[test]
    fn operators_not_and_modifiers() {
        let c = parse_filter(f("a"), "not.eq.5").unwrap();
        assert_eq!(
            c,
            Condition::Filter {
                field: f("a"),
                negate: true,
                op: Operation::Binary {
                    op: Operator::Eq,
                    value: "5".into()
                }
            }
        );
        let c = parse_filter(f("a"), "in.(1,2,\"a,b\")").unwrap();
        let Condition::Filter {
            op: Operation::In(list),
            ..
        } = c
        else {
            panic!()
        };
        assert_eq!(list, vec!["1", "2", "a,b"]);
        assert!(matches!(
            parse_filter(f("a"), "like(any).{a%,b%}").unwrap(),
            Condition::Filter {
                op: Operation::Quantified { all: false, .. },
                ..
            }
        ));
        assert!(matches!(
            parse_filter(f("a"), "wfts(english).cat & dog").unwrap(),
            Condition::Filter {
                op: Operation::Fts {
                    kind: FtsKind::Websearch,
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            parse_filter(f("a"), "is.null").unwrap(),
            Condition::Filter {
                op: Operation::Is(IsValue::Null),
                ..
            }
        ));
        // A value may itself contain dots.
        let Condition::Filter {
            op: Operation::Binary { value, .. },
            ..
        } = parse_filter(f("a"), "eq.1.5").unwrap()
        else {
            panic!()
        };
        assert_eq!(value, "1.5");
    }

    #[test]
    fn bad_filters_are_errors() {
        for bad in [
            "",
            "eq",
            "nope.1",
            "is.maybe",
            "in.1,2",
            "cs(any).{}",
            "eq(any",
            "in.(\"a)",
        ] {
            assert!(parse_filter(f("a"), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nested_trees() {
        let c = parse_tree(
            false,
            false,
            "(a.eq.1,and(b.gt.2,c.not.lt.3),name.eq.\"x,y\")",
        )
        .unwrap();
        let Condition::Tree { and, children, .. } = c else {
            panic!()
        };
        assert!(!and);
        assert_eq!(children.len(), 3);
        assert!(matches!(&children[1], Condition::Tree { and: true, .. }));
        let Condition::Filter {
            op: Operation::Binary { value, .. },
            ..
        } = &children[2]
        else {
            panic!()
        };
        assert_eq!(value, "x,y");
        assert!(parse_tree(true, false, "(a.in.(1,2),b.is.null)").is_ok());
        // Commas inside an array literal, a list or quotes do not split the tree.
        let Condition::Tree { children, .. } = parse_tree(
            false,
            false,
            "(id.in.(1,4),tags.cs.{is:open,priority:high},name.eq.\"a,b\")",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(children.len(), 3);
        let Condition::Filter {
            op: Operation::Binary { value, .. },
            ..
        } = &children[1]
        else {
            panic!()
        };
        assert_eq!(value, "{is:open,priority:high}");
        for bad in ["", "()", "(a)", "(a.eq.1", "(or(a.eq.1)", "(a.cs.{1,2)"] {
            assert!(parse_tree(false, false, bad).is_err(), "{bad}");
        }
    }
}
