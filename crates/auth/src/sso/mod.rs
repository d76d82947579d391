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
mod signature;
pub mod sp;
pub mod start;
mod xml;

use std::time::Duration;

use axum::http::StatusCode;
use clap::builder::BoolishValueParser;

use crate::error::AuthError;
use crate::AuthState;

/// GoTrue's `GOTRUE_SAML_*` settings.
#[derive(clap::Args, Clone)]
pub struct SamlSettings {
    /// SAML 2.0 single sign-on; off by default, as in GoTrue.
    #[arg(long, env = "GOTRUE_SAML_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub saml_enabled: bool,
    /// The service provider's RSA key (at least 2048 bits), base64 of its PKCS#1 DER, as
    /// GoTrue reads it. `craftbase start` generates one into secrets.json when SAML is on and
    /// this is unset.
    #[arg(long, env = "GOTRUE_SAML_PRIVATE_KEY", hide_env_values = true)]
    pub saml_private_key: Option<String>,
    /// How long a sign-in started at `/sso` may take at the identity provider.
    #[arg(long, env = "GOTRUE_SAML_RELAY_STATE_VALIDITY_PERIOD", default_value = "2m", value_parser = crate::settings::go_duration)]
    pub saml_relay_state_validity_period: Duration,
    /// The public URL the SP's entity ID, ACS and metadata URLs derive from (default:
    /// `API_EXTERNAL_URL`).
    #[arg(long, env = "GOTRUE_SAML_EXTERNAL_URL")]
    pub saml_external_url: Option<String>,
    /// `POST /sso` requests per client address per five minutes.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_SSO", default_value_t = 30)]
    pub rate_limit_sso: u32,
    /// Responses posted to the ACS per client address per five minutes.
    #[arg(long, env = "GOTRUE_SAML_RATE_LIMIT_ASSERTION", default_value_t = 15)]
    pub saml_rate_limit_assertion: u32,
    /// craftbase's test switch: accept `http://` metadata URLs on loopback addresses.
    #[arg(long, env = "CRAFTBASE_SAML_ALLOW_HTTP_METADATA_ON_LOOPBACK", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub saml_allow_loopback_http_metadata: bool,
}

/// Everything but the private key, which never reaches a log.
impl std::fmt::Debug for SamlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlSettings")
            .field("saml_enabled", &self.saml_enabled)
            .field(
                "saml_private_key",
                &self.saml_private_key.as_ref().map(|_| "<set>"),
            )
            .field(
                "saml_relay_state_validity_period",
                &self.saml_relay_state_validity_period,
            )
            .field("saml_external_url", &self.saml_external_url)
            .finish_non_exhaustive()
    }
}

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
