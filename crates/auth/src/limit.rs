//! Rate limits, in GoTrue's buckets: each endpoint GoTrue limits counts in the bucket GoTrue
//! counts it in, per client address (see [`Client`]), over the same period and with the same
//! 429 answer; the project-wide mail count is GoTrue's too. craftbase adds counts per account
//! where an attacker could spread requests over many addresses (verifications, mails to one
//! recipient, `PUT /user`), and limits `/authorize`, which writes rows without a session.
//! Counters live in PostgreSQL ([`counter`]), so several craftbase nodes share them.

mod client;
mod counter;

use std::time::Duration;

use deadpool_postgres::Pool;

pub use client::{address, Client};
use counter::{Count, Counters};

use crate::error::AuthError;
use crate::settings::Settings;

const MINUTE: Duration = Duration::from_secs(60);
const FIVE_MINUTES: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

/// The key of project-wide counts (GoTrue's mail limit is one per project).
const PROJECT: &str = "project";

/// Which endpoint a route-level limit counts: GoTrue gives each its own bucket, though several
/// share `GOTRUE_RATE_LIMIT_OTP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpRoute {
    Otp,
    MagicLink,
    Recover,
    Resend,
}

impl OtpRoute {
    fn bucket(self) -> &'static str {
        match self {
            OtpRoute::Otp => "otp",
            OtpRoute::MagicLink => "magiclink",
            OtpRoute::Recover => "recover",
            OtpRoute::Resend => "resend",
        }
    }
}

/// The rate limits of one auth service.
pub struct RateLimits {
    counters: Counters,
}

/// A count per client address; none when the address is unknown (GoTrue behind a gateway that
/// names no client applies no per-address limit either).
fn per_client(bucket: &'static str, c: &Client, limit: u32, window: Duration) -> Option<Count> {
    Some(Count {
        bucket,
        key: c.key.clone()?,
        limit,
        window,
    })
}

fn per_account(
    bucket: &'static str,
    account: String,
    limit: u32,
    window: Duration,
) -> Option<Count> {
    Some(Count {
        bucket,
        key: account,
        limit,
        window,
    })
}

impl RateLimits {
    /// Counters kept in `db` (the `auth.craftbase_rate_limits` table).
    pub fn new(db: Pool) -> RateLimits {
        RateLimits {
            counters: Counters::new(db),
        }
    }

    /// Counts `counts`; over any limit is GoTrue's `over_request_rate_limit`.
    async fn request(&self, counts: &[Option<Count>]) -> Result<(), AuthError> {
        let counts: Vec<Count> = counts.iter().flatten().cloned().collect();
        if counts.is_empty() {
            return Ok(());
        }
        match self.counters.take(&counts).await? {
            None => Ok(()),
            Some(_) => Err(AuthError::RequestRateLimit),
        }
    }

    /// `/token` with the password, refresh-token, ID-token and PKCE grants: GoTrue counts them
    /// all under `GOTRUE_RATE_LIMIT_TOKEN_REFRESH`.
    pub async fn token(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("token", c, s.rate_limit_token_refresh, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// `POST /signup` with an email address or phone number.
    pub async fn sign_up(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("signup", c, s.sign_up_limit(), FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// `/otp`, `/magiclink`, `/recover`, `/resend`: each its own bucket of `GOTRUE_RATE_LIMIT_OTP`.
    pub async fn otp(&self, s: &Settings, c: &Client, route: OtpRoute) -> Result<(), AuthError> {
        let count = per_client(route.bucket(), c, s.rate_limit_otp, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// `/verify`, per client address.
    pub async fn verify(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("verify", c, s.rate_limit_verify, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// Verifications naming `account` (an email address), from whatever client address.
    pub async fn verify_account(&self, s: &Settings, account: &str) -> Result<(), AuthError> {
        let key = format!("account:{}", account.to_lowercase());
        let count = per_account("verify", key, s.rate_limit_verify, FIVE_MINUTES);
        self.request(&[count]).await
    }

    pub async fn web3(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("web3", c, s.rate_limit_web3, FIVE_MINUTES);
        self.request(&[count]).await
    }

    pub async fn oauth_client_register(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let limit = s.rate_limit_oauth_dynamic_client_register;
        let count = per_client("oauth_client_register", c, limit, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// Anonymous sign-ins, per client address per hour.
    pub async fn anonymous(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("anonymous", c, s.rate_limit_anonymous_users, HOUR);
        self.request(&[count]).await
    }

    /// A mail to `to`: GoTrue's project-wide count (`GOTRUE_RATE_LIMIT_EMAIL_SENT`, skipped with
    /// autoconfirm as GoTrue skips it), craftbase's count per recipient (always, so no inbox can
    /// be flooded), and `GOTRUE_SMTP_MAX_FREQUENCY` per recipient. One statement for all three.
    pub async fn email(&self, s: &Settings, to: &str) -> Result<(), AuthError> {
        let account = format!("account:{}", to.to_lowercase());
        let (limit, window) = s.rate_limit_email_sent.per();
        let (each, each_window) = s
            .rate_limit_email_per_recipient
            .unwrap_or(s.rate_limit_email_sent)
            .per();
        let mut counts: Vec<Count> = per_account("email", account.clone(), each, each_window)
            .into_iter()
            .collect();
        if !s.mailer_autoconfirm {
            counts.extend(per_account("email", PROJECT.into(), limit, window));
        }
        if !s.smtp_max_frequency.is_zero() {
            counts.extend(per_account(
                "mail_frequency",
                account,
                1,
                s.smtp_max_frequency,
            ));
        }
        match self.counters.take(&counts).await? {
            None => Ok(()),
            Some(r) if r.bucket == "mail_frequency" => {
                let wait = r.wait.as_secs_f64().ceil() as u64;
                Err(AuthError::EmailFrequency(wait.max(1)))
            }
            Some(_) => Err(AuthError::EmailRateLimit),
        }
    }

    /// `POST /passkeys/authentication/options`, per client address per 5 minutes.
    pub async fn passkey(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let limit = s.webauthn.rate_limit_passkey;
        let count = per_client("passkey", c, limit, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// `POST /factors/{id}/challenge`, per client address (GoTrue's per-minute limit).
    pub async fn factor_challenge(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let limit = s.mfa_rate_limit_challenge_and_verify;
        let count = per_client("factor_challenge", c, limit, MINUTE);
        self.request(&[count]).await
    }

    /// `POST /factors/{id}/verify`, per client address (GoTrue's per-minute limit).
    pub async fn factor_verify(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let limit = s.mfa_rate_limit_challenge_and_verify;
        let count = per_client("factor_verify", c, limit, MINUTE);
        self.request(&[count]).await
    }

    /// `PUT /user` (GoTrue counts it under its OTP limit), per client address and per user.
    pub async fn user_update(
        &self,
        s: &Settings,
        c: &Client,
        user: uuid::Uuid,
    ) -> Result<(), AuthError> {
        let counts = [
            per_client("user", c, s.rate_limit_otp, FIVE_MINUTES),
            per_account(
                "user",
                format!("user:{user}"),
                s.rate_limit_otp,
                FIVE_MINUTES,
            ),
        ];
        self.request(&counts).await
    }

    /// `/authorize` and `/oauth/authorize`: unauthenticated requests that write a row.
    pub async fn authorize(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        let count = per_client("authorize", c, s.rate_limit_authorize, FIVE_MINUTES);
        self.request(&[count]).await
    }

    /// `POST /sso` (`GOTRUE_RATE_LIMIT_SSO`) and the SAML ACS
    /// (`GOTRUE_SAML_RATE_LIMIT_ASSERTION`), per client address per five minutes.
    pub async fn sso(&self, s: &Settings, c: &Client, acs: bool) -> Result<(), AuthError> {
        let count = match acs {
            true => per_client(
                "saml_assertion",
                c,
                s.saml.saml_rate_limit_assertion,
                FIVE_MINUTES,
            ),
            false => per_client("sso", c, s.saml.rate_limit_sso, FIVE_MINUTES),
        };
        self.request(&[count]).await
    }
}
