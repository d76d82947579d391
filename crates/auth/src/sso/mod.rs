//! SAML 2.0 single sign-on as GoTrue has it with `GOTRUE_SAML_ENABLED=true`: the admin SSO
//! providers API, `POST /sso` (by domain or provider id), the service provider's metadata and
//! the assertion consumer service. With SAML off (the default) every route answers GoTrue's
//! `saml_provider_disabled`, which auth-js's `signInWithSSO` reads.
//!
//! XML signature checking is isolated in [`signature`]; everything that reads SAML XML goes
//! through [`xml::parse`], which refuses DTDs (so no external entities) and bounds depth.

pub mod acs;
pub mod admin;
mod assertion;
mod idp;
pub mod key;
mod model;
pub mod settings;
mod signature;
pub mod sp;
pub mod start;
mod xml;

use axum::http::StatusCode;

use crate::error::AuthError;
use crate::AuthState;

/// The SP key when SAML is on; otherwise GoTrue's `requireSAMLEnabled` refusal
/// (`saml_provider_disabled`), so every route refuses alike whatever the method or body.
pub(crate) fn require_enabled(state: &AuthState) -> Result<&key::SpKey, AuthError> {
    if !state.settings.saml.saml_enabled {
        return Err(AuthError::SamlDisabled);
    }
    state
        .saml_key
        .as_deref()
        .ok_or_else(|| AuthError::Internal("SAML is enabled without a usable private key".into()))
}

/// The SP's base URL: `<external>/sso/`.
pub(crate) fn sp_base(state: &AuthState) -> String {
    let external = state
        .settings
        .saml
        .saml_external_url
        .as_deref()
        .or(state.settings.api_external_url.as_deref())
        .unwrap_or(crate::redirect::DEFAULT_EXTERNAL_URL);
    format!("{}/sso/", external.trim_end_matches('/'))
}

/// An SSO refusal with GoTrue's status and code.
pub(crate) fn refuse(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> AuthError {
    AuthError::Sso {
        status,
        code,
        message: message.into(),
    }
}

/// GoTrue's 400 `validation_failed` with an SSO message.
pub(crate) fn invalid(message: impl Into<String>) -> AuthError {
    refuse(StatusCode::BAD_REQUEST, "validation_failed", message)
}
