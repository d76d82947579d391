//! The client a request counts against, and its address behind trusted proxies.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::settings::Settings;
use crate::AuthState;

/// The client a request counts against: its address, and the key of its counters, which is
/// the address for IPv4 and the address's /64 for IPv6 (one host usually holds a whole /64).
#[derive(Debug, Clone)]
pub struct Client {
    ip: Option<IpAddr>,
    /// None when the address is unknown: per-address limits do not apply.
    pub(super) key: Option<String>,
}

impl Client {
    /// The client's address, when known (in-process calls have none).
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    pub(super) fn from_ip(ip: Option<IpAddr>) -> Client {
        let ip = ip.map(|ip| ip.to_canonical());
        let key = match ip {
            Some(IpAddr::V6(v6)) => {
                let net = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(net))
            }
            Some(v4) => v4.to_string(),
            // In-process calls: one shared count.
            None => "unknown".into(),
        };
        Client { ip, key: Some(key) }
    }

    /// A client behind a gateway that did not name it: GoTrue applies no per-address limit.
    fn unnamed() -> Client {
        Client {
            ip: None,
            key: None,
        }
    }
}

impl FromRequestParts<AuthState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let ip = address(parts, &state.settings);
        if ip.is_none() && !state.settings.peer_is_client() {
            return Ok(Client::unnamed());
        }
        Ok(Client::from_ip(ip))
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
    // Behind a gateway that names no client, the peer is the gateway, not a client.
    let peer = peer.filter(|_| settings.peer_is_client());
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
        assert_eq!(a.key.as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        let mapped = Client::from_ip("::ffff:192.0.2.4".parse().ok());
        assert_eq!(mapped.key.as_deref(), Some("192.0.2.4"));
    }
}
