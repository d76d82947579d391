//! `/rpc/fn`: choosing the function by its named arguments and calling it so that set-returning
//! results can be selected, filtered, ordered and paged like a table.

use serde_json::{Map, Value};

use super::{body_expression, Builder, Source};
use crate::error::ApiError;
use crate::preferences::Format;
use crate::query::SelectItem;
use crate::schema_cache::{Function, SchemaCache};
use crate::sql::Sql;
use crate::suggestion::{self, NameSet};

/// The arguments of a call.
pub enum Arguments {
    /// Named arguments from a JSON object or the query string.
    Named(Map<String, Value>),
    /// The whole body, for a function with a single unnamed json/jsonb argument.
    Single(Value),
}

/// Picks the overload whose arguments match `given` (PGRST202 / PGRST203 otherwise).
pub fn choose<'f>(
    candidates: &'f [Function],
    schema: &str,
    name: &str,
    given: &[&str],
    body_is_object: bool,
) -> Result<(&'f Function, bool), ApiError> {
    let mut matches: Vec<(&Function, bool)> = Vec::new();
    for f in candidates {
        let single_unnamed = f.args.len() == 1
            && f.args[0].name.is_empty()
            && matches!(f.args[0].data_type.as_str(), "json" | "jsonb");
        if single_unnamed {
            matches.push((f, true));
            continue;
        }
        let known = given
            .iter()
            .all(|g| f.args.iter().any(|a| !a.name.is_empty() && a.name == *g));
        let required = f
            .args
            .iter()
            .all(|a| a.has_default || given.contains(&a.name.as_str()));
        if known && required && f.args.iter().all(|a| !a.name.is_empty()) {
            matches.push((f, false));
        }
    }
    // A function of named arguments wins over the single-json-argument form when both fit.
    if matches.len() > 1 && body_is_object {
        let named: Vec<_> = matches.iter().copied().filter(|(_, s)| !s).collect();
        if named.len() == 1 {
            return Ok(named[0]);
        }
    }
    match matches.len() {
        1 => Ok(matches[0]),
        0 => {
            let mut names: Vec<String> = given.iter().map(|g| (*g).to_owned()).collect();
            names.sort_unstable();
            names.dedup();
            Err(ApiError::FunctionNotFound {
                schema: schema.to_owned(),
                name: name.to_owned(),
                args: names,
                json_body: false,
                suggestion: None,
            })
        }
        _ => Err(ApiError::AmbiguousFunction {
            schema: schema.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// PGRST202's hint: a function of a close name when none has this one, otherwise the closest
/// parameter list among its overloads (PostgREST's `noRpcHint`).
pub fn suggest(cache: &SchemaCache, schema: &str, name: &str, given: &[String]) -> Option<String> {
    let list = |names: Vec<&str>| {
        let mut names = names;
        names.sort_unstable();
        format!("({})", names.join(", "))
    };
    let overloads: Vec<&Function> = cache
        .functions(schema, name)
        .iter()
        .filter(|f| f.is_callable())
        .collect();
    let found = if overloads.is_empty() {
        let names = NameSet::new(cache.callable_functions(schema).map(|f| f.name.clone()));
        names.get_one(name, suggestion::NAME_MIN)?.to_owned()
    } else {
        let lists = NameSet::new(
            overloads
                .iter()
                .map(|f| list(f.args.iter().map(|a| a.name.as_str()).collect())),
        );
        let given = list(given.iter().map(String::as_str).collect());
        format!("{name}{}", lists.get_one(&given, suggestion::DEFAULT_MIN)?)
    };
    Some(format!(
        "Perhaps you meant to call the function {schema}.{found}"
    ))
}

/// `SELECT total, rows, body FROM (SELECT ... FROM fn(args) AS t1 WHERE ...) _s`.
pub fn build(
    b: &mut Builder,
    function: &Function,
    args: &Arguments,
    format: Format,
    count: bool,
    max_rows: Option<u64>,
) -> Result<Sql, ApiError> {
    let scalar = !function.returns_composite;
    let void = function.return_type == "void";
    let star = [SelectItem::Star];
    let items: &[SelectItem] = b.query.select.as_deref().unwrap_or(&star);
    let src = Source {
        name: &function.name,
        columns: &function.columns,
        table: None,
        schema: &function.schema,
        depth: 0,
    };
    let root = b.query.root();
    let alias = "t1";
    let from = |b: &mut Builder| -> Result<(), ApiError> {
        call(b, function, args)?;
        b.sql.push(" AS ").ident(alias);
        if scalar {
            b.sql.push("(\"pgrst_scalar\")");
        }
        if !scalar {
            b.where_clause(&src, alias, items, &[])?;
        }
        Ok(())
    };
    b.sql.push("SELECT ");
    if count {
        b.sql.push("(SELECT count(*) FROM ");
        from(b)?;
        b.sql.push(")");
    } else {
        b.sql.push("NULL::int8");
    }
    b.sql.push(", count(*), ");
    if void {
        b.sql.push("NULL::text");
    } else {
        let format = if function.returns_set {
            format
        } else {
            Format {
                kind: crate::preferences::FormatKind::Object,
                ..format
            }
        };
        body_expression(&mut b.sql, format, scalar);
    }
    super::response_gucs(&mut b.sql);
    b.sql.push(" FROM (SELECT ");
    if scalar {
        b.sql.push("\"t1\".\"pgrst_scalar\" AS v");
    } else {
        b.select_list(&src, alias, items, &[])?;
    }
    b.sql.push(" FROM ");
    from(b)?;
    if !scalar {
        b.order_by(&src, alias, items, &[], &root.order)?;
    }
    b.limit_offset(
        root.limit,
        root.offset,
        max_rows.filter(|_| function.returns_set),
    );
    b.sql.push(") _s");
    b.check_paths_used()?;
    Ok(std::mem::take(&mut b.sql))
}

/// `json_to_record($1) AS _a(...), LATERAL "s"."fn"("x" := _a."x")`, or the single-argument form.
fn call(b: &mut Builder, function: &Function, args: &Arguments) -> Result<(), ApiError> {
    match args {
        Arguments::Single(body) => {
            b.sql.qualified(&function.schema, &function.name).push("(");
            b.sql
                .param(body.to_string())
                .push("::")
                .push(if function.args[0].data_type == "jsonb" {
                    "jsonb"
                } else {
                    "json"
                })
                .push(")");
        }
        Arguments::Named(map) => {
            let used: Vec<_> = function
                .args
                .iter()
                .filter(|a| map.contains_key(&a.name))
                .collect();
            if used.is_empty() {
                b.sql.qualified(&function.schema, &function.name).push("()");
                return Ok(());
            }
            b.sql
                .push("json_to_record(")
                .param(Value::Object(map.clone()).to_string())
                .push("::json) AS \"pgrst_args\"(");
            for (i, a) in used.iter().enumerate() {
                if i > 0 {
                    b.sql.push(", ");
                }
                // The type comes from format_type() in the catalog, not from the request.
                b.sql.ident(&a.name).push(" ").push(&a.data_type);
            }
            b.sql
                .push("), LATERAL ")
                .qualified(&function.schema, &function.name)
                .push("(");
            for (i, a) in used.iter().enumerate() {
                if i > 0 {
                    b.sql.push(", ");
                }
                if a.variadic {
                    b.sql.push("VARIADIC ");
                }
                b.sql
                    .ident(&a.name)
                    .push(" := \"pgrst_args\".")
                    .ident(&a.name);
            }
            b.sql.push(")");
        }
    }
    Ok(())
}
