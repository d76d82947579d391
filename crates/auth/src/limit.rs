//! Rate limits per client address, with GoTrue's buckets: sign-ins and sign-ups, token
//! refreshes, verifications, anonymous sign-ins and sent emails.
//!
//! Counters live in memory in fixed windows: one craftbase process serves a project, and a
//! restart forgetting them is harmless.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::AuthError;
use crate::settings::Settings;
use crate::AuthState;

const FIVE_MINUTES: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);

/// The address a request counts against.
#[derive(Debug, Clone)]
pub struct Client(pub String);

impl FromRequestParts<AuthState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(
            address(parts, state).unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// The configured header's first address when a proxy is trusted, else the peer address.
pub fn address(parts: &Parts, state: &AuthState) -> Option<String> {
    if let Some(name) = &state.settings.rate_limit_header {
        if let Some(first) = parts
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return Some(first.to_owned());
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Which counter a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    SignIn,
    Refresh,
    Verify,
    Anonymous,
    Email,
    Web3,
    OAuthClientRegister,
}

/// Counters per bucket and client.
#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<(Bucket, String), (Instant, u32)>>,
}

impl RateLimits {
    pub fn sign_in(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::SignIn,
            c,
            s.rate_limit_sign_in_sign_ups,
            FIVE_MINUTES,
        )
    }

    pub fn refresh(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Refresh, c, s.rate_limit_token_refresh, FIVE_MINUTES)
    }

    pub fn verify(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Verify, c, s.rate_limit_verify, FIVE_MINUTES)
    }

    pub fn web3(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Web3, c, s.rate_limit_web3, FIVE_MINUTES)
    }

    pub fn oauth_client_register(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::OAuthClientRegister,
            c,
            s.rate_limit_oauth_dynamic_client_register,
            FIVE_MINUTES,
        )
    }

    pub fn anonymous(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Anonymous, c, s.rate_limit_anonymous_users, HOUR)
    }

    pub fn email(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Email, c, s.rate_limit_email_sent, HOUR)
            .map_err(|_| AuthError::EmailRateLimit)
    }

    fn take(
        &self,
        bucket: Bucket,
        client: &Client,
        limit: u32,
        window: Duration,
    ) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < HOUR);
        }
        let entry = windows
            .entry((bucket, client.0.clone()))
            .or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return Err(AuthError::RequestRateLimit);
        }
        entry.1 += 1;
        Ok(())
    }
}
