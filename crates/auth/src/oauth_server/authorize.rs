//! The authorization request: `GET /oauth/authorize` records it and sends the browser to the
//! app's consent page; the signed-in user reads it (`GET /oauth/authorizations/{id}`, which
//! approves at once when an earlier consent covers its scopes) and answers it
//! (`POST /oauth/authorizations/{id}/consent`), each answer being where to send the browser.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::client::Client;
use super::{enabled, scope_list, SUPPORTED_SCOPES};
use crate::bearer::Bearer;
use crate::body::Body;
use crate::error::AuthError;
use crate::user::User;
use crate::{redirect, AuthState};

/// The query a client sends the browser with.
#[derive(Deserialize, Default)]
pub struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    nonce: String,
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// `redirect_uri` with `error`, `error_description` and the client's `state`.
fn error_url(redirect_uri: &str, error: &str, description: &str, state: &str) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error)
            .append_pair("error_description", description);
        if !state.is_empty() {
            q.append_pair("state", state);
        }
    }
    url.into()
}

fn error_redirect(redirect_uri: &str, error: &str, description: &str, state: &str) -> Response {
    found(&error_url(redirect_uri, error, description, state))
}

/// Response type, scopes, resource and PKCE, checked once the redirect URI is trusted.
fn check_request(q: &mut AuthorizeQuery, default_scope: &str) -> Result<(), String> {
    if q.response_type.is_empty() {
        q.response_type = "code".into();
    }
    if q.scope.is_empty() {
        q.scope = default_scope.to_owned();
    }
    if q.response_type != "code" {
        return Err("only response_type=code is supported".into());
    }
    let scopes = scope_list(&q.scope);
    if scopes.is_empty() {
        return Err("scope parameter cannot be empty".into());
    }
    if let Some(s) = scopes
        .iter()
        .find(|s| !SUPPORTED_SCOPES.contains(&s.as_str()))
    {
        return Err(format!("unsupported scope: {s}"));
    }
    if !q.resource.is_empty() {
        let url = url::Url::parse(&q.resource).map_err(|_| "resource must be a valid URI")?;
        if url.fragment().is_some() {
            return Err("resource must not include a fragment component".into());
        }
        if url.query().is_some() {
            return Err("resource must not include a query component".into());
        }
    }
    if q.code_challenge.is_empty() || q.code_challenge_method.is_empty() {
        return Err("PKCE flow requires both code_challenge and code_challenge_method".into());
    }
    // OAuth 2.1: `plain` sends the verifier itself as the challenge, so it protects nothing
    // against whoever sees the authorization request. GoTrue still accepts it.
    if !q.code_challenge_method.eq_ignore_ascii_case("s256") {
        return Err("code_challenge_method must be 'S256'".into());
    }
    if !(43..=128).contains(&q.code_challenge.len()) {
        return Err("code_challenge must be between 43 and 128 characters".into());
    }
    Ok(())
}

/// `GET /oauth/authorize`: 302 to `<site URL><authorization path>?authorization_id=…`.
pub async fn authorize(
    State(state): State<AuthState>,
    caller: crate::limit::Client,
    Query(mut q): Query<AuthorizeQuery>,
) -> Result<Response, AuthError> {
    enabled(&state)?;
    state.limits.authorize(&state.settings, &caller).await?;
    if q.client_id.is_empty() {
        return Err(AuthError::Validation("client_id is required".into()));
    }
    if q.redirect_uri.is_empty() {
        return Err(AuthError::Validation("redirect_uri is required".into()));
    }
    let id = Uuid::parse_str(&q.client_id)
        .map_err(|_| AuthError::OAuthClientInvalid("invalid client_id format"))?;
    let db = state.ctx.admin.get().await?;
    let client = Client::find(&db, id)
        .await?
        .ok_or(AuthError::OAuthClientInvalid("invalid client_id"))?;
    if !client.redirect_uris.contains(&q.redirect_uri) {
        return Err(AuthError::Validation("invalid redirect_uri".into()));
    }
    let s = &state.settings;
    if let Err(why) = check_request(&mut q, &s.oauth_server_default_scope) {
        return Ok(error_redirect(
            &q.redirect_uri,
            "invalid_request",
            &why,
            &q.state,
        ));
    }
    crate::sweep::before_insert(&db, crate::sweep::Expiring::OAuthAuthorization).await?;
    let authorization_id = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let ttl = s.oauth_server_authorization_ttl.as_secs_f64();
    let blank = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
    db.execute(
        "insert into auth.oauth_authorizations (id, authorization_id, client_id, redirect_uri, \
           scope, state, resource, code_challenge, code_challenge_method, nonce, created_at, \
           expires_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::auth.code_challenge_method, $10, \
           now(), now() + make_interval(secs => $11))",
        &[
            &Uuid::new_v4(),
            &authorization_id,
            &client.id,
            &q.redirect_uri,
            &q.scope,
            &blank(&q.state),
            &blank(&q.resource),
            &q.code_challenge,
            &q.code_challenge_method.to_ascii_lowercase(),
            &blank(&q.nonce),
            &ttl,
        ],
    )
    .await?;
    let Some(path) = s
        .oauth_server_authorization_path
        .as_deref()
        .filter(|p| !p.is_empty())
    else {
        return Ok(error_redirect(
            &q.redirect_uri,
            "server_error",
            "oauth authorization path not configured",
            &q.state,
        ));
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let consent = format!(
        "{}{path}?authorization_id={authorization_id}",
        s.site_url.trim_end_matches('/')
    );
    Ok(found(&consent))
}

/// A pending authorization as the consent flow sees it.
struct Pending {
    id: Uuid,
    client_id: Uuid,
    user_id: Option<Uuid>,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    status: String,
    expired: bool,
}

/// Locks the authorization `authorization_id` for this transaction.
async fn lock(db: &impl GenericClient, authorization_id: &str) -> Result<Pending, AuthError> {
    let row = db
        .query_opt(
            "select id, client_id, user_id, redirect_uri, scope, state, status::text, \
               expires_at < now() from auth.oauth_authorizations \
             where authorization_id = $1 for update",
            &[&authorization_id],
        )
        .await?
        .ok_or(AuthError::OAuthAuthorizationNotFound)?;
    Ok(Pending {
        id: row.get(0),
        client_id: row.get(1),
        user_id: row.get(2),
        redirect_uri: row.get(3),
        scope: row.get(4),
        state: row.get(5),
        status: row.get(6),
        expired: row.get(7),
    })
}

/// Refuses requests from a browser origin that is not one of the app's.
fn check_origin(state: &AuthState, headers: &HeaderMap) -> Result<(), AuthError> {
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) if !origin.is_empty() && !redirect::is_allowed(&state.settings, origin) => {
            Err(AuthError::Validation("unauthorized request origin".into()))
        }
        _ => Ok(()),
    }
}

async fn signed_in(state: &AuthState, bearer: &Bearer) -> Result<User, AuthError> {
    let db = state.ctx.admin.get().await?;
    User::find(&db, bearer.user_id()?)
        .await?
        .ok_or(AuthError::UserGone)
}

/// Approves: a one-time code (a UUID) and the redirect carrying it.
async fn approve(db: &impl GenericClient, p: &Pending) -> Result<String, AuthError> {
    let code = Uuid::new_v4().to_string();
    db.execute(
        "update auth.oauth_authorizations set status = 'approved', approved_at = now(), \
           authorization_code = $2 where id = $1",
        &[&p.id, &code],
    )
    .await?;
    let mut url = url::Url::parse(&p.redirect_uri)
        .map_err(|e| AuthError::Internal(format!("stored redirect_uri: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = p.state.as_deref().filter(|s| !s.is_empty()) {
            q.append_pair("state", s);
        }
    }
    Ok(url.to_string())
}

/// Marks an expired authorization and answers as if it did not exist.
async fn expire(
    tx: deadpool_postgres::Transaction<'_>,
    p: &Pending,
) -> Result<Json<Value>, AuthError> {
    tx.execute(
        "update auth.oauth_authorizations set status = 'expired' where id = $1 and status = 'pending'",
        &[&p.id],
    )
    .await?;
    tx.commit().await?;
    Err(AuthError::OAuthAuthorizationNotFound)
}

/// `GET /oauth/authorizations/{id}`: the request's client, user and scopes, or
/// `{redirect_url}` when an earlier consent already covers them.
pub async fn details(
    State(state): State<AuthState>,
    headers: HeaderMap,
    bearer: Bearer,
    Path(authorization_id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    check_origin(&state, &headers)?;
    let user = signed_in(&state, &bearer).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let p = lock(&tx, &authorization_id).await?;
    if p.expired && p.status == "pending" {
        return expire(tx, &p).await;
    }
    if p.status != "pending" {
        return Err(AuthError::Validation(
            "authorization request cannot be processed".into(),
        ));
    }
    match p.user_id {
        None => {
            tx.execute(
                "update auth.oauth_authorizations set user_id = $2 where id = $1",
                &[&p.id, &user.id],
            )
            .await?;
            let granted: Option<String> = tx
                .query_opt(
                    "select scopes from auth.oauth_consents \
                     where user_id = $1 and client_id = $2 and revoked_at is null",
                    &[&user.id, &p.client_id],
                )
                .await?
                .map(|r| r.get(0));
            if let Some(granted) = granted {
                let granted = scope_list(&granted);
                if scope_list(&p.scope).iter().all(|s| granted.contains(s)) {
                    let url = approve(&tx, &p).await?;
                    tx.commit().await?;
                    return Ok(Json(json!({ "redirect_url": url })));
                }
            }
        }
        Some(owner) if owner != user.id => return Err(AuthError::OAuthAuthorizationNotFound),
        Some(_) => {}
    }
    let client = Client::find(&tx, p.client_id)
        .await?
        .ok_or(AuthError::OAuthAuthorizationNotFound)?;
    tx.commit().await?;
    let mut user_json = json!({ "id": user.id });
    if let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) {
        user_json["email"] = json!(email);
    }
    Ok(Json(json!({
        "authorization_id": authorization_id,
        "redirect_uri": p.redirect_uri,
        "client": client.details(),
        "user": user_json,
        "scope": p.scope,
    })))
}

/// `{action: "approve" | "deny"}`.
#[derive(Deserialize)]
pub struct Consent {
    #[serde(default)]
    action: String,
}

/// `POST /oauth/authorizations/{id}/consent`: `{redirect_url}` with a code, or with
/// `error=access_denied`.
pub async fn consent(
    State(state): State<AuthState>,
    headers: HeaderMap,
    bearer: Bearer,
    Path(authorization_id): Path<String>,
    Body(body): Body<Consent>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    check_origin(&state, &headers)?;
    let user = signed_in(&state, &bearer).await?;
    if body.action != "approve" && body.action != "deny" {
        return Err(AuthError::Validation(
            "action must be 'approve' or 'deny'".into(),
        ));
    }
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let p = lock(&tx, &authorization_id).await?;
    if p.expired && p.status == "pending" {
        return expire(tx, &p).await;
    }
    if p.status != "pending" {
        return Err(AuthError::Validation(
            "authorization request is no longer pending".into(),
        ));
    }
    if p.user_id != Some(user.id) {
        return Err(AuthError::OAuthAuthorizationNotFound);
    }
    let url = if body.action == "approve" {
        let url = approve(&tx, &p).await?;
        tx.execute(
            "insert into auth.oauth_consents (id, user_id, client_id, scopes, granted_at) \
             values ($1, $2, $3, $4, now()) \
             on conflict (user_id, client_id) do update \
               set scopes = excluded.scopes, granted_at = now(), revoked_at = null",
            &[
                &Uuid::new_v4(),
                &user.id,
                &p.client_id,
                &scope_list(&p.scope).join(" "),
            ],
        )
        .await?;
        url
    } else {
        tx.execute(
            "update auth.oauth_authorizations set status = 'denied' where id = $1",
            &[&p.id],
        )
        .await?;
        error_url(
            &p.redirect_uri,
            "access_denied",
            "User denied the request",
            p.state.as_deref().unwrap_or(""),
        )
    };
    tx.commit().await?;
    tracing::info!(user_id = %user.id, client_id = %p.client_id, action = %body.action, "OAuth consent");
    Ok(Json(json!({ "redirect_url": url })))
}
