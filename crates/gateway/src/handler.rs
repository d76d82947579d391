//! A request from top to bottom: authenticate, find the target in the schema cache, parse the
//! query string and body, build one statement, run it in the request's transaction, respond.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::auth::{self, Identity};
use crate::config::Switches;
use crate::error::ApiError;
use crate::execute::{self, Settings, Transaction};
use crate::preferences::{Format, Preferences};
use crate::query::ApiQuery;
use crate::response;
use crate::schema_cache::SchemaCache;
use crate::sql::quote_ident;
use crate::Gateway;

mod openapi;
mod rpc;
mod table;

/// Every request under `/rest/v1`.
pub async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    match serve(&gw, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// What the path names.
enum Target {
    Root,
    Table(String),
    Rpc(String),
}

/// What every branch needs from the request.
struct Incoming<'a> {
    gw: &'a Gateway,
    cache: &'a SchemaCache,
    method: Method,
    schema: String,
    query: &'a str,
    prefs: Preferences,
    format: Format,
    body: axum::body::Bytes,
    settings: Settings,
    /// `Range: first-last` of a read, used when the query string has no limit or offset.
    range: Option<(u64, Option<u64>)>,
    /// The request body's media type, lowercased (`""` when absent).
    content_type: String,
    /// The settings the database may override (`pgrst.*` of the connecting role).
    switches: Switches,
    /// When the query string was parsed and the transaction began and ended, for `Server-Timing`.
    timing: Arc<Mutex<Timing>>,
}

/// Moments of a request that `Server-Timing` reports.
#[derive(Default, Clone, Copy)]
struct Timing {
    parsed: Option<Instant>,
    transaction: Option<(Instant, Instant)>,
}

impl Incoming<'_> {
    /// The query string is parsed: `Server-Timing`'s parse ends, plan begins.
    fn parsed(&self) {
        self.timing.lock().unwrap_or_else(|e| e.into_inner()).parsed = Some(Instant::now());
    }

    /// PGRST123 for an aggregate unless `PGRST_DB_AGGREGATES_ENABLED` allows them.
    fn check_aggregates(&self, query: &ApiQuery) -> Result<(), ApiError> {
        if query.has_aggregates() && !self.switches.aggregates {
            return Err(crate::query::select::aggregates_disabled().into());
        }
        Ok(())
    }
}

async fn serve(gw: &Gateway, req: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let identity = auth::authenticate(&gw.ctx, &gw.tokens, &gw.config, &parts.headers)?;
    let authenticated = Instant::now();
    let target = route(parts.uri.path())?;
    if parts.method == Method::OPTIONS {
        return Ok(response::options(matches!(target, Target::Rpc(_))));
    }
    let schema = gw.config.schema_for(&parts.method, &parts.headers)?;
    let cache = gw
        .cache
        .get(gw.config.schema_cache_timeout)
        .await
        .ok_or(ApiError::SchemaCacheNotLoaded)?;
    let switches = gw.config.switches(&cache);
    let mut prefs = Preferences::parse(
        parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    prefs.end_with(switches.tx_end);
    if prefs.strict && !prefs.invalid.is_empty() {
        return Err(ApiError::BadRequest {
            code: "PGRST122",
            message: format!(
                "Invalid preferences given with handling=strict: {}",
                prefs.invalid.join(", ")
            ),
        });
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|ct| ct.to_str().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default();
    let content_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    {
        let media = content_type.as_str();
        let readable = matches!(
            media,
            "" | "application/json"
                | "application/vnd.pgrst.object+json"
                | "application/vnd.pgrst.array+json"
        );
        // A raw body is the argument of a function's single unnamed text, xml or bytea parameter.
        let raw_call = matches!(target, Target::Rpc(_)) && rpc::raw_parameter_type(media).is_some();
        if !readable
            && !raw_call
            && parts.method != Method::GET
            && parts.method != Method::HEAD
            && parts.method != Method::DELETE
        {
            return Err(ApiError::ContentType(media.to_owned()));
        }
    }
    let format = Format::from_accept(
        parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
        switches.plans,
    )?;
    let body = axum::body::to_bytes(body, gw.config.max_body_bytes)
        .await
        .map_err(|_| ApiError::BodyTooLarge(gw.config.max_body_bytes))?;
    let mut settings = settings(
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        &identity,
        &schema,
        &gw.config.extra_search_path,
    );
    settings.role_settings = cache.role_settings(&identity.role).to_owned();
    if let Some(tz) = &prefs.timezone {
        // The TimeZone joins the role's own settings, set the same way.
        let mut map: Map<String, Value> =
            serde_json::from_str(&settings.role_settings).unwrap_or_default();
        map.insert("timezone".into(), Value::String(tz.clone()));
        settings.role_settings = Value::Object(map).to_string();
    }
    let incoming = Incoming {
        gw,
        cache: &cache,
        method: parts.method.clone(),
        schema,
        query: parts.uri.query().unwrap_or(""),
        prefs,
        format,
        body,
        settings,
        range: range_header(&parts.headers),
        content_type,
        switches,
        timing: Arc::new(Mutex::new(Timing::default())),
    };
    let timing = incoming.timing.clone();
    let read = Instant::now();
    let mut response = match target {
        Target::Root => openapi::root(&incoming).await?,
        Target::Table(name) => table::table(incoming, &name).await?,
        Target::Rpc(name) => rpc::rpc(incoming, &name).await?,
    };
    if gw.config.server_timing {
        let moments = *timing.lock().unwrap_or_else(|e| e.into_inner());
        let value = server_timing(started, authenticated, read, moments, Instant::now());
        if let Ok(v) = value.parse() {
            response.headers_mut().insert("server-timing", v);
        }
    }
    if gw.config.schemas.len() > 1 {
        let profile = gw.config.schema_for(&parts.method, &parts.headers)?;
        if let Ok(v) = profile.parse() {
            response.headers_mut().insert("content-profile", v);
        }
    }
    Ok(response)
}

/// PostgREST's `Server-Timing`: milliseconds, one decimal, for verifying the token, reading
/// the request (headers, body, query string), planning (until the transaction starts), the
/// transaction and the response. Without a transaction (`GET /` ignoring privileges), planning
/// runs to the response.
fn server_timing(
    started: Instant,
    authenticated: Instant,
    read: Instant,
    moments: Timing,
    done: Instant,
) -> String {
    let ms = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1000.0;
    let (begin, end) = moments.transaction.unwrap_or((done, done));
    let parsed = moments.parsed.unwrap_or(read);
    format!(
        "jwt;dur={:.1}, parse;dur={:.1}, plan;dur={:.1}, transaction;dur={:.1}, response;dur={:.1}",
        ms(started, authenticated),
        ms(authenticated, parsed),
        ms(parsed, begin),
        ms(begin, end),
        ms(end, done),
    )
}

fn route(path: &str) -> Result<Target, ApiError> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s).ok_or(ApiError::InvalidPath))
        .collect::<Result<_, _>>()?;
    match segments.as_slice() {
        [root] if root.is_empty() => Ok(Target::Root),
        [name] => Ok(Target::Table(name.clone())),
        [rpc, name] if rpc == "rpc" && !name.is_empty() => Ok(Target::Rpc(name.clone())),
        _ => Err(ApiError::InvalidPath),
    }
}

/// `Range: 0-9` or `Range: 10-` (with `Range-Unit: items`).
fn range_header(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let value = value.strip_prefix("items=").unwrap_or(value);
    let (first, last) = value.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        l => Some(l.parse().ok().filter(|l| *l >= first)?),
    };
    Some((first, last))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

/// The transaction settings of §1.8.
fn settings(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    identity: &Identity,
    schema: &str,
    extra_search_path: &[String],
) -> Settings {
    // Borrowed into ordered maps (the last of a repeated name wins) and serialised once.
    let mut header_map = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            header_map.insert(name.as_str(), v);
        }
    }
    let mut cookies = BTreeMap::new();
    for value in headers.get_all(header::COOKIE) {
        for pair in value.to_str().unwrap_or("").split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                cookies.insert(k, v);
            }
        }
    }
    // As PostgREST sets it: the schema, then each extra schema, repeats kept
    // (`"public", "public", "extensions"`), so plans and functions see the same path.
    let mut search_path = vec![quote_ident(schema)];
    search_path.extend(extra_search_path.iter().map(|s| quote_ident(s)));
    Settings {
        search_path: search_path.join(", "),
        role: identity.role.clone(),
        claims: identity.claims_json.clone(),
        method: method.as_str().to_owned(),
        path: path.to_owned(),
        headers: serde_json::to_string(&header_map).unwrap_or_else(|_| "{}".into()),
        cookies: serde_json::to_string(&cookies).unwrap_or_else(|_| "{}".into()),
        role_settings: "{}".to_owned(),
        authenticated: identity.is_authenticated(),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Body("Empty or invalid json".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Body(format!("Empty or invalid json: {e}")))
}

async fn run(
    r: &Incoming<'_>,
    sql: crate::sql::Sql,
    read_only: bool,
    check: impl FnOnce(&execute::Outcome) -> Result<(), ApiError>,
) -> Result<execute::Outcome, ApiError> {
    run_explained(r, sql, None, read_only, check).await
}

/// The pool a request runs on: a GET or HEAD (read-only) goes to the read replica while it
/// keeps up, everything else to the primary.
fn reads_from<'a>(r: &'a Incoming<'_>, read_only: bool) -> &'a deadpool_postgres::Pool {
    let read = read_only && matches!(r.method, Method::GET | Method::HEAD);
    r.gw.config
        .read_replica
        .as_ref()
        .filter(|_| read)
        .and_then(|replica| replica.pool())
        .unwrap_or(&r.gw.ctx.db)
}

/// Runs `sql`, and with `explain`, the planner's row estimate of that query too.
async fn run_explained(
    r: &Incoming<'_>,
    sql: crate::sql::Sql,
    explain: Option<crate::sql::Sql>,
    read_only: bool,
    check: impl FnOnce(&execute::Outcome) -> Result<(), ApiError>,
) -> Result<execute::Outcome, ApiError> {
    let tx = Transaction {
        read_only,
        rollback: r.prefs.rollback,
        pool_timeout: r.gw.config.pool_timeout,
        pre_request: r.gw.config.pre_request.clone(),
        prepared: r.gw.config.prepared_statements,
    };
    let begin = Instant::now();
    let result = if let Some(plan) = r.format.plan {
        let prefix = plan.explain_prefix();
        execute::explain(&r.gw.ctx.db, &r.settings, sql, &prefix, tx).await
    } else {
        execute::run(
            reads_from(r, read_only),
            &r.settings,
            sql,
            explain,
            tx,
            check,
        )
        .await
    };
    r.timing
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .transaction = Some((begin, Instant::now()));
    result
}
