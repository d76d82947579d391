//! Passkeys, as GoTrue's `/passkeys` endpoints behave: a signed-in user registers discoverable
//! WebAuthn credentials (options, then verification of the authenticator's answer), lists,
//! renames and deletes them; anyone signs in with one (options without a user, then the
//! assertion, whose user handle names the user) and gets a session like a password sign-in's,
//! with `passkey` in its `amr`. Ceremonies are verified by webauthn-rs; their state is kept in
//! PostgreSQL between the two requests. Admins list and delete a user's passkeys.

mod admin;
mod authentication;
mod challenge;
mod credential;
pub mod error;
mod manage;
mod registration;
pub(crate) mod relying_party;
pub mod settings;

pub use admin::{admin_delete, admin_list};
pub use authentication::{authentication_options, authentication_verify};
pub use manage::{delete, list, update};
pub use registration::{registration_options, registration_verify};

use serde::Deserialize;
use serde_json::Value;

use crate::error::AuthError;
use crate::user::User;
use crate::AuthState;
use error::WebAuthnError;

/// Every `/passkeys` route answers GoTrue's 404 while passkeys are off.
fn require_enabled(state: &AuthState) -> Result<(), AuthError> {
    if state.settings.webauthn.passkey_enabled {
        Ok(())
    } else {
        Err(WebAuthnError::Disabled.into())
    }
}

/// The body of both verifications: the ceremony and the authenticator's answer, as auth-js
/// serialises it.
#[derive(Deserialize)]
pub struct VerifyBody {
    #[serde(default)]
    challenge_id: String,
    #[serde(default)]
    credential: Option<Value>,
}

impl VerifyBody {
    /// GoTrue's checks, in its order: a challenge id, then a credential.
    fn checked(self) -> Result<(String, Value), AuthError> {
        if self.challenge_id.is_empty() {
            return Err(WebAuthnError::Invalid("challenge_id is required").into());
        }
        match self.credential {
            Some(c) if !c.is_null() => Ok((self.challenge_id, c)),
            _ => Err(WebAuthnError::Invalid("credential is required").into()),
        }
    }
}

/// The names an authenticator shows for `user`: the email (else the phone, else the id), and
/// `user_metadata.name` when there is one.
pub(crate) fn user_names(user: &User) -> (String, String) {
    let name = [user.email.as_deref(), user.phone.as_deref()]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| user.id.to_string());
    let display = user.user_metadata["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| name.clone());
    (name, display)
}
