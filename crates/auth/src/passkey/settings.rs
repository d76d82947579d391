//! Passkey and WebAuthn settings, under GoTrue's variable names (`GOTRUE_PASSKEY_*`,
//! `GOTRUE_WEBAUTHN_*`, `GOTRUE_MFA_WEB_AUTHN_*`). Unlike GoTrue, the relying party has
//! defaults taken from the site URL, so a local install needs only `GOTRUE_PASSKEY_ENABLED`.

use std::time::Duration;

use clap::builder::BoolishValueParser;

/// Flattened into [`crate::Settings`].
#[derive(clap::Args, Debug, Clone)]
pub struct WebAuthnSettings {
    /// Passkey sign-in and the `/passkeys` endpoints (404 `passkey_disabled` when off).
    #[arg(long, env = "GOTRUE_PASSKEY_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub passkey_enabled: bool,
    /// Passkeys one user may register.
    #[arg(
        long,
        env = "GOTRUE_PASSKEY_MAX_PASSKEYS_PER_USER",
        default_value_t = 10
    )]
    pub passkey_max_passkeys_per_user: i64,
    /// The relying party id (a domain); unset: the host of `GOTRUE_SITE_URL`.
    #[arg(long, env = "GOTRUE_WEBAUTHN_RP_ID")]
    pub webauthn_rp_id: Option<String>,
    /// The name authenticators show; unset: the relying party id.
    #[arg(long, env = "GOTRUE_WEBAUTHN_RP_DISPLAY_NAME")]
    pub webauthn_rp_display_name: Option<String>,
    /// Origins ceremonies may come from (comma separated); unset: the site URL's origin and
    /// those of `GOTRUE_URI_ALLOW_LIST` entries without globs, on the relying party's domain.
    #[arg(
        long,
        env = "GOTRUE_WEBAUTHN_RP_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub webauthn_rp_origins: Vec<String>,
    /// How long a passkey ceremony may take between its options and its verification.
    #[arg(long, env = "GOTRUE_WEBAUTHN_CHALLENGE_EXPIRY_DURATION", default_value = "5m", value_parser = crate::go_duration::parse)]
    pub webauthn_challenge_expiry_duration: Duration,
    /// WebAuthn factors may be enrolled (`POST /factors` with `factor_type: webauthn`).
    #[arg(long, env = "GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mfa_web_authn_enroll_enabled: bool,
    /// WebAuthn factors may be challenged and verified.
    #[arg(long, env = "GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mfa_web_authn_verify_enabled: bool,
    /// Passkey sign-in ceremonies started per client address per 5 minutes.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_PASSKEY", default_value_t = 30)]
    pub rate_limit_passkey: u32,
}
