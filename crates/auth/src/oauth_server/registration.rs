//! Registering an OAuth client, shared by the admin API (`manual`) and dynamic registration
//! (`dynamic`): GoTrue's checks, the row, and the secret answered this once. Here, below both
//! `admin::oauth_client` and the OAuth server's routes, so neither depends on the other.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::client::{self, Client, AUTH_METHODS, COLUMNS};
use crate::error::AuthError;
use crate::AuthState;

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Validation(msg.into())
}

/// A client's registration: `POST /admin/oauth/clients` and `POST /oauth/clients/register`.
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
                client::auth_methods_text()
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
