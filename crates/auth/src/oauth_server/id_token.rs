//! OpenID Connect ID tokens for clients granted the `openid` scope: who the user is, for that
//! client (`aud`), with the claims the other granted scopes open. Signed with the asymmetric
//! signing key only, as GoTrue does: with HS256 the exchange fails rather than hand a client a
//! token it could only check with the project secret.

use serde_json::json;
use uuid::Uuid;

use crate::error::AuthError;
use crate::user::User;
use crate::AuthState;

/// An ID token lives an hour, as OpenID Connect suggests.
const LIFETIME_SECONDS: i64 = 3600;

pub fn sign(
    state: &AuthState,
    issuer: &str,
    user: &User,
    client_id: Uuid,
    nonce: Option<&str>,
    scopes: &[String],
) -> Result<String, AuthError> {
    let key = state
        .signer()
        .filter(|k| k.is_asymmetric())
        .ok_or_else(|| {
            AuthError::Internal(
                "Error generating ID token: HS256 is not supported for ID token signing".into(),
            )
        })?;
    let now = chrono::Utc::now().timestamp();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut claims = json!({
        "iss": issuer,
        "sub": user.id.to_string(),
        "aud": [client_id.to_string()],
        "exp": now + LIFETIME_SECONDS,
        "iat": now,
        "auth_time": user.last_sign_in_at.map_or(now, |t| t.timestamp()),
        "client_id": client_id.to_string(),
    });
    if let Some(n) = nonce.filter(|n| !n.is_empty()) {
        claims["nonce"] = json!(n);
    }
    let email = user.email.clone().filter(|e| !e.is_empty());
    if has("email") {
        if let Some(e) = &email {
            claims["email"] = json!(e);
        }
        if user.email_confirmed_at.is_some() || user.phone_confirmed_at.is_some() {
            claims["email_verified"] = json!(true);
        }
    }
    if has("phone") {
        if let Some(p) = user.phone.as_deref().filter(|p| !p.is_empty()) {
            claims["phone_number"] = json!(p);
        }
        if user.phone_confirmed_at.is_some() {
            claims["phone_number_verified"] = json!(true);
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
        if let Some(name) = text("name").or(email) {
            claims["name"] = json!(name);
        }
        if let Some(picture) = text("picture").or_else(|| text("avatar_url")) {
            claims["picture"] = json!(picture);
        }
        if let Some(username) = text("preferred_username").or_else(|| text("username")) {
            claims["preferred_username"] = json!(username);
        }
        if let Some(updated) = user.updated_at {
            claims["updated_at"] = json!(updated.timestamp());
        }
    }
    key.sign(&claims)
        .map_err(|e| AuthError::Internal(format!("Error generating ID token: {e}")))
}

/// Whether the granted scopes ask for an ID token.
pub fn wanted(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == "openid")
}
