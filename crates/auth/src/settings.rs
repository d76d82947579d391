//! Auth's configuration, read from GoTrue's environment variable names so a Supabase setup's
//! `.env` carries over, and the `GET /settings` document auth-js apps may read.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use clap::builder::BoolishValueParser;
use clap::Parser;

use crate::AuthState;

/// GoTrue-compatible settings; every one has GoTrue's variable and the `supabase start` default.
#[derive(Parser, Debug, Clone)]
#[command(name = "craftbase-auth", no_binary_name = true)]
pub struct Settings {
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "GOTRUE_JWT_EXP", default_value_t = 3600)]
    pub jwt_exp: u64,
    /// The `iss` claim of access tokens; defaults to the external URL of this service.
    #[arg(long, env = "GOTRUE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The `aud` of new users and their tokens.
    #[arg(long, env = "GOTRUE_JWT_AUD", default_value = "authenticated")]
    pub jwt_aud: String,
    /// Signing keys (a JSON array of JWKs), read into the shared verifier by whoever builds the
    /// service context (craftbase, auth's own binary): the private key marked `sign` (EC P-256,
    /// RSA or `oct`) signs access tokens as ES256, RS256 or HS256 with its `kid`; with none
    /// marked, the first private EC or RSA key without `key_ops`. A key marked `verify` only
    /// never signs. Unset: craftbase's generated key, or HS256 with the project secret.
    #[arg(long, env = "GOTRUE_JWT_KEYS", hide_env_values = true)]
    pub jwt_keys: Option<String>,
    /// Roles whose tokens may call the admin API.
    #[arg(
        long,
        env = "GOTRUE_JWT_ADMIN_ROLES",
        value_delimiter = ',',
        default_value = "service_role,supabase_admin"
    )]
    pub jwt_admin_roles: Vec<String>,
    /// Confirm email addresses at sign-up without sending a confirmation mail.
    #[arg(long, env = "GOTRUE_MAILER_AUTOCONFIRM", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mailer_autoconfirm: bool,
    /// Refuse new sign-ups (admins may still create users).
    #[arg(long, env = "GOTRUE_DISABLE_SIGNUP", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub disable_signup: bool,
    /// The phone provider is on: craftbase sends no SMS, but numbers are checked and `/resend`
    /// for a number nobody is waiting on answers as GoTrue does.
    #[arg(long, env = "GOTRUE_EXTERNAL_PHONE_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub phone_enabled: bool,
    /// Phone sign-ups are confirmed at once (GoTrue's `GOTRUE_SMS_AUTOCONFIRM`): the one phone
    /// sign-up craftbase can finish, since it sends no SMS.
    #[arg(long, env = "GOTRUE_SMS_AUTOCONFIRM", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub sms_autoconfirm: bool,
    /// Allow email sign-up and sign-in.
    #[arg(long, env = "GOTRUE_EXTERNAL_EMAIL_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub email_enabled: bool,
    /// Allow anonymous sign-ins (`supabase start` turns them on).
    #[arg(long, env = "GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub anonymous_users_enabled: bool,
    /// Rotate refresh tokens and revoke a family when a used token comes back late.
    #[arg(long, env = "GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub refresh_token_rotation_enabled: bool,
    /// Seconds during which a just-rotated refresh token may still be exchanged.
    #[arg(
        long,
        env = "GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL",
        default_value_t = 10
    )]
    pub refresh_token_reuse_interval: u64,
    /// Seconds a session lives at most, however often it refreshes (0: no limit).
    #[arg(long, env = "GOTRUE_SESSIONS_TIMEBOX", default_value_t = 0)]
    pub sessions_timebox: u64,
    /// Seconds without a refresh after which a session ends (0: no limit).
    #[arg(long, env = "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT", default_value_t = 0)]
    pub sessions_inactivity_timeout: u64,
    /// Shortest password accepted.
    #[arg(long, env = "GOTRUE_PASSWORD_MIN_LENGTH", default_value_t = 6)]
    pub password_min_length: usize,
    /// Character classes a password must draw from, as GoTrue writes them: groups separated by
    /// `:`, e.g. `abcdefghijklmnopqrstuvwxyz:ABCDEFGHIJKLMNOPQRSTUVWXYZ:0123456789`.
    #[arg(long, env = "GOTRUE_PASSWORD_REQUIRED_CHARACTERS", default_value = "")]
    pub password_required_characters: String,
    /// Where users land after email links when no allowed `redirect_to` is given.
    #[arg(long, env = "GOTRUE_SITE_URL", default_value = "http://localhost:3000")]
    pub site_url: String,
    /// Other allowed `redirect_to` targets (comma separated; `*` and `**` globs).
    #[arg(
        long,
        env = "GOTRUE_URI_ALLOW_LIST",
        value_delimiter = ',',
        default_value = ""
    )]
    pub uri_allow_list: Vec<String>,
    /// Public URL of this service (e.g. `http://127.0.0.1:54321/auth/v1`), the base of mailed
    /// links, OAuth callbacks and the token issuer. `craftbase start` derives it from its own
    /// listening address when unset, as `supabase start` sets it; never from a request header.
    #[arg(long, env = "API_EXTERNAL_URL")]
    pub api_external_url: Option<String>,
    /// SMTP server; without one, mail is logged as not sent.
    #[arg(long, env = "GOTRUE_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "GOTRUE_SMTP_PORT", default_value_t = 25)]
    pub smtp_port: u16,
    #[arg(long, env = "GOTRUE_SMTP_USER")]
    pub smtp_user: Option<String>,
    #[arg(long, env = "GOTRUE_SMTP_PASS", hide_env_values = true)]
    pub smtp_pass: Option<String>,
    /// The From address of every mail.
    #[arg(
        long,
        env = "GOTRUE_SMTP_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub smtp_admin_email: String,
    #[arg(long, env = "GOTRUE_SMTP_SENDER_NAME", default_value = "")]
    pub smtp_sender_name: String,
    /// Lifetime of emailed codes and links, in seconds.
    #[arg(long, env = "GOTRUE_MAILER_OTP_EXP", default_value_t = 3600)]
    pub mailer_otp_exp: u64,
    /// Digits of emailed one-time codes.
    #[arg(long, env = "GOTRUE_MAILER_OTP_LENGTH", default_value_t = 6)]
    pub mailer_otp_length: usize,
    /// Subject of the sign-up confirmation mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_CONFIRMATION",
        default_value = "Confirm Your Signup"
    )]
    pub subject_confirmation: String,
    /// Subject of the invitation mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_INVITE",
        default_value = "You have been invited"
    )]
    pub subject_invite: String,
    /// Subject of the magic-link mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_MAGIC_LINK",
        default_value = "Your Magic Link"
    )]
    pub subject_magic_link: String,
    /// Subject of the password-recovery mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_RECOVERY",
        default_value = "Reset Your Password"
    )]
    pub subject_recovery: String,
    /// Subject of the email-change mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_EMAIL_CHANGE",
        default_value = "Confirm Email Change"
    )]
    pub subject_email_change: String,
    /// Subject of the reauthentication mail.
    #[arg(
        long,
        env = "GOTRUE_MAILER_SUBJECTS_REAUTHENTICATION",
        default_value = "Confirm Reauthentication"
    )]
    pub subject_reauthentication: String,
    /// Mail templates (HTML) for the confirmation, invite, recovery, magic-link, email-change
    /// and reauthentication mails: a local path, a `file://` URL or an http(s) URL read once at start; unset or
    /// unreadable or not parsing: the built-in text. See `template/` for the Go template syntax.
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_CONFIRMATION")]
    pub template_confirmation: Option<String>,
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_INVITE")]
    pub template_invite: Option<String>,
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_RECOVERY")]
    pub template_recovery: Option<String>,
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_MAGIC_LINK")]
    pub template_magic_link: Option<String>,
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_EMAIL_CHANGE")]
    pub template_email_change: Option<String>,
    #[arg(long, env = "GOTRUE_MAILER_TEMPLATES_REAUTHENTICATION")]
    pub template_reauthentication: Option<String>,
    /// An email change needs a confirmation from the current address as well as the new one.
    #[arg(long, env = "GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mailer_secure_email_change_enabled: bool,
    /// Ask for a mailed nonce (`/reauthenticate`) before a password change in a session last
    /// refreshed more than 24 hours ago.
    #[arg(long, env = "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub update_password_require_reauthentication: bool,
    /// Let signed-in users link and unlink identities themselves.
    #[arg(long, env = "GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub manual_linking_enabled: bool,
    /// Mails the project may send (not counted with autoconfirm, as GoTrue): `30` (per hour) or
    /// GoTrue's `events/duration`, such as `10/5m`.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_EMAIL_SENT", default_value = "30", value_parser = Rate::parse)]
    pub rate_limit_email_sent: Rate,
    /// craftbase's own: mails one recipient may get, in the same syntax. Unset: as many as
    /// `GOTRUE_RATE_LIMIT_EMAIL_SENT` allows the project.
    #[arg(long, env = "CRAFTBASE_AUTH_RATE_LIMIT_EMAIL_PER_RECIPIENT", value_parser = Rate::parse)]
    pub rate_limit_email_per_recipient: Option<Rate>,
    /// Least time between two mails to one address (Go duration; `0s`, the default, is no
    /// limit: GoTrue's own default is a minute, which `supabase init`'s `1s` overrides too).
    #[arg(long, env = "GOTRUE_SMTP_MAX_FREQUENCY", default_value = "0s", value_parser = crate::go_duration::parse)]
    pub smtp_max_frequency: Duration,
    /// Token refreshes per client address per 5 minutes.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_TOKEN_REFRESH", default_value_t = 150)]
    pub rate_limit_token_refresh: u32,
    /// craftbase's own (config.toml's `sign_in_sign_ups`): sign-ups per client address per 5
    /// minutes. Unset: `GOTRUE_RATE_LIMIT_OTP`, the limit GoTrue counts sign-ups under.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS")]
    pub rate_limit_sign_in_sign_ups: Option<u32>,
    /// OTP and link verifications per client address per 5 minutes.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_VERIFY", default_value_t = 30)]
    pub rate_limit_verify: u32,
    /// Anonymous sign-ins per client address per hour.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", default_value_t = 30)]
    pub rate_limit_anonymous_users: u32,
    /// Users may enroll TOTP factors.
    #[arg(long, env = "GOTRUE_MFA_TOTP_ENROLL_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mfa_totp_enroll_enabled: bool,
    /// Users may challenge and verify TOTP factors.
    #[arg(long, env = "GOTRUE_MFA_TOTP_VERIFY_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub mfa_totp_verify_enabled: bool,
    /// Factors (verified or not) one user may have.
    #[arg(long, env = "GOTRUE_MFA_MAX_ENROLLED_FACTORS", default_value_t = 10)]
    pub mfa_max_enrolled_factors: usize,
    /// Verified factors one user may have.
    #[arg(long, env = "GOTRUE_MFA_MAX_VERIFIED_FACTORS", default_value_t = 10)]
    pub mfa_max_verified_factors: usize,
    /// Seconds an MFA challenge may be verified in.
    #[arg(
        long,
        env = "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION",
        default_value_t = 300
    )]
    pub mfa_challenge_expiry_duration: u64,
    /// Web3 sign-ins (`grant_type=web3`) per client address per 5 minutes.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_WEB3", default_value_t = 30)]
    pub rate_limit_web3: u32,
    /// Sign in with Ethereum (EIP-4361 messages signed by a wallet).
    #[arg(long, env = "GOTRUE_EXTERNAL_WEB3_ETHEREUM_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub web3_ethereum_enabled: bool,
    /// How far a signed Ethereum message's `Issued At` may be from now (Go duration, e.g. `10m`).
    #[arg(long, env = "GOTRUE_EXTERNAL_WEB3_ETHEREUM_MAXIMUM_VALIDITY_DURATION", default_value = "10m", value_parser = crate::go_duration::parse)]
    pub web3_ethereum_maximum_validity_duration: Duration,
    /// Sign in with Solana.
    #[arg(long, env = "GOTRUE_EXTERNAL_WEB3_SOLANA_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub web3_solana_enabled: bool,
    /// How far a signed Solana message's `Issued At` may be from now (Go duration).
    #[arg(long, env = "GOTRUE_EXTERNAL_WEB3_SOLANA_MAXIMUM_VALIDITY_DURATION", default_value = "10m", value_parser = crate::go_duration::parse)]
    pub web3_solana_maximum_validity_duration: Duration,
    /// The admin API may register custom OAuth / OIDC providers (`/admin/custom-providers`).
    #[arg(long, env = "GOTRUE_CUSTOM_OAUTH_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub custom_oauth_enabled: bool,
    /// Most custom providers that may be registered (0: no limit).
    #[arg(long, env = "GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", default_value_t = 0)]
    pub custom_oauth_max_providers: i64,
    /// craftbase's own: accept http and loopback or private addresses as custom provider
    /// endpoints (a provider on the same machine, in tests). GoTrue always refuses them.
    #[arg(long, env = "CRAFTBASE_AUTH_ALLOW_LOCAL_PROVIDER_URLS", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_local_provider_urls: bool,
    /// craftbase as an OAuth 2.1 authorization server (`/oauth/*`, `/admin/oauth/clients`).
    #[arg(long, env = "GOTRUE_OAUTH_SERVER_ENABLED", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub oauth_server_enabled: bool,
    /// The app's consent page, a path on the site URL (`/oauth/consent`); `/oauth/authorize`
    /// sends browsers there with `?authorization_id=`.
    #[arg(long, env = "GOTRUE_OAUTH_SERVER_AUTHORIZATION_PATH")]
    pub oauth_server_authorization_path: Option<String>,
    /// How long an authorization request may wait for the user's answer (Go duration).
    #[arg(long, env = "GOTRUE_OAUTH_SERVER_AUTHORIZATION_TTL", default_value = "10m", value_parser = crate::go_duration::parse)]
    pub oauth_server_authorization_ttl: Duration,
    /// Clients may register themselves at `POST /oauth/clients/register`.
    #[arg(long, env = "GOTRUE_OAUTH_SERVER_ALLOW_DYNAMIC_REGISTRATION", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub oauth_server_allow_dynamic_registration: bool,
    /// Dynamic client registrations per client address per 5 minutes.
    #[arg(
        long,
        env = "GOTRUE_RATE_LIMIT_OAUTH_DYNAMIC_CLIENT_REGISTER",
        default_value_t = 10
    )]
    pub rate_limit_oauth_dynamic_client_register: u32,
    /// The scope of requests that name none.
    #[arg(
        long,
        env = "GOTRUE_OAUTH_SERVER_DEFAULT_SCOPE",
        default_value = "email"
    )]
    pub oauth_server_default_scope: String,
    /// Header naming the client address (e.g. `X-Forwarded-For`), trusted only when set.
    #[arg(long, env = "GOTRUE_RATE_LIMIT_HEADER")]
    pub rate_limit_header: Option<String>,
    /// craftbase's own: proxies in front of craftbase whose forwarding header entries are
    /// believed (the client is the entry the outermost one appended). Unset: 1 when
    /// `GOTRUE_RATE_LIMIT_HEADER` is set, else 0 (the peer address counts).
    #[arg(long, env = "CRAFTBASE_AUTH_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<usize>,
    /// Set by the standalone service, which runs behind a gateway as GoTrue does: there the
    /// peer is the gateway, so unless `GOTRUE_RATE_LIMIT_HEADER` names the client (or
    /// `CRAFTBASE_AUTH_TRUSTED_PROXIES=0` says the peer is one), per-address limits do not
    /// apply, as in GoTrue. In `craftbase start` the peer is the client.
    #[arg(long, hide = true)]
    pub behind_gateway: bool,
    /// MFA challenges, and MFA verifications, per client address per minute.
    #[arg(
        long,
        env = "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY",
        default_value_t = 15
    )]
    pub mfa_rate_limit_challenge_and_verify: u32,
    /// `PUT /user` per client address, and per user, per 5 minutes (GoTrue's OTP limit).
    #[arg(long, env = "GOTRUE_RATE_LIMIT_OTP", default_value_t = 30)]
    pub rate_limit_otp: u32,
    /// craftbase's own: `/authorize` and `/oauth/authorize` per client address per 5 minutes.
    #[arg(
        long,
        env = "CRAFTBASE_AUTH_RATE_LIMIT_AUTHORIZE",
        default_value_t = 30
    )]
    pub rate_limit_authorize: u32,
    /// craftbase's own: wrong TOTP codes after which a factor refuses verification for
    /// `CRAFTBASE_AUTH_MFA_LOCKOUT_DURATION`.
    #[arg(
        long,
        env = "CRAFTBASE_AUTH_MFA_MAX_FAILED_VERIFICATIONS",
        default_value_t = 5
    )]
    pub mfa_max_failed_verifications: i32,
    /// craftbase's own: how long a factor stays locked (Go duration).
    #[arg(long, env = "CRAFTBASE_AUTH_MFA_LOCKOUT_DURATION", default_value = "15m", value_parser = crate::go_duration::parse)]
    pub mfa_lockout_duration: Duration,
    /// craftbase's own: wrong emailed codes for one address after which its codes are void.
    #[arg(
        long,
        env = "CRAFTBASE_AUTH_OTP_MAX_FAILED_ATTEMPTS",
        default_value_t = 5
    )]
    pub otp_max_failed_attempts: i32,
    /// SAML 2.0 single sign-on (`GOTRUE_SAML_*`), see crates/auth/src/sso.
    #[command(flatten)]
    pub saml: crate::sso::settings::SamlSettings,
    /// Passkeys and WebAuthn MFA factors.
    #[command(flatten)]
    pub webauthn: crate::passkey::settings::WebAuthnSettings,
}

impl Settings {
    /// Settings from the environment alone (no command line: the `craftbase` binary owns it).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self::try_parse_from(std::iter::empty::<String>())?)
    }

    /// Settings from explicit flags (`--mailer-autoconfirm false`), then the environment.
    pub fn from_flags<I: IntoIterator<Item = &'static str>>(flags: I) -> anyhow::Result<Self> {
        Ok(Self::try_parse_from(flags)?)
    }

    /// Proxies whose forwarding header entries are believed.
    pub fn trusted_proxy_hops(&self) -> usize {
        let header = self
            .rate_limit_header
            .as_deref()
            .is_some_and(|h| !h.trim().is_empty());
        self.trusted_proxies.unwrap_or(usize::from(header))
    }

    /// Whether the connecting peer is a client (see [`Settings::behind_gateway`]).
    pub fn peer_is_client(&self) -> bool {
        !self.behind_gateway || self.trusted_proxies == Some(0)
    }

    /// Sign-ups per client address per 5 minutes.
    pub fn sign_up_limit(&self) -> u32 {
        self.rate_limit_sign_in_sign_ups
            .unwrap_or(self.rate_limit_otp)
    }

    /// How long a rotated refresh token may still be exchanged.
    pub fn reuse_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_token_reuse_interval)
    }
}

/// A number of events over a period, as GoTrue reads `GOTRUE_RATE_LIMIT_EMAIL_SENT`: a bare
/// number is per hour, `events/duration` (`10/5m`) says its period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    events: u32,
    over: Duration,
}

impl Rate {
    fn parse(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if let Ok(events) = text.parse::<f64>() {
            if events.is_finite() && events >= 0.0 {
                return Ok(Rate {
                    events: events.min(f64::from(u32::MAX)) as u32,
                    over: Duration::from_secs(3600),
                });
            }
        }
        let bad = || format!("{text:?} is not a rate such as 30 or 10/5m");
        let (events, over) = text.split_once('/').ok_or_else(bad)?;
        let events = events.trim().parse::<u32>().map_err(|_| bad())?;
        let over = crate::go_duration::parse(over)?;
        if over.is_zero() {
            return Err(bad());
        }
        Ok(Rate { events, over })
    }

    /// The events allowed, and the period they are allowed in.
    pub fn per(self) -> (u32, Duration) {
        (self.events, self.over)
    }
}

/// `GET /settings`: which sign-in methods are on, in GoTrue's shape.
pub async fn show(State(state): State<AuthState>) -> Json<serde_json::Value> {
    let s = &state.settings;
    Json(serde_json::json!({
        "external": {
            "anonymous_users": s.anonymous_users_enabled,
            "apple": false, "azure": false, "bitbucket": false, "discord": false,
            "facebook": false, "figma": false, "fly": false, "github": state.providers.contains_key("github"), "gitlab": false,
            "google": state.providers.contains_key("google"), "keycloak": false, "kakao": false, "linkedin": false,
            "linkedin_oidc": false, "notion": false, "spotify": false, "slack": false,
            "slack_oidc": false, "workos": false, "twitch": false, "twitter": false,
            "zoom": false,
            "email": s.email_enabled,
            "phone": false,
        },
        "disable_signup": s.disable_signup,
        "mailer_autoconfirm": s.mailer_autoconfirm,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": s.saml.saml_enabled,
        "passkeys_enabled": s.webauthn.passkey_enabled,
    }))
}

#[cfg(test)]
mod tests {
    use super::Rate;
    use crate::go_duration::parse as go_duration;
    use std::time::Duration;

    #[test]
    fn reads_gotrue_rates() {
        let hour = Duration::from_secs(3600);
        assert_eq!(Rate::parse("30").unwrap().per(), (30, hour));
        assert_eq!(Rate::parse("2.5").unwrap().per(), (2, hour));
        assert_eq!(
            Rate::parse("10/5m").unwrap().per(),
            (10, Duration::from_secs(300))
        );
        assert!(Rate::parse("10/0s").is_err());
        assert!(Rate::parse("ten").is_err());
        assert!(Rate::parse("-1").is_err());
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(go_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(go_duration("ten").is_err());
        assert!(go_duration("10").is_err());
    }
}
