//! What the passkey and WebAuthn endpoints refuse with: GoTrue's statuses, codes and messages.

use axum::http::StatusCode;

/// One passkey or WebAuthn failure; [`crate::AuthError`] renders it.
#[derive(Debug, thiserror::Error)]
pub enum WebAuthnError {
    #[error("Passkeys are disabled")]
    Disabled,
    #[error("Challenge not found or already used")]
    ChallengeNotFound,
    #[error("Challenge has expired")]
    ChallengeExpired,
    /// The credential could not be read, or did not verify (wrong origin, wrong key, unknown
    /// credential, replayed counter...): the reason is logged, never sent.
    #[error("{0}")]
    VerificationFailed(&'static str),
    #[error("This credential is already registered")]
    CredentialExists,
    #[error("Maximum number of passkeys reached")]
    TooManyPasskeys,
    #[error("Passkey not found")]
    PasskeyNotFound,
    #[error("AAL2 session is required to manage passkeys when MFA is enabled")]
    InsufficientAal,
    #[error("SSO users cannot register passkeys")]
    SsoUser,
    #[error("Anonymous user not allowed to perform these actions")]
    Anonymous,
    #[error("Email not confirmed")]
    EmailNotConfirmed,
    #[error("Phone not confirmed")]
    PhoneNotConfirmed,
    #[error("User is banned")]
    UserBanned,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("Unexpected failure, please check server logs for more information")]
    Misconfigured,
}

impl WebAuthnError {
    /// The HTTP status and GoTrue's `error_code`.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use WebAuthnError::*;
        match self {
            Disabled => (StatusCode::NOT_FOUND, "passkey_disabled"),
            ChallengeNotFound => (StatusCode::BAD_REQUEST, "webauthn_challenge_not_found"),
            ChallengeExpired => (StatusCode::BAD_REQUEST, "webauthn_challenge_expired"),
            VerificationFailed(_) => (StatusCode::BAD_REQUEST, "webauthn_verification_failed"),
            CredentialExists => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "webauthn_credential_exists",
            ),
            TooManyPasskeys => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_passkeys"),
            PasskeyNotFound => (StatusCode::NOT_FOUND, "validation_failed"),
            InsufficientAal => (StatusCode::FORBIDDEN, "insufficient_aal"),
            SsoUser => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Anonymous => (StatusCode::FORBIDDEN, "no_authorization"),
            EmailNotConfirmed => (StatusCode::FORBIDDEN, "email_not_confirmed"),
            PhoneNotConfirmed => (StatusCode::FORBIDDEN, "phone_not_confirmed"),
            UserBanned => (StatusCode::FORBIDDEN, "user_banned"),
            Invalid(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            Misconfigured => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
        }
    }
}

/// A credential that did not verify: the library's reason goes to the log only.
pub fn failed(what: &'static str, e: impl std::fmt::Display) -> WebAuthnError {
    tracing::info!(reason = %e, "{what}");
    WebAuthnError::VerificationFailed(what)
}
