//! `POST /passkeys/authentication/options` and `/verify`: sign-in with a discoverable passkey.
//! The options name no user and no credential; the assertion's user handle says whose passkey
//! answered, and the session is made as a password sign-in makes it, with `amr` `passkey`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use webauthn_rs::prelude::{DiscoverableAuthentication, DiscoverableKey, PublicKeyCredential};

use super::challenge::{self, Ceremony};
use super::error::{failed, WebAuthnError};
use super::{credential, relying_party, require_enabled, VerifyBody};
use crate::body::{Body, OptionalBody};
use crate::error::AuthError;
use crate::limit::Client;
use crate::redirect::Origin;
use crate::session::{self, Device};
use crate::user::User;
use crate::AuthState;

/// The `amr` method of a passkey sign-in, as GoTrue names it.
const AMR_METHOD: &str = "passkey";

/// `POST /passkeys/authentication/options`: request options for any of the relying party's
/// discoverable credentials (rate limited per client address: it writes a row unauthenticated).
pub async fn authentication_options(
    State(state): State<AuthState>,
    client: Client,
    OptionalBody(_): OptionalBody<Value>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    state.limits.passkey(&state.settings, &client).await?;
    let webauthn = relying_party::build(&state.settings)?;
    let (rcr, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| AuthError::Internal(format!("passkey authentication options: {e}")))?;
    let options = serde_json::to_value(&rcr.public_key)
        .map_err(|e| AuthError::Internal(format!("passkey options: {e}")))?;
    let stored = challenge::store(&state, Ceremony::Authentication, None, &authentication).await?;
    Ok(Json(json!({
        "challenge_id": stored.id,
        "options": options,
        "expires_at": stored.expires_at,
    })))
}

/// `POST /passkeys/authentication/verify`: a verified assertion signs its user in.
pub async fn authentication_verify(
    State(state): State<AuthState>,
    origin: Origin,
    device: Device,
    Body(body): Body<VerifyBody>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let (challenge_id, credential_json) = body.checked()?;
    let mut db = state.ctx.admin.get().await?;
    let authentication: DiscoverableAuthentication =
        challenge::consume(&db, Ceremony::Authentication, None, &challenge_id).await?;
    let assertion: PublicKeyCredential = serde_json::from_value(credential_json)
        .map_err(|e| failed("Invalid credential response", e))?;
    let webauthn = relying_party::build(&state.settings)?;
    let (user_id, credential_id) = webauthn
        .identify_discoverable_authentication(&assertion)
        .map_err(|e| failed("Credential verification failed", e))?;
    let (passkey_id, mut passkey) = credential::by_credential_id(&db, user_id, credential_id)
        .await?
        .ok_or_else(|| {
            failed(
                "Credential verification failed",
                "no such passkey of that user",
            )
        })?;
    let result = webauthn
        .finish_discoverable_authentication(
            &assertion,
            authentication,
            &[DiscoverableKey::from(&passkey)],
        )
        .map_err(|e| failed("Credential verification failed", e))?;
    let user = User::find(&db, user_id).await?.ok_or_else(|| {
        failed(
            "Credential verification failed",
            "the passkey's user is gone",
        )
    })?;
    if user.email.as_deref().is_some_and(|e| !e.is_empty()) && user.email_confirmed_at.is_none() {
        return Err(WebAuthnError::EmailNotConfirmed.into());
    }
    if user.phone.as_deref().is_some_and(|p| !p.is_empty()) && user.phone_confirmed_at.is_none() {
        return Err(WebAuthnError::PhoneNotConfirmed.into());
    }
    if user.is_banned() {
        return Err(WebAuthnError::UserBanned.into());
    }
    passkey.update_credential(&result);
    let tx = db.transaction().await?;
    credential::record_use(&tx, passkey_id, &passkey).await?;
    let issued = session::create(&state, &tx, &origin, &device, &user, AMR_METHOD).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, passkey_id = %passkey_id, "signed in with a passkey");
    Ok(Json(issued.to_json(&state)))
}
