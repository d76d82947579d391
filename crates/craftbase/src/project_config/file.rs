//! The keys of `supabase/config.toml` that mean something to craftbase, as the Supabase CLI
//! names and types them. Every key is optional: one the file leaves out keeps craftbase's
//! default (or what the environment says).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize, Debug, Default)]
pub struct ConfigFile {
    #[serde(default)]
    pub api: Api,
    #[serde(default)]
    pub db: Db,
    #[serde(default)]
    pub realtime: Enabled,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub storage: Storage,
}

#[derive(Deserialize, Debug, Default)]
pub struct Storage {
    pub enabled: Option<bool>,
    /// `"50MiB"`, as the CLI writes it.
    pub file_size_limit: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Api {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub schemas: Option<Vec<String>>,
    pub extra_search_path: Option<Vec<String>>,
    pub max_rows: Option<u64>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Db {
    pub port: Option<u16>,
    pub major_version: Option<u32>,
}

/// A section (or sub-section) that is only switched on or off.
#[derive(Deserialize, Debug, Default)]
pub struct Enabled {
    pub enabled: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Auth {
    pub enabled: Option<bool>,
    pub site_url: Option<String>,
    pub additional_redirect_urls: Option<Vec<String>>,
    pub external_url: Option<String>,
    pub jwt_expiry: Option<u64>,
    pub jwt_issuer: Option<String>,
    pub enable_signup: Option<bool>,
    pub enable_anonymous_sign_ins: Option<bool>,
    pub enable_manual_linking: Option<bool>,
    pub enable_refresh_token_rotation: Option<bool>,
    pub refresh_token_reuse_interval: Option<u64>,
    pub minimum_password_length: Option<u32>,
    pub password_requirements: Option<PasswordRequirements>,
    #[serde(default)]
    pub rate_limit: RateLimit,
    #[serde(default)]
    pub email: Email,
    #[serde(default)]
    pub sms: Sms,
    #[serde(default)]
    pub mfa: Mfa,
    #[serde(default)]
    pub external: BTreeMap<String, External>,
    #[serde(default)]
    pub web3: Web3,
    #[serde(default)]
    pub oauth_server: OAuthServer,
    #[serde(default)]
    pub passkey: Enabled,
    #[serde(default)]
    pub webauthn: WebAuthn,
}

/// The CLI's names for GoTrue's required character sets.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRequirements {
    #[serde(rename = "")]
    None,
    #[serde(rename = "letters_digits")]
    LettersDigits,
    #[serde(rename = "lower_upper_letters_digits")]
    LowerUpperLettersDigits,
    #[serde(rename = "lower_upper_letters_digits_symbols")]
    LowerUpperLettersDigitsSymbols,
}

impl PasswordRequirements {
    /// `GOTRUE_PASSWORD_REQUIRED_CHARACTERS`: the groups a password must draw from, `:`-separated
    /// (a `:` inside a group escaped as `\:`), the sets the Supabase CLI passes.
    pub fn required_characters(self) -> &'static str {
        match self {
            Self::None => "",
            Self::LettersDigits => {
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789"
            }
            Self::LowerUpperLettersDigits => {
                "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789"
            }
            Self::LowerUpperLettersDigitsSymbols => {
                "abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789:!@#$%^&*()_+-=[]{};'\\\\:\"|<>?,./`~"
            }
        }
    }
}

#[derive(Deserialize, Debug, Default)]
pub struct RateLimit {
    pub email_sent: Option<u32>,
    pub sms_sent: Option<u32>,
    pub anonymous_users: Option<u32>,
    pub token_refresh: Option<u32>,
    pub sign_in_sign_ups: Option<u32>,
    pub token_verifications: Option<u32>,
    pub web3: Option<u32>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Email {
    pub enable_signup: Option<bool>,
    pub double_confirm_changes: Option<bool>,
    pub enable_confirmations: Option<bool>,
    pub secure_password_change: Option<bool>,
    pub max_frequency: Option<String>,
    pub otp_length: Option<u32>,
    pub otp_expiry: Option<u64>,
    pub smtp: Option<Smtp>,
    #[serde(default)]
    pub template: BTreeMap<String, Template>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Smtp {
    /// On when the section is there and does not say otherwise, as in the CLI.
    pub enabled: Option<bool>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub admin_email: Option<String>,
    pub sender_name: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Template {
    pub subject: Option<String>,
    pub content_path: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Sms {
    pub enable_signup: Option<bool>,
    pub enable_confirmations: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Mfa {
    pub max_enrolled_factors: Option<u32>,
    pub totp: Option<Factor>,
    pub web_authn: Option<Factor>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Factor {
    pub enroll_enabled: Option<bool>,
    pub verify_enabled: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
pub struct External {
    pub enabled: Option<bool>,
    pub client_id: Option<String>,
    pub secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub url: Option<String>,
    pub skip_nonce_check: Option<bool>,
    pub email_optional: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
pub struct Web3 {
    pub solana: Option<Enabled>,
    pub ethereum: Option<Enabled>,
}

#[derive(Deserialize, Debug, Default)]
pub struct OAuthServer {
    pub enabled: Option<bool>,
    pub authorization_url_path: Option<String>,
    pub allow_dynamic_registration: Option<bool>,
}

/// `[auth.webauthn]`: the relying party passkeys and WebAuthn factors are verified for.
#[derive(Deserialize, Debug, Default)]
pub struct WebAuthn {
    pub rp_id: Option<String>,
    pub rp_display_name: Option<String>,
    pub rp_origins: Option<Vec<String>>,
}
