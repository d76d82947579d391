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

/// Normalises an email as GoTrue stores it: trimmed and lower case; refuses what GoTrue's
/// validator (badoux/checkmail's format) refuses, with its messages.
pub fn email(raw: &str) -> Result<String, AuthError> {
    let email = raw.trim();
    if email.is_empty() {
        return Err(AuthError::Validation("An email address is required".into()));
    }
    if email.len() > 255 {
        return Err(AuthError::Validation("An email address is too long".into()));
    }
    if !email_format(email) {
        return Err(AuthError::Validation(
            "Unable to validate email address: invalid format".into(),
        ));
    }
    Ok(email.to_lowercase())
}

/// `local@domain`: the local part from RFC 5322's atext and dots; the domain dot-separated
/// labels of 1 to 63 letters, digits and inner hyphens.
fn email_format(email: &str) -> bool {
    const ATEXT: &str = ".!#$%&'*+/=?^_`{|}~-";
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ATEXT.contains(c));
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    local_ok && domain.split('.').all(label_ok)
}

/// A phone number as GoTrue keeps one: `+` and spaces dropped, then E.164 digits (1 to 15, no
/// leading zero), or its 400 before any lookup.
pub fn phone(raw: &str) -> Result<String, AuthError> {
    let phone: String = raw
        .strip_prefix('+')
        .unwrap_or(raw)
        .chars()
        .filter(|c| *c != ' ')
        .collect();
    let e164 = (2..=15).contains(&phone.len())
        && phone.bytes().all(|b| b.is_ascii_digit())
        && !phone.starts_with('0');
    if e164 {
        Ok(phone)
    } else {
        Err(AuthError::Validation(
            "Invalid phone number format (E.164 required)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{email, phone};

    #[test]
    fn emails_as_gotrue_validates_them() {
        assert_eq!(email(" A.b+c@Example.COM ").unwrap(), "a.b+c@example.com");
        for bad in [
            "xx:;x@x.x",
            "a@",
            "@b.c",
            "a@-b.c",
            "a@b..c",
            "a b@c.d",
            "a@b@c",
            "",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_must_be_e164() {
        assert_eq!(phone("+1 555 0100").unwrap(), "15550100");
        for bad in [
            "123456789-invalid",
            "0123",
            "1",
            "+1234567890123456",
            "invalid-phone",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }
}
