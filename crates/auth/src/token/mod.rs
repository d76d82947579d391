//! `POST /token?grant_type=...`: the one endpoint that hands out sessions for credentials.

pub mod id_token;
pub mod password;
pub mod pkce;
pub mod refresh;

use axum::extract::{Query, State};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::body::Body;
use crate::error::AuthError;
use crate::limit::Client;
use crate::redirect::Origin;
use crate::session::Device;
use crate::AuthState;

/// `?grant_type=`.
#[derive(Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

/// Dispatches on the grant type; each grant parses its own body.
pub async fn grant(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    device: Device,
    Query(query): Query<GrantQuery>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, AuthError> {
    match query.grant_type.as_deref() {
        Some("password") => {
            state.limits.token(&state.settings, &client).await?;
            password::grant(&state, &origin, &device, parse(body)?).await
        }
        Some("refresh_token") => {
            state.limits.token(&state.settings, &client).await?;
            refresh::grant(&state, &origin, parse(body)?).await
        }
        Some("id_token") => {
            state.limits.token(&state.settings, &client).await?;
            id_token::grant(&state, &origin, &device, parse(body)?).await
        }
        Some("pkce") => {
            state.limits.token(&state.settings, &client).await?;
            pkce::grant(&state, &origin, &device, parse(body)?).await
        }
        Some("web3") => {
            crate::web3::any_enabled(&state)?;
            state.limits.web3(&state.settings, &client).await?;
            crate::web3::grant(&state, &origin, &device, parse(body)?).await
        }
        _ => Err(AuthError::OAuth {
            error: "unsupported_grant_type",
            description: "unsupported_grant_type".into(),
        }),
    }
    .map(Json)
}

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, AuthError> {
    serde_json::from_value(body).map_err(|e| AuthError::BadJson(e.to_string()))
}
