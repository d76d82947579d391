//! Access tokens: the claims GoTrue puts in them (§2.4). Reading the caller's token is
//! `bearer`'s, so that `user` (which needs the caller) does not depend on this module.

use serde_json::json;
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
    let token = match state.signer() {
        Some(key) => key.sign(&claims).map_err(|e| e.to_string()),
        None => craftbase_shared::keys::sign(&state.ctx.keys.jwt_secret, &claims)
            .map_err(|e| e.to_string()),
    }
    .map_err(|e| AuthError::Internal(format!("signing an access token: {e}")))?;
    Ok((token, exp))
}
