//! `POST /passkeys/registration/options` and `/verify`: a signed-in user adds a passkey.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use webauthn_rs::prelude::{CredentialID, PasskeyRegistration, RegisterPublicKeyCredential};

use super::challenge::{self, Ceremony};
use super::error::{failed, WebAuthnError};
use super::{credential, relying_party, require_enabled, user_names, VerifyBody};
use crate::bearer::Bearer;
use crate::body::{Body, OptionalBody};
use crate::error::AuthError;
use crate::user::{current, User};
use crate::AuthState;

/// The friendly name of a new passkey (GoTrue's fallback when it does not know the model).
const DEFAULT_NAME: &str = "Passkey";

/// Who may manage passkeys: not anonymous, not SSO users, and, once the user has a verified
/// MFA factor, only from an `aal2` session.
async fn manager(state: &AuthState, bearer: &Bearer) -> Result<User, AuthError> {
    let user = current(state, bearer).await?;
    if user.is_anonymous {
        return Err(WebAuthnError::Anonymous.into());
    }
    if user.is_sso_user {
        return Err(WebAuthnError::SsoUser.into());
    }
    require_aal2_with_mfa(state, bearer, &user).await?;
    Ok(user)
}

/// GoTrue's rule for registering and deleting passkeys: a user with a verified factor does it
/// at `aal2` only (a missing session counts as not `aal2`).
pub(super) async fn require_aal2_with_mfa(
    state: &AuthState,
    bearer: &Bearer,
    user: &User,
) -> Result<(), AuthError> {
    let db = state.ctx.admin.get().await?;
    let session = bearer.session_id();
    let row = db
        .query_one(
            "select exists (select 1 from auth.mfa_factors where user_id = $1 \
                              and status = 'verified'), \
                    exists (select 1 from auth.sessions where id = $2 and aal = 'aal2')",
            &[&user.id, &session],
        )
        .await?;
    let (has_mfa, aal2): (bool, bool) = (row.get(0), row.get(1));
    if has_mfa && !aal2 {
        return Err(WebAuthnError::InsufficientAal.into());
    }
    Ok(())
}

/// `POST /passkeys/registration/options`: creation options for a discoverable credential.
pub async fn registration_options(
    State(state): State<AuthState>,
    bearer: Bearer,
    OptionalBody(_): OptionalBody<Value>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let user = manager(&state, &bearer).await?;
    let db = state.ctx.admin.get().await?;
    if credential::count(&db, user.id).await?
        >= state.settings.webauthn.passkey_max_passkeys_per_user
    {
        return Err(WebAuthnError::TooManyPasskeys.into());
    }
    let exclude: Vec<CredentialID> = credential::ids_of_user(&db, user.id)
        .await?
        .into_iter()
        .map(CredentialID::from)
        .collect();
    let webauthn = relying_party::build(&state.settings)?;
    let (name, display) = user_names(&user);
    let (ccr, registration) = webauthn
        .start_passkey_registration(user.id, &name, &display, Some(exclude))
        .map_err(|e| AuthError::Internal(format!("passkey registration options: {e}")))?;
    let mut options = serde_json::to_value(&ccr.public_key)
        .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
    // Passkeys are discoverable credentials: ask the authenticator to keep one, as GoTrue does
    // (webauthn-rs does not check this at verification, so it only changes what is asked).
    options["authenticatorSelection"]["residentKey"] = json!("required");
    options["authenticatorSelection"]["requireResidentKey"] = json!(true);
    let stored =
        challenge::store(&state, Ceremony::Registration, Some(user.id), &registration).await?;
    Ok(Json(json!({
        "challenge_id": stored.id,
        "options": options,
        "expires_at": stored.expires_at,
    })))
}

/// `POST /passkeys/registration/verify`: the authenticator's attestation becomes a passkey.
pub async fn registration_verify(
    State(state): State<AuthState>,
    bearer: Bearer,
    Body(body): Body<VerifyBody>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let user = manager(&state, &bearer).await?;
    let (challenge_id, credential_json) = body.checked()?;
    let mut db = state.ctx.admin.get().await?;
    let registration: PasskeyRegistration =
        challenge::consume(&db, Ceremony::Registration, Some(user.id), &challenge_id).await?;
    let response: RegisterPublicKeyCredential = serde_json::from_value(credential_json)
        .map_err(|e| failed("Invalid credential response", e))?;
    let webauthn = relying_party::build(&state.settings)?;
    let passkey = webauthn
        .finish_passkey_registration(&response, &registration)
        .map_err(|e| failed("Credential verification failed", e))?;
    let tx = db.transaction().await?;
    // One registration of a user at a time, so the limit holds under concurrent requests.
    User::lock(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    if credential::count(&tx, user.id).await?
        >= state.settings.webauthn.passkey_max_passkeys_per_user
    {
        return Err(WebAuthnError::TooManyPasskeys.into());
    }
    let created = credential::insert(&tx, user.id, &passkey, DEFAULT_NAME).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, passkey_id = %created.id, "passkey registered");
    let mut out = json!({"id": created.id, "created_at": created.created_at});
    if !created.friendly_name.is_empty() {
        out["friendly_name"] = json!(created.friendly_name);
    }
    Ok(Json(out))
}
