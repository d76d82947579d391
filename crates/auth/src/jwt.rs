//! Access tokens: the claims GoTrue puts in them (§2.4), and reading the caller's bearer token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use craftbase_shared::Claims;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::AuthError;
use crate::user::User;
use crate::AuthState;

/// One authentication method of a session, as the `amr` claim lists it.
#[derive(Debug, Clone)]
pub struct Amr {
    pub method: String,
    pub timestamp: i64,
}

/// Methods that prove a second factor, so a session holding one is at `aal2` (as GoTrue counts).
const SECOND_FACTOR_METHODS: [&str; 3] = ["totp", "mfa/phone", "mfa/webauthn"];

/// The assurance level a session's methods reach.
pub fn aal(amr: &[Amr]) -> &'static str {
    if amr
        .iter()
        .any(|a| SECOND_FACTOR_METHODS.contains(&a.method.as_str()))
    {
        "aal2"
    } else {
        "aal1"
    }
}

/// Signs an access token for `user` in session `session_id`; returns it with its `exp`. A
/// session an OAuth client obtained carries that client's id as `client_id`.
pub fn sign_access_token(
    state: &AuthState,
    issuer: &str,
    user: &User,
    session_id: Uuid,
    amr: &[Amr],
    client_id: Option<Uuid>,
) -> Result<(String, i64), AuthError> {
    let iat = chrono::Utc::now().timestamp();
    let exp = iat + state.settings.jwt_exp as i64;
    let mut claims = json!({
        "iss": issuer,
        "sub": user.id.to_string(),
        "aud": user.aud,
        "exp": exp,
        "iat": iat,
        "email": user.email.clone().unwrap_or_default(),
        "phone": user.phone.clone().unwrap_or_default(),
        "app_metadata": user.app_metadata,
        "user_metadata": user.user_metadata,
        "role": user.role,
        "aal": aal(amr),
        "amr": amr.iter().map(|a| json!({"method": a.method, "timestamp": a.timestamp})).collect::<Vec<_>>(),
        "session_id": session_id.to_string(),
        "is_anonymous": user.is_anonymous,
    });
    if let Some(client) = client_id {
        claims["client_id"] = json!(client.to_string());
    }
    let token = match &state.signing {
        Some(key) => key.sign(&claims).map_err(|e| e.to_string()),
        None => craftbase_shared::keys::sign(&state.ctx.keys.jwt_secret, &claims)
            .map_err(|e| e.to_string()),
    }
    .map_err(|e| AuthError::Internal(format!("signing an access token: {e}")))?;
    Ok((token, exp))
}

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
        let claims = state.ctx.jwt.verify(token).map_err(|e| {
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
