//! `--where` filters in PostgREST's syntax (`col=eq.v`, `col=in.(a,b)`, `col=is.null`), turned
//! into SQL with the column quoted after the catalog knows it and each value a bind parameter
//! cast to the column's type.

/// One parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    IsNull,
    IsNotNull,
    IsTrue,
    IsFalse,
}

/// Parses `col=op.value`.
pub fn parse(text: &str) -> anyhow::Result<Filter> {
    let (column, rest) = text
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--where {text:?}: expected column=operator.value"))?;
    let (op, value) = rest
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("--where {text:?}: expected column=operator.value"))?;
    let one = |op| (op, vec![value.to_owned()]);
    let (op, values) = match op {
        "eq" => one(Op::Eq),
        "neq" => one(Op::Neq),
        "gt" => one(Op::Gt),
        "gte" => one(Op::Gte),
        "lt" => one(Op::Lt),
        "lte" => one(Op::Lte),
        "like" => one(Op::Like),
        "ilike" => one(Op::Ilike),
        "in" => {
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| anyhow::anyhow!("--where {text:?}: in takes (a,b,…)"))?;
            (
                Op::In,
                inner.split(',').map(|v| v.trim().to_owned()).collect(),
            )
        }
        "is" => match value {
            "null" => (Op::IsNull, vec![]),
            "not_null" => (Op::IsNotNull, vec![]),
            "true" => (Op::IsTrue, vec![]),
            "false" => (Op::IsFalse, vec![]),
            _ => anyhow::bail!("--where {text:?}: is takes null, not_null, true or false"),
        },
        other => anyhow::bail!("--where {text:?}: unknown operator {other}"),
    };
    Ok(Filter {
        column: column.trim().to_owned(),
        op,
        values,
    })
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL condition over the relation named `relation` (already quoted), given the column's
/// type name from the catalog; parameters are numbered from `first`. Returns the condition and
/// its values in order.
pub fn to_sql(
    f: &Filter,
    relation: &str,
    column_type: &str,
    first: usize,
) -> (String, Vec<String>) {
    let col = format!("{relation}.{}", quote_ident(&f.column));
    let param = |i: usize| format!("${}::text::{column_type}", first + i);
    let cmp = |sym: &str| format!("{col} {sym} {}", param(0));
    let sql = match f.op {
        Op::Eq => cmp("="),
        Op::Neq => cmp("<>"),
        Op::Gt => cmp(">"),
        Op::Gte => cmp(">="),
        Op::Lt => cmp("<"),
        Op::Lte => cmp("<="),
        Op::Like => format!("{col}::text like ${}::text", first),
        Op::Ilike => format!("{col}::text ilike ${}::text", first),
        Op::In => {
            let list: Vec<String> = (0..f.values.len()).map(param).collect();
            format!("{col} in ({})", list.join(", "))
        }
        Op::IsNull => format!("{col} is null"),
        Op::IsNotNull => format!("{col} is not null"),
        Op::IsTrue => format!("{col} is true"),
        Op::IsFalse => format!("{col} is false"),
    };
    let values = match f.op {
        // PostgREST's `*` wildcard.
        Op::Like | Op::Ilike => vec![f.values[0].replace('*', "%")],
        _ => f.values.clone(),
    };
    (sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_as_postgrest_writes_them() {
        let f = parse("user_id=eq.abc").unwrap();
        assert_eq!(
            (f.column.as_str(), f.op, f.values),
            ("user_id", Op::Eq, vec!["abc".into()])
        );
        let f = parse("id=in.(1, 2,3)").unwrap();
        assert_eq!(f.values, ["1", "2", "3"]);
        assert_eq!(parse("x=is.null").unwrap().op, Op::IsNull);
        assert!(parse("x=drop.table").is_err());
        assert!(parse("nonsense").is_err());
    }

    #[test]
    fn values_are_parameters_and_columns_are_quoted() {
        let f = parse("na\"me=eq.1; drop table x").unwrap();
        let (sql, values) = to_sql(&f, "t", "text", 1);
        assert_eq!(sql, "t.\"na\"\"me\" = $1::text::text");
        assert_eq!(values, ["1; drop table x"]);
    }
}
