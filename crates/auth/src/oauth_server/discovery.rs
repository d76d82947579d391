//! What OAuth clients read about this server: the metadata document (RFC 8414, which OpenID
//! discovery extends, so one document answers both) and `/oauth/userinfo`, which tells a client
//! about its user as far as the session's scopes allow.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{enabled, scope_list, SUPPORTED_SCOPES};
use crate::bearer::Bearer;
use crate::error::AuthError;
use crate::redirect::Origin;
use crate::user::User;
use crate::AuthState;

fn metadata(state: &AuthState, origin: &Origin) -> Response {
    let issuer = origin.issuer(&state.settings);
    let base = issuer.trim_end_matches('/');
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "userinfo_endpoint": format!("{base}/oauth/userinfo"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "claims_supported": ["sub", "aud", "iss", "exp", "iat", "auth_time", "nonce", "email",
            "email_verified", "phone_number", "phone_number_verified", "name", "picture",
            "preferred_username", "updated_at"],
        "code_challenge_methods_supported": ["S256", "plain"],
    });
    if state.settings.oauth_server_enabled && state.settings.oauth_server_allow_dynamic_registration
    {
        doc["registration_endpoint"] = json!(format!("{base}/oauth/clients/register"));
    }
    ([(header::CACHE_CONTROL, "public, max-age=600")], Json(doc)).into_response()
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AuthState>, origin: Origin) -> Response {
    metadata(&state, &origin)
}

/// `GET /.well-known/oauth-authorization-server`: the same, while the OAuth server is on.
pub async fn authorization_server(
    State(state): State<AuthState>,
    origin: Origin,
) -> Result<Response, AuthError> {
    enabled(&state)?;
    Ok(metadata(&state, &origin))
}

/// `GET /oauth/userinfo`: `sub`, and what the session's scopes (`email`, `profile`, `phone`)
/// open; a session without scopes (not an OAuth client's) gets `sub` alone.
pub async fn userinfo(
    State(state): State<AuthState>,
    bearer: Bearer,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let user = User::find(&db, bearer.user_id()?)
        .await?
        .ok_or(AuthError::UserGone)?;
    let mut info = Map::new();
    info.insert("sub".into(), json!(user.id));
    let scopes: Vec<String> = match bearer.session_id() {
        Some(id) => db
            .query_opt("select scopes from auth.sessions where id = $1", &[&id])
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0))
            .map(|s| scope_list(&s))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let email = user.email.clone().filter(|e| !e.is_empty());
    if has("email") {
        if let Some(e) = &email {
            info.insert("email".into(), json!(e));
        }
        if user.email_confirmed_at.is_some() {
            info.insert("email_verified".into(), json!(true));
        }
    }
    if has("profile") {
        let meta = &user.user_metadata;
        let text = |k: &str| {
            meta[k]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if let Some(name) = text("name").or_else(|| email.clone()) {
            info.insert("name".into(), json!(name));
        }
        if let Some(picture) = text("picture").or_else(|| text("avatar_url")) {
            info.insert("picture".into(), json!(picture));
        }
        if let Some(username) = text("preferred_username").or_else(|| text("username")) {
            info.insert("preferred_username".into(), json!(username));
        }
        if let Some(updated) = user.updated_at {
            info.insert("updated_at".into(), json!(updated.timestamp()));
        }
        if !meta.is_null() {
            info.insert("user_metadata".into(), meta.clone());
        }
    }
    if has("phone") {
        if let Some(phone) = user.phone.clone().filter(|p| !p.is_empty()) {
            info.insert("phone".into(), json!(phone));
        }
        if user.phone_confirmed_at.is_some() {
            info.insert("phone_verified".into(), json!(true));
        }
    }
    Ok(Json(Value::Object(info)))
}
