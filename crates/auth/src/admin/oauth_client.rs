//! `/admin/oauth/clients`: registering, listing, changing, deleting OAuth clients and rotating
//! their secrets (auth-js `auth.admin.oauth`), when the OAuth server is switched on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bearer::Admin;
use crate::body::Body;
use crate::error::AuthError;
use crate::oauth_server::client::{self, Client, AUTH_METHODS, COLUMNS};
use crate::oauth_server::enabled;
use crate::oauth_server::registration::{register, Register};
use crate::AuthState;

/// `PUT /admin/oauth/clients/{client_id}`.
#[derive(Deserialize)]
pub struct Update {
    redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    token_endpoint_auth_method: Option<String>,
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Validation(msg.into())
}

/// The client named in the path, or GoTrue's answers for a bad or unknown id.
async fn load(db: &deadpool_postgres::Object, id: &str) -> Result<Client, AuthError> {
    let id = Uuid::parse_str(id).map_err(|_| invalid("invalid client_id format"))?;
    Client::find(db, id)
        .await?
        .ok_or(AuthError::OAuthClientNotFound)
}

/// `POST /admin/oauth/clients`: registers a client; confidential ones get a secret, answered
/// this once.
pub async fn create(
    State(state): State<AuthState>,
    _admin: Admin,
    Body(p): Body<Register>,
) -> Result<Response, AuthError> {
    enabled(&state)?;
    register(&state, p, "manual").await
}

/// `GET /admin/oauth/clients`: every client, newest first.
pub async fn list(State(state): State<AuthState>, _admin: Admin) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let sql = format!(
        "select {COLUMNS} from auth.oauth_clients where deleted_at is null order by created_at desc"
    );
    let clients: Vec<Value> = db
        .query(&sql, &[])
        .await?
        .iter()
        .map(|r| Client::from_row(r).to_json())
        .collect();
    // GoTrue leaves the key out of an empty list.
    if clients.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(json!({ "clients": clients })))
}

/// `GET /admin/oauth/clients/{client_id}`.
pub async fn get(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    Ok(Json(load(&db, &id).await?.to_json()))
}

/// `PUT /admin/oauth/clients/{client_id}`: changes what the body names.
pub async fn update(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
    Body(p): Body<Update>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let mut c = load(&db, &id).await?;
    if p.redirect_uris.is_none()
        && p.grant_types.is_none()
        && p.client_name.is_none()
        && p.client_uri.is_none()
        && p.logo_uri.is_none()
        && p.token_endpoint_auth_method.is_none()
    {
        return Err(invalid("No fields provided for update"));
    }
    if let Some(uris) = &p.redirect_uris {
        client::check_redirect_uris(uris, false)?;
    }
    if let Some(types) = &p.grant_types {
        client::check_grant_types(types)?;
    }
    client::check_name_and_uris(
        p.client_name.as_deref(),
        p.client_uri.as_deref(),
        p.logo_uri.as_deref(),
    )?;
    if let Some(m) = &p.token_endpoint_auth_method {
        if !AUTH_METHODS.contains(&m.as_str()) {
            return Err(invalid(format!(
                "invalid token_endpoint_auth_method: must be one of {}",
                client::auth_methods_text()
            )));
        }
        if client::client_type_of(m) != c.client_type {
            let valid = if c.is_public() {
                "[none]"
            } else {
                "[client_secret_basic client_secret_post]"
            };
            return Err(invalid(format!(
                "token_endpoint_auth_method '{m}' is not valid for client_type '{}'; valid methods: {valid}",
                c.client_type
            )));
        }
        c.auth_method = m.clone();
    }
    if let Some(v) = p.redirect_uris {
        c.redirect_uris = v;
    }
    if let Some(v) = p.grant_types {
        c.grant_types = v;
    }
    if let Some(v) = p.client_name {
        c.name = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.client_uri {
        c.uri = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.logo_uri {
        c.logo_uri = Some(v).filter(|s| !s.is_empty());
    }
    let sql = format!(
        "update auth.oauth_clients set redirect_uris = $2, grant_types = $3, client_name = $4, \
           client_uri = $5, logo_uri = $6, token_endpoint_auth_method = $7, updated_at = now() \
         where id = $1 returning {COLUMNS}"
    );
    let row = db
        .query_one(
            &sql,
            &[
                &c.id,
                &c.redirect_uris.join(","),
                &c.grant_types.join(","),
                &c.name,
                &c.uri,
                &c.logo_uri,
                &c.auth_method,
            ],
        )
        .await?;
    Ok(Json(Client::from_row(&row).to_json()))
}

/// `DELETE /admin/oauth/clients/{client_id}`: marks it deleted; 204.
pub async fn delete(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let c = load(&db, &id).await?;
    db.execute(
        "update auth.oauth_clients set deleted_at = now(), updated_at = now() where id = $1",
        &[&c.id],
    )
    .await?;
    tracing::info!(client_id = %c.id, "OAuth client deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/oauth/clients/{client_id}/regenerate_secret`: a new secret, answered once.
pub async fn regenerate_secret(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let c = load(&db, &id).await?;
    if c.is_public() {
        return Err(invalid("Cannot regenerate secret for public client"));
    }
    let (secret, hash) = client::new_secret();
    let sql = format!(
        "update auth.oauth_clients set client_secret_hash = $2, updated_at = now() \
         where id = $1 returning {COLUMNS}"
    );
    let row = db.query_one(&sql, &[&c.id, &hash]).await?;
    tracing::info!(client_id = %c.id, "OAuth client secret regenerated");
    let mut body = Client::from_row(&row).to_json();
    body["client_secret"] = json!(secret);
    Ok(Json(body))
}
