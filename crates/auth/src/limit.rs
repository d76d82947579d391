//! Rate limits, with GoTrue's buckets: sign-ins and sign-ups, token refreshes, verifications,
//! anonymous sign-ins, sent emails, MFA challenges and verifications, `PUT /user`, and the
//! unauthenticated endpoints that write rows (`/authorize`, `/oauth/authorize`).
//!
//! A request counts against its client address (see [`Client`]); the buckets an attacker could
//! spread over many addresses (verifications, sent emails, `PUT /user`) count against the
//! account too. Counters live in memory in fixed windows: one craftbase process serves a
//! project, and a restart forgetting them is harmless.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::AuthError;
use crate::settings::Settings;
use crate::AuthState;

const MINUTE: Duration = Duration::from_secs(60);
const FIVE_MINUTES: Duration = Duration::from_secs(300);
const HOUR: Duration = Duration::from_secs(3600);
/// Counters kept before stale ones are dropped.
const MAX_COUNTERS: usize = 100_000;

/// The client a request counts against: its address, and the key of its counters, which is
/// the address for IPv4 and the address's /64 for IPv6 (one host usually holds a whole /64).
#[derive(Debug, Clone)]
pub struct Client {
    ip: Option<IpAddr>,
    key: String,
}

impl Client {
    /// The client's address, when known (in-process calls have none).
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    fn from_ip(ip: Option<IpAddr>) -> Client {
        let ip = ip.map(|ip| ip.to_canonical());
        let key = match ip {
            Some(IpAddr::V6(v6)) => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(net))
            }
            Some(v4) => v4.to_string(),
            None => "unknown".into(),
        };
        Client { ip, key }
    }
}

impl FromRequestParts<AuthState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client::from_ip(address(parts, &state.settings)))
    }
}

/// The client's address: the peer's, unless proxies are trusted; then the entry of the
/// forwarding header (`GOTRUE_RATE_LIMIT_HEADER`, else `X-Forwarded-For`) that the outermost
/// trusted proxy appended, i.e. the `n`-th from the right for `n` trusted proxies. Entries to
/// the left of it are whatever the client sent and are never believed.
pub fn address(parts: &Parts, settings: &Settings) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let hops = settings.trusted_proxy_hops();
    if hops == 0 {
        return peer;
    }
    let name = settings
        .rate_limit_header
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("x-forwarded-for");
    let entries: Vec<&str> = parts
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let Some(chosen) = entries
        .len()
        .checked_sub(hops)
        .map_or(entries.first(), |i| entries.get(i))
    else {
        return peer;
    };
    parse_ip(chosen).or(peer)
}

/// An address as proxies write it: bare, `[v6]:port` or `v4:port`.
fn parse_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
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
    FactorChallenge,
    FactorVerify,
    UserUpdate,
    Authorize,
    MailFrequency,
}

/// Counters per bucket and client (or account).
#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<(Bucket, String), (Instant, u32)>>,
}

impl RateLimits {
    pub fn sign_in(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::SignIn,
            &c.key,
            s.rate_limit_sign_in_sign_ups,
            FIVE_MINUTES,
        )
    }

    pub fn refresh(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::Refresh,
            &c.key,
            s.rate_limit_token_refresh,
            FIVE_MINUTES,
        )
    }

    pub fn verify(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Verify, &c.key, s.rate_limit_verify, FIVE_MINUTES)
    }

    /// Verifications naming `account` (an email address), from whatever client address.
    pub fn verify_account(&self, s: &Settings, account: &str) -> Result<(), AuthError> {
        let key = format!("account:{}", account.to_lowercase());
        self.take(Bucket::Verify, &key, s.rate_limit_verify, FIVE_MINUTES)
    }

    pub fn web3(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(Bucket::Web3, &c.key, s.rate_limit_web3, FIVE_MINUTES)
    }

    pub fn oauth_client_register(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::OAuthClientRegister,
            &c.key,
            s.rate_limit_oauth_dynamic_client_register,
            FIVE_MINUTES,
        )
    }

    pub fn anonymous(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::Anonymous,
            &c.key,
            s.rate_limit_anonymous_users,
            HOUR,
        )
    }

    /// A mail to `to` caused by `c`: counted against both.
    pub fn email(&self, s: &Settings, c: &Client, to: &str) -> Result<(), AuthError> {
        let account = format!("account:{}", to.to_lowercase());
        self.mail_frequency(s, &account)?;
        self.take(Bucket::Email, &c.key, s.rate_limit_email_sent, HOUR)
            .and_then(|()| self.take(Bucket::Email, &account, s.rate_limit_email_sent, HOUR))
            .map_err(|_| AuthError::EmailRateLimit)
    }

    /// `POST /factors/{id}/challenge`, per client address (GoTrue's per-minute limit).
    pub fn factor_challenge(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::FactorChallenge,
            &c.key,
            s.mfa_rate_limit_challenge_and_verify,
            MINUTE,
        )
    }

    /// `POST /factors/{id}/verify`, per client address (GoTrue's per-minute limit).
    pub fn factor_verify(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::FactorVerify,
            &c.key,
            s.mfa_rate_limit_challenge_and_verify,
            MINUTE,
        )
    }

    /// `PUT /user` (GoTrue counts it under its OTP limit), per client address and per user.
    pub fn user_update(&self, s: &Settings, c: &Client, user: uuid::Uuid) -> Result<(), AuthError> {
        let account = format!("user:{user}");
        self.take(Bucket::UserUpdate, &c.key, s.rate_limit_otp, FIVE_MINUTES)
            .and_then(|()| self.take(Bucket::UserUpdate, &account, s.rate_limit_otp, FIVE_MINUTES))
    }

    /// `/authorize` and `/oauth/authorize`: unauthenticated requests that write a row.
    pub fn authorize(&self, s: &Settings, c: &Client) -> Result<(), AuthError> {
        self.take(
            Bucket::Authorize,
            &c.key,
            s.rate_limit_authorize,
            FIVE_MINUTES,
        )
    }

    /// `GOTRUE_SMTP_MAX_FREQUENCY`: one mail per address per that long, as GoTrue refuses a
    /// confirmation, recovery or magic link sent too soon after the last.
    fn mail_frequency(&self, s: &Settings, account: &str) -> Result<(), AuthError> {
        let every = s.smtp_max_frequency;
        if every.is_zero() {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let key = (Bucket::MailFrequency, account.to_owned());
        if let Some((last, _)) = windows.get(&key) {
            let since = now.duration_since(*last);
            if since < every {
                let wait = (every - since).as_secs_f64().ceil() as u64;
                return Err(AuthError::EmailFrequency(wait.max(1)));
            }
        }
        windows.insert(key, (now, 1));
        Ok(())
    }

    fn take(
        &self,
        bucket: Bucket,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<(), AuthError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > MAX_COUNTERS {
            windows.retain(|_, (start, _)| now.duration_since(*start) < HOUR);
        }
        let entry = windows.entry((bucket, key.to_owned())).or_insert((now, 0));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flags: &'static [&'static str]) -> Settings {
        Settings::from_flags(flags.iter().copied()).unwrap()
    }

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut req = axum::http::Request::builder();
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        parts
    }

    #[test]
    fn without_trusted_proxies_the_peer_counts_and_headers_are_ignored() {
        let s = settings(&[]);
        let p = parts("192.0.2.1:5000", &["198.51.100.7"]);
        assert_eq!(address(&p, &s), "192.0.2.1".parse().ok());
    }

    #[test]
    fn trusted_proxies_pick_the_hop_they_appended() {
        let one = settings(&["--trusted-proxies", "1"]);
        let two = settings(&["--trusted-proxies", "2"]);
        let p = parts("10.0.0.1:5000", &["6.6.6.6, 203.0.113.5", "10.0.0.2"]);
        assert_eq!(address(&p, &one), "10.0.0.2".parse().ok());
        assert_eq!(address(&p, &two), "203.0.113.5".parse().ok());
        // Fewer entries than proxies: the leftmost, which a trusted proxy wrote.
        let p = parts("10.0.0.1:5000", &["203.0.113.5"]);
        assert_eq!(address(&p, &two), "203.0.113.5".parse().ok());
        // No header or garbage: the peer.
        assert_eq!(
            address(&parts("10.0.0.1:1", &[]), &one),
            "10.0.0.1".parse().ok()
        );
        assert_eq!(
            address(&parts("10.0.0.1:1", &["nonsense"]), &one),
            "10.0.0.1".parse().ok()
        );
    }

    #[test]
    fn a_configured_header_alone_trusts_one_proxy() {
        let s = settings(&["--rate-limit-header", "X-Forwarded-For"]);
        let p = parts("10.0.0.1:5000", &["6.6.6.6, [2001:db8::1]:443"]);
        assert_eq!(address(&p, &s), "2001:db8::1".parse().ok());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = Client::from_ip("2001:db8:1:2:aaaa::1".parse().ok());
        let b = Client::from_ip("2001:db8:1:2:bbbb::9".parse().ok());
        let c = Client::from_ip("2001:db8:1:3::1".parse().ok());
        assert_eq!(a.key, "2001:db8:1:2::/64");
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        let mapped = Client::from_ip("::ffff:192.0.2.4".parse().ok());
        assert_eq!(mapped.key, "192.0.2.4");
    }

    #[test]
    fn smtp_max_frequency_spaces_the_mails_to_one_address() {
        let limits = RateLimits::default();
        let client = Client::from_ip("192.0.2.1".parse().ok());
        let off = settings(&[]);
        for _ in 0..3 {
            assert!(limits.email(&off, &client, "a@example.com").is_ok());
        }
        let limits = RateLimits::default();
        let s = settings(&["--smtp-max-frequency", "1m"]);
        assert!(limits.email(&s, &client, "a@example.com").is_ok());
        match limits.email(&s, &client, "A@example.com") {
            Err(AuthError::EmailFrequency(wait)) => assert!((59..=60).contains(&wait), "{wait}"),
            other => panic!("{other:?}"),
        }
        // Another address is not held up.
        assert!(limits.email(&s, &client, "b@example.com").is_ok());
    }
}
