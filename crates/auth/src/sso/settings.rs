//! GoTrue's `GOTRUE_SAML_*` settings, part of the auth settings (kept here, below `sso`, so
//! that the settings do not depend on the SSO handlers).

use std::time::Duration;

use clap::builder::BoolishValueParser;

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
    #[arg(long, env = "GOTRUE_SAML_RELAY_STATE_VALIDITY_PERIOD", default_value = "2m", value_parser = crate::go_duration::parse)]
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
