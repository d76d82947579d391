//! The caller's `Authorization: Bearer` token: verified as an access token, and the admin
//! check. Kept apart from `jwt` (which signs tokens for users) so `user` can read the caller
//! without depending on it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use craftbase_shared::Claims;
use serde_json::Value;
use uuid::Uuid;

use crate::error::AuthError;
use crate::AuthState;

/// The verified claims of the request's `Authorization: Bearer` token.
pub struct Bearer {
    pub claims: Claims,
}

impl Bearer {
    /// The user the token is about; tokens without a user (the API keys) are refused.
    pub fn user_id(&self) -> Result<Uuid, AuthError> {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| AuthError::BadJwt("invalid claim: missing sub claim".into()))
    }

    /// The session the token belongs to, when it has one.
    pub fn session_id(&self) -> Option<Uuid> {
        self.claims
            .get("session_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    }

    /// True when the token's role may use the admin API.
    pub fn is_admin(&self, state: &AuthState) -> bool {
        self.claims
            .get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| state.settings.jwt_admin_roles.iter().any(|a| a == r))
    }
}

impl FromRequestParts<AuthState> for Bearer {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AuthState) -> Result<Self, AuthError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::NoAuthorization)?;
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::NoAuthorization)?;
        let claims = state.ctx.jwt.verify_access_token(token).map_err(|e| {
            AuthError::BadJwt(format!(
                "invalid JWT: unable to parse or verify signature, {e}"
            ))
        })?;
        Ok(Bearer { claims })
    }
}

/// A caller whose token has the admin role.
pub struct Admin;

impl FromRequestParts<AuthState> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AuthState) -> Result<Self, AuthError> {
        let bearer = Bearer::from_request_parts(parts, state).await?;
        if bearer.is_admin(state) {
            Ok(Admin)
        } else {
            Err(AuthError::NotAdmin)
        }
    }
}
