//! WebAuthn as a second factor, as GoTrue's `/factors` endpoints serve it: the challenge of an
//! unverified factor asks the authenticator to create a credential (`type: create`), that of a
//! verified one to sign with it (`type: request`); the verification checks the answer against
//! the ceremony kept in `mfa_challenges.web_authn_session_data`. The factor's credential is
//! kept in `mfa_factors.web_authn_credential`. Security keys: user verification is preferred,
//! not required, and nothing needs to be discoverable.

use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    CredentialID, PublicKeyCredential, RegisterPublicKeyCredential, SecurityKey,
    SecurityKeyAuthentication, SecurityKeyRegistration,
};

use super::factor::Factor;
use crate::error::AuthError;
use crate::passkey::error::{failed, WebAuthnError};
use crate::passkey::{relying_party, user_names};
use crate::user::User;
use crate::AuthState;

/// The `amr` method of a WebAuthn factor, as GoTrue names it.
pub const AMR_METHOD: &str = "mfa/webauthn";

/// A factor's ceremony between challenge and verification (server-side only).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Ceremony {
    Create { state: SecurityKeyRegistration },
    Request { state: SecurityKeyAuthentication },
}

/// `webauthn` of a verification body: which ceremony, and the authenticator's answer.
#[derive(Deserialize)]
pub struct VerifyParams {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    credential_response: Option<Value>,
}

impl VerifyParams {
    /// The authenticator's answer as the client sent it.
    pub fn answer(&self) -> Option<&Value> {
        self.credential_response.as_ref()
    }
}

/// The credential of a verified factor.
fn stored_key(factor_credential: Option<Value>) -> Result<SecurityKey, AuthError> {
    let value = factor_credential
        .ok_or_else(|| AuthError::Internal("verified webauthn factor without credential".into()))?;
    serde_json::from_value(value)
        .map_err(|e| AuthError::Internal(format!("factor credential: {e}")))
}

async fn factor_credential(
    db: &impl GenericClient,
    factor: &Factor,
) -> Result<Option<Value>, AuthError> {
    Ok(db
        .query_one(
            "select web_authn_credential from auth.mfa_factors where id = $1",
            &[&factor.id],
        )
        .await?
        .get(0))
}

/// Starts the factor's ceremony: the response's `webauthn` object and the state to keep.
pub async fn begin(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    factor: &Factor,
) -> Result<(Value, Value), AuthError> {
    let webauthn = relying_party::build(&state.settings)?;
    let internal = |e: webauthn_rs::prelude::WebauthnError| {
        AuthError::Internal(format!("webauthn factor challenge: {e}"))
    };
    let (kind, options, ceremony) = if factor.is_verified() {
        let key = stored_key(factor_credential(db, factor).await?)?;
        let (rcr, ast) = webauthn
            .start_securitykey_authentication(&[key])
            .map_err(internal)?;
        ("request", json!(rcr), Ceremony::Request { state: ast })
    } else {
        // Credentials of the user's verified WebAuthn factors are not registered twice.
        let rows = db
            .query(
                "select web_authn_credential from auth.mfa_factors where user_id = $1 \
                 and factor_type = 'webauthn' and status = 'verified' \
                 and web_authn_credential is not null",
                &[&user.id],
            )
            .await?;
        let exclude: Vec<CredentialID> = rows
            .into_iter()
            .filter_map(|r| serde_json::from_value::<SecurityKey>(r.get(0)).ok())
            .map(|k| k.cred_id().clone())
            .collect();
        let (name, display) = user_names(user);
        let (ccr, rs) = webauthn
            .start_securitykey_registration(user.id, &name, &display, Some(exclude), None, None)
            .map_err(internal)?;
        ("create", json!(ccr), Ceremony::Create { state: rs })
    };
    let kept = serde_json::to_value(&ceremony)
        .map_err(|e| AuthError::Internal(format!("webauthn factor state: {e}")))?;
    Ok((json!({"type": kind, "credential_options": options}), kept))
}

/// GoTrue's checks of a verification's `webauthn`, before the challenge is looked at.
pub fn check_params(params: Option<&VerifyParams>) -> Result<(), AuthError> {
    let params = params.ok_or(AuthError::Validation("WebAuthn config required".into()))?;
    if params.kind != "create" && params.kind != "request" {
        return Err(AuthError::Validation(
            "WebAuthn type must be create or request".into(),
        ));
    }
    if params
        .credential_response
        .as_ref()
        .is_none_or(Value::is_null)
    {
        return Err(AuthError::Validation("credential_response required".into()));
    }
    Ok(())
}

/// Verifies the answer to the ceremony `kept` (of challenge `challenge_id`): the factor's
/// credential to store afterwards (new, or with its counter moved on).
pub async fn finish(
    state: &AuthState,
    db: &impl GenericClient,
    factor: &Factor,
    kept: Option<Value>,
    params: &VerifyParams,
) -> Result<Value, AuthError> {
    let kept = kept.ok_or(WebAuthnError::ChallengeNotFound)?;
    let ceremony: Ceremony = serde_json::from_value(kept)
        .map_err(|e| AuthError::Internal(format!("webauthn factor state: {e}")))?;
    let answer = params.credential_response.clone().unwrap_or_default();
    let webauthn = relying_party::build(&state.settings)?;
    let key = match (ceremony, params.kind.as_str(), factor.is_verified()) {
        (Ceremony::Create { state: rs }, "create", false) => {
            let reg: RegisterPublicKeyCredential = serde_json::from_value(answer)
                .map_err(|e| failed("Invalid credential response", e))?;
            webauthn
                .finish_securitykey_registration(&reg, &rs)
                .map_err(|e| failed("Credential verification failed", e))?
        }
        (Ceremony::Request { state: ast }, "request", true) => {
            let assertion: PublicKeyCredential = serde_json::from_value(answer)
                .map_err(|e| failed("Invalid credential response", e))?;
            let mut key = stored_key(factor_credential(db, factor).await?)?;
            let result = webauthn
                .finish_securitykey_authentication(&assertion, &ast)
                .map_err(|e| failed("Credential verification failed", e))?;
            key.update_credential(&result);
            key
        }
        _ => {
            return Err(failed(
                "Credential verification failed",
                "the answer is not for this challenge's ceremony",
            )
            .into())
        }
    };
    serde_json::to_value(&key).map_err(|e| AuthError::Internal(format!("factor credential: {e}")))
}
