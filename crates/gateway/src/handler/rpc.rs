//! Calls of database functions under `/rpc`.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{parse_body, run, Incoming};
use crate::error::ApiError;
use crate::plan::rpc::{self as plan, Arguments};
use crate::plan::Builder;
use crate::preferences::FormatKind;
use crate::query::ApiQuery;
use crate::response;

/// `/rpc/fn` by GET (read-only) or POST: the overload the arguments name, then one statement.
pub(super) async fn rpc(r: Incoming<'_>, name: &str) -> Result<Response, ApiError> {
    let functions = r.cache.functions(&r.schema, name);
    let is_get = r.method == Method::GET || r.method == Method::HEAD;
    if !is_get && r.method != Method::POST {
        return Err(ApiError::Method {
            code: "PGRST101",
            message: "Cannot use the method on RPC".into(),
        });
    }
    let arg_names: Vec<String> = if is_get {
        functions
            .iter()
            .flat_map(|f| f.args.iter().map(|a| a.name.clone()))
            .filter(|n| !n.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let query = ApiQuery::parse_within(r.query, &arg_names, &r.gw.config.limits)?;
    r.check_aggregates(&query)?;
    let body = if is_get {
        Value::Object(
            query
                .plain
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    } else if r.body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        parse_body(&r.body)?
    };
    let given: Vec<&str> = match &body {
        Value::Object(map) => map.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let (function, single) = plan::choose(functions, &r.schema, name, &given, body.is_object())
        .map_err(|e| match e {
            ApiError::FunctionNotFound {
                schema, name, args, ..
            } => {
                let suggestion = plan::suggest(r.cache, &schema, &name, &args);
                ApiError::FunctionNotFound {
                    schema,
                    name,
                    args,
                    json_body: !is_get,
                    suggestion,
                }
            }
            other => other,
        })?;
    let args = match (single, body) {
        (true, body) => Arguments::Single(body),
        (false, Value::Object(map)) => Arguments::Named(map),
        (false, _) => return Err(ApiError::Body("Expected a JSON object of arguments".into())),
    };
    let mut builder = Builder::new(r.cache, &query);
    let sql = plan::build(
        &mut builder,
        function,
        &args,
        r.format,
        r.prefs.count.is_some(),
        r.gw.config.max_rows,
    )?;
    let read_only = is_get || function.is_read_only();
    let singular = r.format.kind == FormatKind::Object && function.returns_set;
    let outcome = run(&r, sql, read_only, move |o| {
        if singular && o.rows != 1 {
            return Err(ApiError::Singular { rows: o.rows });
        }
        Ok(())
    })
    .await?;
    if let Some(plan) = outcome.plan {
        return Ok(response::plan(plan, r.format));
    }
    let void = function.return_type == "void";
    response::rpc(
        &outcome,
        r.format,
        &r.prefs,
        query.root().offset,
        r.method == Method::HEAD,
        void,
        function.returns_set,
    )
}
