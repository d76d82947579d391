//! Calls of database functions under `/rpc`.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value};

use super::{parse_body, run, Incoming};
use crate::error::ApiError;
use crate::plan::rpc::{self as plan, Arguments, CallKind};
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
    r.parsed();
    r.check_aggregates(&query)?;
    let call = if is_get {
        CallKind::Get
    } else {
        raw_parameter_type(&r.content_type).map_or(CallKind::Json, CallKind::Raw)
    };
    let body = match call {
        CallKind::Get => Value::Object(
            query
                .plain
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
        CallKind::Raw(_) => Value::Null,
        CallKind::Json if r.body.iter().all(u8::is_ascii_whitespace) => Value::Object(Map::new()),
        CallKind::Json => parse_body(&r.body)?,
    };
    let given: Vec<&str> = match &body {
        Value::Object(map) => map.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let candidates: Vec<_> = functions.iter().collect();
    let function =
        plan::choose(&candidates, &r.schema, name, &given, call).map_err(|e| match e {
            // PGRST202's hint needs the whole schema's functions: looked for only on a miss.
            ApiError::FunctionNotFound {
                schema,
                name,
                args,
                json_body,
                ..
            } => {
                let suggestion = plan::suggest(r.cache, &schema, &name, &args);
                ApiError::FunctionNotFound {
                    schema,
                    name,
                    args,
                    json_body,
                    suggestion,
                }
            }
            other => other,
        })?;
    let args = if let Some(param) = function.single_unnamed() {
        Arguments::Single(single_value(&r, call, &body, &param.data_type)?)
    } else {
        match body {
            Value::Object(map) => Arguments::Named(map),
            _ => return Err(ApiError::Body("Expected a JSON object of arguments".into())),
        }
    };
    let max_affected = r.prefs.max_affected.filter(|_| r.prefs.strict);
    if max_affected.is_some() && !function.returns_set {
        return Err(ApiError::MaxAffectedSingle);
    }
    let mut builder = Builder::new(r.cache, &query);
    let sql = plan::build(
        &mut builder,
        function,
        &args,
        r.format,
        // PostgREST counts a call exactly for `exact` and `estimated`; `planned` has no plan to read.
        matches!(r.prefs.count, Some("exact" | "estimated")),
        r.switches.max_rows,
    )?;
    let read_only = is_get || function.is_read_only();
    let singular = r.format.kind == FormatKind::Object && function.returns_set;
    let outcome = run(&r, sql, read_only, move |o| {
        if singular && o.rows != 1 {
            return Err(ApiError::Singular { rows: o.rows });
        }
        // PostgREST counts the rows of the response, after filters and limits.
        if let Some(max) = max_affected {
            if o.rows > max {
                return Err(ApiError::MaxAffected { rows: o.rows });
            }
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

/// The parameter type a raw request body of this media type is for, as PostgREST maps them.
pub(super) fn raw_parameter_type(media: &str) -> Option<&'static str> {
    match media {
        "text/plain" => Some("text"),
        "text/xml" => Some("xml"),
        "application/octet-stream" => Some("bytea"),
        _ => None,
    }
}

/// The text form of the single unnamed parameter: the body as it came (bytea as hex), or for a
/// GET, the query string's arguments as a JSON object, as PostgREST passes them.
fn single_value(
    r: &Incoming<'_>,
    call: CallKind,
    body: &Value,
    data_type: &str,
) -> Result<String, ApiError> {
    match call {
        CallKind::Get => Ok(body.to_string()),
        _ if data_type == "bytea" => {
            let mut hex = String::with_capacity(2 + r.body.len() * 2);
            hex.push_str("\\x");
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for byte in r.body.iter() {
                hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
                hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
            }
            Ok(hex)
        }
        CallKind::Json if r.body.iter().all(u8::is_ascii_whitespace) => Ok("{}".to_owned()),
        _ => String::from_utf8(r.body.to_vec())
            .map_err(|_| ApiError::Body("The request body is not valid UTF-8".into())),
    }
}
