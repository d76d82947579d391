//! The single API port: routes `/rest/v1`, `/auth/v1`, `/realtime/v1` and `/storage/v1` to the services
//! with their prefixes stripped, and does what Supabase's Kong gateway does in front of them:
//! the apikey check, the Authorization header derived from it, CORS, and a request id.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use craftbase_shared::ServiceContext;

use crate::api_keys::ring::{KeyRing, Use};
use crate::api_keys::KeyKind;
use crate::observe::Observer;
use crate::services::Services;
use crate::switches::switched_off;
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::normalize_path::NormalizePath;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Routes browsers reach through redirects and links, that third-party OAuth clients of
/// the OAuth 2.1 server call, and that SAML identity providers reach (the ACS a browser form
/// posts to, the SP metadata an IdP fetches), without an apikey — as Supabase's gateway opens them.
const OPEN_ROUTES: [&str; 12] = [
    "/auth/v1/verify",
    "/auth/v1/callback",
    "/auth/v1/authorize",
    "/auth/v1/.well-known/jwks.json",
    "/auth/v1/oauth/authorize",
    "/auth/v1/oauth/token",
    "/auth/v1/oauth/userinfo",
    "/auth/v1/oauth/clients/register",
    "/auth/v1/.well-known/openid-configuration",
    "/auth/v1/.well-known/oauth-authorization-server",
    "/auth/v1/sso/saml/acs",
    "/auth/v1/sso/saml/metadata",
];

/// Request headers supabase-js sends that a browser must be allowed to send.
const ALLOWED_HEADERS: [&str; 18] = [
    "authorization",
    "apikey",
    "x-client-info",
    "content-type",
    "accept",
    "accept-profile",
    "content-profile",
    "prefer",
    "range",
    "range-unit",
    "x-supabase-api-version",
    "x-retry-count",
    "traceparent",
    "tracestate",
    // storage-js's uploads and conditional downloads.
    "x-upsert",
    "x-metadata",
    "cache-control",
    "if-none-match",
];

/// Response headers supabase-js reads, which a browser hides unless exposed.
const EXPOSED_HEADERS: [&str; 11] = [
    "content-range",
    "range-unit",
    "x-total-count",
    "link",
    "x-supabase-api-version",
    "content-profile",
    "location",
    "preference-applied",
    "retry-after",
    "etag",
    "content-disposition",
];

/// The services' own settings, read (and refused when invalid) before anything starts.
pub struct ServiceSettings {
    pub gateway: craftbase_gateway::GatewayConfig,
    pub auth: craftbase_auth::Settings,
    /// Storage's backend and limits (`STORAGE_BACKEND`, `FILE_SIZE_LIMIT`, ...).
    pub storage: craftbase_storage::Settings,
    /// Which services are served (`CRAFTBASE_{REST,AUTH,REALTIME,STORAGE}_ENABLED`).
    pub switches: crate::switches::ServiceSwitches,
}

impl ServiceSettings {
    /// Reads `PGRST_*` and `GOTRUE_*` from the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            gateway: craftbase_gateway::GatewayConfig::from_env().map_err(anyhow::Error::msg)?,
            auth: craftbase_auth::Settings::from_env()
                .map_err(|e| anyhow::anyhow!("invalid GOTRUE_* setting: {e}"))?,
            storage: craftbase_storage::Settings::from_env()
                .map_err(|e| anyhow::anyhow!("invalid storage setting: {e}"))?,
            switches: crate::switches::ServiceSwitches::from_env()?,
        })
    }
}

/// The whole API on one router, each service on its own context (and pools); realtime over
/// the observer's state, so `/ready` and `/metrics` see its sockets and replication stream.
pub fn app(services: Services, settings: ServiceSettings, observer: &Observer) -> Router {
    let ctx = services.rest;
    let gate = Gate {
        ctx: ctx.clone(),
        ring: services.api_keys,
    };
    let on = &settings.switches;
    let mut gated = Router::new();
    let mut off = Router::new();
    if on.rest_enabled {
        gated = gated.nest(
            "/rest/v1",
            craftbase_gateway::router_with(ctx.clone(), settings.gateway),
        );
    } else {
        off = off.merge(switched_off("/rest/v1"));
    }
    if on.auth_enabled {
        gated = gated.nest(
            "/auth/v1",
            craftbase_auth::router_with(services.auth, settings.auth),
        );
    } else {
        off = off.merge(switched_off("/auth/v1"));
    }
    if on.realtime_enabled {
        gated = gated.nest(
            "/realtime/v1",
            craftbase_realtime::serve(observer.realtime()),
        );
    } else {
        off = off.merge(switched_off("/realtime/v1"));
    }
    if on.storage_enabled {
        gated = gated.nest("/storage/v1", craftbase_storage::router(services.storage));
    } else {
        off = off.merge(switched_off("/storage/v1"));
    }
    let gated = gated.layer(middleware::from_fn_with_state(gate, require_apikey));
    let routes = Router::new()
        .route("/health", get(health))
        .with_state(ctx.clone())
        .merge(observer.routes(ctx))
        .merge(off)
        .merge(gated);
    // Route after trimming a trailing slash: PostgREST's root is written `/rest/v1/`.
    Router::new()
        .fallback_service(NormalizePath::trim_trailing_slash(routes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(cors())
                .layer(middleware::from_fn(crate::observe::requests::track)),
        )
}

fn request_span(req: &Request<Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The path only: query strings may carry an apikey.
    tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
}

fn cors() -> CorsLayer {
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|h| HeaderName::from_static(h)).collect()
    };
    let mut allowed = names(&ALLOWED_HEADERS);
    allowed.push(HeaderName::from_static("baggage"));
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(allowed)
        .expose_headers(names(&EXPOSED_HEADERS))
        .max_age(Duration::from_secs(3600))
}

/// `GET /health`: up when the database answers.
async fn health(State(ctx): State<ServiceContext>) -> Response {
    let db_ok = match ctx.db.get().await {
        Ok(client) => client.simple_query("select 1").await.is_ok(),
        Err(_) => false,
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "unavailable" },
        "database": db_ok,
        "version": env!("CARGO_PKG_VERSION"),
    });
    (status, Json(body)).into_response()
}

/// What the apikey check needs: the legacy keys and secret (in the context) and the new keys.
#[derive(Clone)]
struct Gate {
    ctx: ServiceContext,
    ring: Arc<KeyRing>,
}

/// Kong's key-auth: a request needs an API key (header `apikey`, or `?apikey=` for websockets):
/// one of the new keys, or the anon or service_role key; then `Authorization` defaults to it.
async fn require_apikey(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    if OPEN_ROUTES.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let key = apikey(&req);
    // Supabase's gateway checks no key for storage: public and signed URLs are opened by
    // anyone, and storage verifies the bearer itself. A key that is sent is still checked.
    if key.is_none() && req.uri().path().starts_with("/storage/v1/") {
        return next.run(req).await;
    }
    let Some(key) = key else {
        return unauthorized("No API key found in request");
    };
    if key.starts_with("sb_") {
        return match new_key_identity(&gate.ring, &key, &mut req) {
            Ok(()) => next.run(req).await,
            Err(refused) => *refused,
        };
    }
    if !is_valid_key(&gate.ctx, &key) {
        return unauthorized("Invalid authentication credentials");
    }
    let Ok(bearer) = HeaderValue::from_str(&legacy_authorization(&req, &key)) else {
        return unauthorized("Invalid authentication credentials");
    };
    if !has_own_authorization(&req) {
        req.headers_mut().insert(header::AUTHORIZATION, bearer);
    }
    if let Ok(value) = HeaderValue::from_str(&key) {
        req.headers_mut()
            .insert(HeaderName::from_static("x-api-key"), value);
    }
    next.run(req).await
}

/// The `Authorization` a legacy key stands in for. Supabase's gateway copies the apikey into
/// `Authorization` as it is, without `Bearer `: auth then sees no bearer token, so endpoints that
/// need a user answer GoTrue's 401 "This endpoint requires a Bearer token" (not a 403 about the
/// key's missing `sub`). REST keeps `Bearer <key>`, so an apikey alone still runs as its role.
fn legacy_authorization(req: &Request, key: &str) -> String {
    if req.uri().path().starts_with("/auth/v1/") {
        key.to_owned()
    } else {
        format!("Bearer {key}")
    }
}

/// Supabase's gateway for the new keys: a publishable key acts as `anon`, a secret key as
/// `service_role` (refused from a browser), each through a JWT minted for that role that goes
/// inward in place of the key (`Authorization` unless the caller sent a token of its own,
/// `apikey` and `x-api-key`), so REST, auth and realtime see what a legacy key would give them
/// and the key itself never reaches SQL's `request.headers`.
fn new_key_identity(ring: &KeyRing, key: &str, req: &mut Request) -> Result<(), Box<Response>> {
    let Some(kind) = ring.identify(key) else {
        return Err(Box::new(invalid_api_key()));
    };
    if kind == KeyKind::Secret && from_browser(req) {
        return Err(Box::new(unauthorized(
            "Forbidden use of secret API key in browser",
        )));
    }
    let used = if is_websocket(req) {
        Use::Socket
    } else {
        Use::Request
    };
    if used == Use::Socket {
        // Realtime closes the socket when the key is revoked.
        req.extensions_mut().insert(ring.lease(key));
    }
    let token = ring.token(kind, used).map_err(|e| {
        tracing::error!(error = %e, "cannot mint the token of an API key");
        Box::new(StatusCode::INTERNAL_SERVER_ERROR.into_response())
    })?;
    let value = |s: &str| HeaderValue::from_str(s).map_err(|_| Box::new(invalid_api_key()));
    let bearer = value(&format!("Bearer {token}"))?;
    let token = value(&token)?;
    if !has_own_authorization(req) {
        req.headers_mut().insert(header::AUTHORIZATION, bearer);
    }
    let headers = req.headers_mut();
    if headers.contains_key("apikey") {
        headers.insert(HeaderName::from_static("apikey"), token.clone());
    }
    headers.insert(HeaderName::from_static("x-api-key"), token);
    Ok(())
}

/// A token the caller sent itself (a user's session), kept over the key's. `Bearer sb_…` is not
/// one: older clients repeat the key there, and a key is not a JWT.
fn has_own_authorization(req: &Request) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.starts_with("Bearer sb_"))
}

/// Browsers say `Mozilla/…`; servers, scripts and Node's fetch do not.
fn from_browser(req: &Request) -> bool {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.trim_start().starts_with("Mozilla/"))
}

fn is_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn apikey(req: &Request) -> Option<String> {
    if let Some(v) = req.headers().get("apikey") {
        return v.to_str().ok().map(str::to_owned);
    }
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == "apikey")
        .map(|(_, v)| v.into_owned())
}

/// One of the two keys, or another unexpired token signed with the project's secret whose role
/// is anon or service_role (as a key minted from the same secret elsewhere would be).
fn is_valid_key(ctx: &ServiceContext, key: &str) -> bool {
    ctx.keys.is_known(key) || ctx.jwt.verify_api_key(key).is_ok()
}

/// Supabase's answer to an `sb_` key that is not (or no longer) one of the project's.
fn invalid_api_key() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "message": "Invalid API key",
            "hint": "Double check your Supabase `anon` or `service_role` API key."
        })),
    )
        .into_response()
}

fn unauthorized(message: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}
