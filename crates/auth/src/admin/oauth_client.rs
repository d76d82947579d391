//! `/admin/oauth/clients`: registering, listing, changing, deleting OAuth clients and rotating
//! their secrets (auth-js `auth.admin.oauth`), when the OAuth server is switched on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bearer::Admin;
use crate::body::Body;
use crate::error::AuthError;
use crate::oauth_server::client::{self, Client, AUTH_METHODS, COLUMNS};
use crate::oauth_server::enabled;
use crate::AuthState;

/// `POST /admin/oauth/clients`.
#[derive(Deserialize)]
pub struct Register {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_type: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    client_name: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
}

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

fn methods() -> String {
    format!("[{}]", AUTH_METHODS.join(" "))
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

/// Registers a client, by an admin (`manual`) or by the client itself (`dynamic`).
pub async fn register(
    state: &AuthState,
    p: Register,
    registration_type: &str,
) -> Result<Response, AuthError> {
    client::check_redirect_uris(&p.redirect_uris, true)?;
    if let Some(types) = &p.grant_types {
        if !types.is_empty() {
            client::check_grant_types(types)?;
        }
    }
    client::check_name_and_uris(
        p.client_name.as_deref(),
        p.client_uri.as_deref(),
        p.logo_uri.as_deref(),
    )?;
    let kind = p.client_type.clone().filter(|t| !t.is_empty());
    let method = p
        .token_endpoint_auth_method
        .clone()
        .filter(|m| !m.is_empty());
    if kind
        .as_deref()
        .is_some_and(|k| k != "public" && k != "confidential")
    {
        return Err(invalid("client_type must be 'public' or 'confidential'"));
    }
    if let Some(m) = &method {
        if !AUTH_METHODS.contains(&m.as_str()) {
            return Err(invalid(format!(
                "token_endpoint_auth_method must be one of: {}",
                methods()
            )));
        }
    }
    if let (Some(k), Some(m)) = (&kind, &method) {
        let expected = client::client_type_of(m);
        if k != expected {
            return Err(invalid(format!(
                "client_type '{k}' is inconsistent with token_endpoint_auth_method '{m}' (expected client_type '{expected}')"
            )));
        }
    }
    let kind = kind.unwrap_or_else(|| {
        method
            .as_deref()
            .map(client::client_type_of)
            .unwrap_or("confidential")
            .to_owned()
    });
    let method = method.unwrap_or_else(|| {
        if kind == "public" {
            "none"
        } else {
            "client_secret_basic"
        }
        .to_owned()
    });
    let grant_types = p
        .grant_types
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    let (secret, hash) = if kind == "confidential" {
        let (s, h) = client::new_secret();
        (Some(s), Some(h))
    } else {
        (None, None)
    };
    let db = state.ctx.admin.get().await?;
    let sql = format!(
        "insert into auth.oauth_clients (id, client_secret_hash, registration_type, \
           redirect_uris, grant_types, client_name, client_uri, logo_uri, client_type, \
           token_endpoint_auth_method) \
         values ($1, $2, $10::text::auth.oauth_registration_type, $3, $4, $5, $6, $7, \
           $8::text::auth.oauth_client_type, $9) \
         returning {COLUMNS}"
    );
    let empty_to_none = |v: Option<String>| v.filter(|s| !s.is_empty());
    let row = db
        .query_one(
            &sql,
            &[
                &Uuid::new_v4(),
                &hash,
                &p.redirect_uris.join(","),
                &grant_types.join(","),
                &empty_to_none(p.client_name),
                &empty_to_none(p.client_uri),
                &empty_to_none(p.logo_uri),
                &kind,
                &method,
                &registration_type,
            ],
        )
        .await?;
    let created = Client::from_row(&row);
    tracing::info!(client_id = %created.id, registration_type, "OAuth client registered");
    let mut body = created.to_json();
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
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
                methods()
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
