//! craftbase as an OAuth 2.1 authorization server (GoTrue's OAuth server): third-party apps
//! registered as clients send users to `GET /oauth/authorize`, the app's consent page (at
//! `GOTRUE_OAUTH_SERVER_AUTHORIZATION_PATH` on the site URL) shows and answers the request through
//! `/oauth/authorizations/{id}`, and the client trades the code at `POST /oauth/token` with PKCE.
//! Everything answers `404 feature_disabled` unless `GOTRUE_OAUTH_SERVER_ENABLED` is set.

pub mod authorize;
pub mod client;
pub mod discovery;
pub mod grant;
pub mod id_token;
pub mod registration;
pub mod token;

use crate::error::AuthError;
use crate::AuthState;

/// The scopes a client may ask for.
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "email", "phone", "offline_access"];

/// Refuses every OAuth-server route while the server is switched off.
pub fn enabled(state: &AuthState) -> Result<(), AuthError> {
    if state.settings.oauth_server_enabled {
        Ok(())
    } else {
        Err(AuthError::FeatureDisabled("OAuth server is disabled"))
    }
}

/// `POST /oauth/clients/register` (RFC 7591): a client registers itself, when
/// `GOTRUE_OAUTH_SERVER_ALLOW_DYNAMIC_REGISTRATION` allows it.
pub async fn register(
    axum::extract::State(state): axum::extract::State<AuthState>,
    caller: crate::limit::Client,
    crate::body::Body(p): crate::body::Body<registration::Register>,
) -> Result<axum::response::Response, AuthError> {
    enabled(&state)?;
    if !state.settings.oauth_server_allow_dynamic_registration {
        return Err(AuthError::DynamicRegistrationDisabled);
    }
    state
        .limits
        .oauth_client_register(&state.settings, &caller)
        .await?;
    registration::register(&state, p, "dynamic").await
}

/// A space-separated scope string as a list, blanks dropped.
pub fn scope_list(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_owned())
        .collect()
}
