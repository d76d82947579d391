//! Request bodies: JSON only, bounded in size, and every failure a clean 400 before any write.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::AuthError;

/// Largest body accepted; auth requests are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body parsed into `T`; unknown fields are ignored, as auth-js sends extra ones.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, AuthError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| AuthError::TooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AuthError::BadJson("the body is empty".into()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| AuthError::BadJson(e.to_string()))
    }
}

/// A body that may be absent (logout, resend without options): absent means `T::default()`.
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = AuthError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, AuthError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| AuthError::TooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalBody)
            .map_err(|e| AuthError::BadJson(e.to_string()))
    }
}

/// Normalises an email as GoTrue stores it: trimmed and lower case; refuses what is not one.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 255
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if valid {
        Ok(email)
    } else {
        Err(AuthError::Validation(
            "Unable to validate email address: invalid format".into(),
        ))
    }
}
