//! The GoTrue-compatible auth service served at `/auth/v1`: users, sessions, tokens, email flows
//! and the admin API, on the `auth` schema GoTrue uses. The wire contract is §2 of the
//! Supabase wire reference; each module names the part it implements.

mod admin;
mod bearer;
mod body;
mod emailed_token;
pub mod error;
mod go_duration;
mod identity;
mod jwt;
mod limit;
mod linking;
mod mail;
mod mfa;
mod oauth;
mod oauth_server;
mod otp;
pub mod passkey;
mod password;
mod phone;
mod redirect;
mod session;
pub mod settings;
mod signup;
pub mod sso;
mod sweep;
mod template;
mod token;
mod user;
mod web3;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};
use craftbase_shared::ServiceContext;
use serde_json::json;

pub use error::AuthError;
pub use settings::Settings;

/// The `auth` schema GoTrue has (users, identities, sessions, refresh tokens) and the
/// `auth.uid()` family of functions RLS policies call.
pub const SCHEMA_SQL: &str = include_str!("../sql/auth_schema.sql");

/// `auth.custom_oauth_providers`, applied after [`SCHEMA_SQL`].
pub const CUSTOM_PROVIDERS_SQL: &str = include_str!("../sql/auth_custom_providers.sql");

/// The OAuth server's tables (`auth.oauth_clients`, `_authorizations`, `_consents`) and the
/// sessions' `oauth_client_id`, applied after [`CUSTOM_PROVIDERS_SQL`].
pub const OAUTH_SERVER_SQL: &str = include_str!("../sql/auth_oauth_server.sql");

/// `auth.oauth_client_states`: PKCE verifiers of sign-ins through providers that want PKCE.
pub const OAUTH_CLIENT_STATES_SQL: &str = include_str!("../sql/auth_oauth_client_states.sql");

/// `auth.craftbase_email_proofs`: which address each user proved (craftbase's own table).
pub const EMAIL_PROOFS_SQL: &str = include_str!("../sql/auth_email_proofs.sql");

/// Failed-verification counters (TOTP lockout, emailed-code guesses) and sweep indexes.
pub const LIMITS_SQL: &str = include_str!("../sql/auth_limits.sql");

/// `auth.craftbase_rate_limits`: rate-limit counters every craftbase node shares.
pub const RATE_LIMITS_SQL: &str = include_str!("../sql/auth_rate_limits.sql");

/// SAML 2.0 single sign-on: GoTrue's `sso_providers`, `sso_domains`, `saml_providers`,
/// `saml_relay_states`, and craftbase's consumed-assertion table.
pub const SAML_SQL: &str = include_str!("../sql/auth_saml.sql");

/// Passkeys (`auth.webauthn_credentials`, `auth.webauthn_challenges`) and WebAuthn factors.
pub const PASSKEYS_SQL: &str = include_str!("../sql/auth_passkeys.sql");

/// Every file of the auth schema, in order, under the names `craftbase start` records them by:
/// whatever sets up a database for auth (tests, benchmarks) applies all of them.
pub const MIGRATIONS: [(&str, &str); 9] = [
    ("craftbase/auth_schema.sql", SCHEMA_SQL),
    ("craftbase/auth_custom_providers.sql", CUSTOM_PROVIDERS_SQL),
    ("craftbase/auth_oauth_server.sql", OAUTH_SERVER_SQL),
    (
        "craftbase/auth_oauth_client_states.sql",
        OAUTH_CLIENT_STATES_SQL,
    ),
    ("craftbase/auth_email_proofs.sql", EMAIL_PROOFS_SQL),
    ("craftbase/auth_limits.sql", LIMITS_SQL),
    ("craftbase/auth_rate_limits.sql", RATE_LIMITS_SQL),
    ("craftbase/auth_saml.sql", SAML_SQL),
    ("craftbase/auth_passkeys.sql", PASSKEYS_SQL),
];

/// What every handler shares.
#[derive(Clone)]
pub struct AuthState {
    ctx: ServiceContext,
    settings: Arc<Settings>,
    mailer: Arc<mail::Mailer>,
    limits: Arc<limit::RateLimits>,
    providers: Arc<std::collections::BTreeMap<String, oauth::provider::Provider>>,
    http: reqwest::Client,
    /// The SAML service provider's key and certificate, when SAML is on.
    saml_key: Option<Arc<sso::key::SpKey>>,
}

/// The auth routes, with the `/auth/v1` prefix already stripped, configured from GoTrue's
/// environment variables.
///
/// # Panics
///
/// On an invalid setting (say `GOTRUE_DISABLE_SIGNUP=ture`): starting with defaults instead
/// could open what the operator meant to close, so start-up stops with clap's explanation.
pub fn router(ctx: ServiceContext) -> Router {
    let settings = Settings::from_env().unwrap_or_else(|e| {
        panic!("invalid auth settings in the GOTRUE_* environment variables: {e}")
    });
    router_with(ctx, settings)
}

/// The auth routes with explicit settings.
pub fn router_with(ctx: ServiceContext, settings: Settings) -> Router {
    let limits = Arc::new(limit::RateLimits::new(ctx.admin.clone()));
    let saml_key = sso::key::SpKey::from_settings(&settings)
        .unwrap_or_else(|e| panic!("invalid SAML settings: {e}"))
        .map(Arc::new);
    let state = AuthState {
        saml_key,
        ctx,
        mailer: Arc::new(mail::Mailer::new(&settings)),
        settings: Arc::new(settings),
        limits,
        providers: Arc::new(oauth::provider::from_env()),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
    };
    sweep::spawn(state.ctx.admin.clone());
    if state.mailer.templates.any() {
        // Read the configured mail templates now, so a bad one shows in the log at start.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (mailer, http) = (state.mailer.clone(), state.http.clone());
            runtime.spawn(async move { mailer.templates.load_all(&http).await });
        }
    }
    Router::new()
        .route("/signup", post(signup::signup))
        .route("/token", post(token::grant))
        .route("/user", get(user::get).put(user::update))
        .route("/logout", post(session::logout))
        .route("/reauthenticate", get(user::reauthenticate))
        .route("/user/identities/authorize", get(identity::authorize))
        .route(
            "/user/identities/{id}",
            axum::routing::delete(identity::unlink),
        )
        .route("/factors", post(mfa::enroll))
        .route("/factors/{factor_id}", axum::routing::delete(mfa::unenroll))
        .route("/factors/{factor_id}/challenge", post(mfa::challenge))
        .route("/factors/{factor_id}/verify", post(mfa::verify))
        .route("/otp", post(otp::send_otp))
        .route("/magiclink", post(otp::send_otp))
        .route("/verify", get(otp::verify_link).post(otp::verify))
        .route("/recover", post(otp::recover))
        .route("/resend", post(otp::resend))
        .route("/invite", post(admin::invite))
        .route("/admin/users", get(admin::list).post(admin::create))
        .route(
            "/admin/users/{id}",
            get(admin::get).put(admin::update).delete(admin::delete),
        )
        .route("/admin/users/{id}/factors", get(admin::factors))
        .route(
            "/admin/users/{id}/factors/{factor_id}",
            axum::routing::delete(admin::delete_factor),
        )
        .route("/admin/generate_link", post(admin::generate_link))
        .route(
            "/admin/custom-providers",
            get(admin::custom_provider::list).post(admin::custom_provider::create),
        )
        .route(
            "/admin/custom-providers/{identifier}",
            get(admin::custom_provider::get)
                .put(admin::custom_provider::update)
                .delete(admin::custom_provider::delete),
        )
        .route(
            "/admin/oauth/clients",
            get(admin::oauth_client::list).post(admin::oauth_client::create),
        )
        .route(
            "/admin/oauth/clients/{client_id}",
            get(admin::oauth_client::get)
                .put(admin::oauth_client::update)
                .delete(admin::oauth_client::delete),
        )
        .route(
            "/admin/oauth/clients/{client_id}/regenerate_secret",
            post(admin::oauth_client::regenerate_secret),
        )
        .route("/oauth/authorize", get(oauth_server::authorize::authorize))
        .route("/oauth/token", post(oauth_server::token::token))
        .route("/oauth/clients/register", post(oauth_server::register))
        .route("/oauth/userinfo", get(oauth_server::discovery::userinfo))
        .route(
            "/.well-known/openid-configuration",
            get(oauth_server::discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth_server::discovery::authorization_server),
        )
        .route(
            "/oauth/authorizations/{authorization_id}",
            get(oauth_server::authorize::details),
        )
        .route(
            "/oauth/authorizations/{authorization_id}/consent",
            post(oauth_server::authorize::consent),
        )
        .route(
            "/user/oauth/grants",
            get(oauth_server::grant::list).delete(oauth_server::grant::revoke),
        )
        // SAML 2.0 single sign-on (crates/auth/src/sso): the admin providers API, `/sso`,
        // the SP metadata and the ACS; each answers `saml_provider_disabled` while SAML is off.
        .route("/sso", post(sso::start::start))
        .route("/sso/saml/metadata", get(sso::sp::metadata))
        .route("/sso/saml/acs", post(sso::acs::acs))
        .route(
            "/admin/sso/providers",
            get(sso::admin::list).post(sso::admin::create),
        )
        .route(
            "/admin/sso/providers/{idp_id}",
            get(sso::admin::get)
                .put(sso::admin::update)
                .delete(sso::admin::delete),
        )
        // Passkeys (issue 12 item 3): the user's ceremonies and list, and the admin API.
        .route(
            "/passkeys/registration/options",
            post(passkey::registration_options),
        )
        .route(
            "/passkeys/registration/verify",
            post(passkey::registration_verify),
        )
        .route(
            "/passkeys/authentication/options",
            post(passkey::authentication_options),
        )
        .route(
            "/passkeys/authentication/verify",
            post(passkey::authentication_verify),
        )
        .route("/passkeys", get(passkey::list))
        .route(
            "/passkeys/{passkey_id}",
            axum::routing::patch(passkey::update).delete(passkey::delete),
        )
        .route("/admin/users/{id}/passkeys", get(passkey::admin_list))
        .route(
            "/admin/users/{id}/passkeys/{passkey_id}",
            axum::routing::delete(passkey::admin_delete),
        )
        .route("/authorize", get(oauth::authorize))
        .route("/callback", get(oauth::callback))
        .route("/settings", get(settings::show))
        .route("/health", get(health))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(error::versioned))
        .with_state(state)
}

/// `GET /health`, in GoTrue's shape.
async fn health() -> Json<serde_json::Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GoTrue",
        "description": "craftbase auth: a GoTrue-compatible API for users and sessions",
    }))
}

/// How long clients may cache the JWKS, as Supabase serves it: a standby key is published at
/// least this long before it is promoted, so every verifier knows it before it signs.
const JWKS_MAX_AGE: &str = "public, max-age=600";

/// `GET /.well-known/jwks.json`: the public keys tokens are verified with (EC and RSA only,
/// never an HMAC secret); none when tokens are HS256.
async fn jwks(
    axum::extract::State(state): axum::extract::State<AuthState>,
) -> impl axum::response::IntoResponse {
    let keys = state.ctx.jwt.keys().published().to_vec();
    (
        [(axum::http::header::CACHE_CONTROL, JWKS_MAX_AGE)],
        Json(json!({ "keys": keys })),
    )
}

impl AuthState {
    /// The key access tokens are signed with now (rotation replaces it); `None`: HS256 with
    /// the project secret.
    pub(crate) fn signer(&self) -> Option<Arc<craftbase_shared::key_set::Signer>> {
        self.ctx.jwt.keys().signer()
    }
}

async fn not_found() -> AuthError {
    AuthError::NotFound
}
