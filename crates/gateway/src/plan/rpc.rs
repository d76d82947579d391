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
    /// The value of a function's single unnamed parameter, in that type's text form: the raw body
    /// (json, jsonb, text, xml; bytea as `\x` hex), as PostgREST passes it.
    Single(String),
}

/// How the arguments of a call arrived, which decides the overloads that may take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// GET or HEAD: named arguments in the query string.
    Get,
    /// POST with a JSON body: named arguments, or the whole body for one unnamed json/jsonb parameter.
    Json,
    /// POST with a raw body for one unnamed parameter of this type (`text`, `xml` or `bytea`).
    Raw(&'static str),
}

/// Picks the overload the argument names fit, as PostgREST does: first the functions whose
/// required parameters are all given and whose other given names are optional parameters; only
/// when none fits, a function whose single unnamed parameter takes the whole body. One candidate
/// is the function, none is PGRST202, more are 300 PGRST203.
pub fn choose<'f>(
    candidates: &[&'f Function],
    schema: &str,
    name: &str,
    given: &[&str],
    call: CallKind,
) -> Result<&'f Function, ApiError> {
    // Functions PostgREST cannot call (see `Function::is_callable`) are not candidates: its
    // schema cache leaves them out. They stay in ours for computed fields.
    let callable = candidates.iter().copied().filter(|f| f.is_callable());
    let fits: Vec<&Function> = callable
        .clone()
        .filter(|f| fits_names(f, given, call))
        .collect();
    let fallback: Vec<&Function> = callable
        .filter(|f| !fits_names(f, given, call) && takes_body(f, call))
        .collect();
    let chosen = if fits.is_empty() { fallback } else { fits };
    match chosen.as_slice() {
        [f] => Ok(f),
        [] => {
            let mut names: Vec<String> = given.iter().map(|g| (*g).to_owned()).collect();
            names.sort_unstable();
            names.dedup();
            Err(ApiError::FunctionNotFound {
                schema: schema.to_owned(),
                name: name.to_owned(),
                args: names,
                // Only a POST with a JSON body could have meant a single json/jsonb parameter.
                json_body: matches!(call, CallKind::Json),
                suggestion: None,
            })
        }
        many => Err(ApiError::AmbiguousFunction {
            candidates: many
                .iter()
                .map(|f| signature(f))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The given names are exactly the required parameters plus some of the optional ones. A
/// function without parameters fits no names, and no raw body.
fn fits_names(f: &Function, given: &[&str], call: CallKind) -> bool {
    if f.args.is_empty() {
        return given.is_empty() && !matches!(call, CallKind::Raw(_));
    }
    let optional = |g: &str| f.args.iter().any(|a| a.has_default && a.name == g);
    let required = |g: &str| f.args.iter().any(|a| !a.has_default && a.name == g);
    given.iter().all(|g| optional(g) || required(g))
        && f.args
            .iter()
            .filter(|a| !a.has_default)
            .all(|a| given.contains(&a.name.as_str()))
}

/// A POST whose body the function's single unnamed parameter takes whole, by content type.
fn takes_body(f: &Function, call: CallKind) -> bool {
    let Some(arg) = f.single_unnamed() else {
        return false;
    };
    match call {
        CallKind::Get => false,
        CallKind::Json => matches!(arg.data_type.as_str(), "json" | "jsonb"),
        CallKind::Raw(t) => arg.data_type == t,
    }
}

/// `public.f(a => integer, b => text)`, as PostgREST lists candidates.
fn signature(f: &Function) -> String {
    let params: Vec<String> = f
        .args
        .iter()
        .map(|a| format!("{} => {}", a.name, a.data_type))
        .collect();
    format!("{}.{}({})", f.schema, f.name, params.join(", "))
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

/// `SELECT total, rows, body FROM (SELECT ... FROM fn(args) AS pgrst_call WHERE ...) _s`; with `count`
/// (exact or estimated: PostgREST plans no function call), the total of the filtered call.
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
        // Returning a table's rows: embeds and computed fields resolve as on that table.
        table: b.cache.function_table(function),
        schema: &function.schema,
        depth: 0,
    };
    let root = b.query.root();
    // PostgREST's alias of the call, which plans show (`Function Scan on f pgrst_call`).
    let alias = "pgrst_call";
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
    // With a count, the call runs once into a CTE that both the count and the page read, so a
    // volatile function is not called twice.
    if count {
        b.sql
            .push("WITH \"pgrst_call\" AS MATERIALIZED (SELECT ")
            .ident(alias)
            .push(".* FROM ");
        from(b)?;
        b.sql.push(") ");
    }
    b.sql.push("SELECT ");
    if count {
        b.sql.push("(SELECT count(*) FROM \"pgrst_call\")");
    } else {
        b.sql.push("NULL::int8");
    }
    b.sql.push(", count(*), ");
    if void {
        b.sql.push("NULL::text");
    } else {
        // A function returning one value answers an object, not an array; CSV stays CSV.
        let format = if function.returns_set
            || matches!(
                format.kind,
                crate::preferences::FormatKind::Csv | crate::preferences::FormatKind::GeoJson
            ) {
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
        b.sql.ident(alias).push(".\"pgrst_scalar\"");
    } else {
        b.select_list(&src, alias, items, &[])?;
    }
    b.sql.push(" FROM ");
    if count {
        b.sql.push("\"pgrst_call\" AS ").ident(alias);
    } else {
        from(b)?;
    }
    if !scalar {
        // `select=col,amount.sum()`: grouped by the other columns, as on a table.
        b.group_by(&src, alias, items)?;
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
        Arguments::Single(value) => {
            // The type is the catalog's (json, jsonb, text, xml or bytea), never the request's.
            let data_type = function
                .single_unnamed()
                .map_or("json", |a| a.data_type.as_str());
            b.sql.qualified(&function.schema, &function.name).push("(");
            b.sql
                .param(value.as_str())
                .push("::")
                .push(data_type)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `f(a int, b int default 1)` style overloads from (name, type, has_default) triples.
    fn function(args: &[(&str, &str, bool)]) -> Function {
        let args: Vec<Value> = args
            .iter()
            .map(|(name, ty, def)| {
                serde_json::json!({"name": name, "type": ty, "has_default": def, "variadic": false})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": "public", "name": "f", "args": args, "columns": [],
            "return_type": "integer", "returns_set": false, "returns_composite": false,
            "volatility": "i"
        }))
        .unwrap()
    }

    fn chosen(fs: &[Function], given: &[&str], call: CallKind) -> Result<String, String> {
        let refs: Vec<&Function> = fs.iter().collect();
        choose(&refs, "public", "f", given, call)
            .map(signature)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn required_names_and_any_optional_ones_fit() {
        let fs = [
            function(&[("w", "integer", false), ("h", "integer", true)]),
            function(&[
                ("w", "integer", false),
                ("h", "integer", false),
                ("d", "integer", false),
            ]),
        ];
        let one = "public.f(w => integer, h => integer)";
        assert_eq!(chosen(&fs, &["w"], CallKind::Json).unwrap(), one);
        assert_eq!(chosen(&fs, &["w", "h"], CallKind::Json).unwrap(), one);
        assert!(chosen(&fs, &["w", "h", "d"], CallKind::Get)
            .unwrap()
            .ends_with("d => integer)"));
        assert!(chosen(&fs, &["h"], CallKind::Json).is_err());
    }

    #[test]
    fn ambiguity_lists_every_candidate() {
        let fs = [function(&[]), function(&[("x", "integer", true)])];
        assert_eq!(
            chosen(&fs, &[], CallKind::Json).unwrap_err(),
            "Could not choose the best candidate function between: public.f(), public.f(x => integer)"
        );
    }

    #[test]
    fn a_single_unnamed_parameter_takes_a_body_of_its_type_only_as_a_fallback() {
        let fs = [function(&[]), function(&[("", "text", false)])];
        assert_eq!(chosen(&fs, &[], CallKind::Json).unwrap(), "public.f()");
        assert_eq!(
            chosen(&fs, &[""], CallKind::Json).unwrap(),
            "public.f( => text)"
        );
        assert_eq!(
            chosen(&fs, &[], CallKind::Raw("text")).unwrap(),
            "public.f( => text)"
        );
        assert!(chosen(&fs, &[], CallKind::Raw("bytea")).is_err());
        let int = [function(&[("", "integer", false)])];
        assert!(chosen(&int, &[""], CallKind::Json).is_err());
        let json = [function(&[("", "jsonb", false)])];
        assert!(chosen(&json, &["a", "b"], CallKind::Json).is_ok());
        assert!(chosen(&json, &["a"], CallKind::Get).is_err());
    }
}
