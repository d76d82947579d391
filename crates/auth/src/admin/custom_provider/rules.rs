//! What a custom provider may be registered with, as GoTrue checks it: the `custom:`
//! identifier, authorization parameters that do not override the protocol's own, mapping targets
//! that are not system fields, and endpoints that are https and outside the network.

use super::{invalid, Params};
use crate::error::AuthError;
use crate::AuthState;

const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "nonce",
];

const PROTECTED_TARGETS: &[&str] = &[
    "id",
    "aud",
    "role",
    "app_metadata",
    "created_at",
    "updated_at",
    "confirmed_at",
    "email_confirmed_at",
    "phone_confirmed_at",
    "email_verified",
    "phone_verified",
    "banned_until",
    "is_super_admin",
];

pub fn check_identifier(identifier: &str) -> Result<(), AuthError> {
    if identifier.is_empty() {
        return Err(invalid("identifier is required"));
    }
    if !identifier.starts_with("custom:") {
        return Err(invalid(format!(
            "identifier must start with 'custom:' prefix, e.g. 'custom:{identifier}'"
        )));
    }
    let body = identifier.as_bytes();
    let valid = (2..=50).contains(&body.len())
        && body
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b':' || *b == b'-')
        && ![b':', b'-'].contains(&body[body.len() - 1]);
    if !valid {
        return Err(invalid(
            "identifier must be lowercase letters, digits, ':' and '-', at most 50 characters",
        ));
    }
    Ok(())
}

pub fn check_maps(p: &Params) -> Result<(), AuthError> {
    for (key, value) in p.authorization_params.iter().flatten() {
        if RESERVED_PARAMS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "Cannot override reserved OAuth parameter: {key}"
            )));
        }
        if !value.is_string() {
            return Err(invalid(format!(
                "Authorization parameter {key:?} must be a string"
            )));
        }
    }
    for key in p.attribute_mapping.iter().flat_map(|m| m.keys()) {
        if PROTECTED_TARGETS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "Cannot map to protected system field: {key}"
            )));
        }
    }
    if p.custom_claims_allowlist
        .iter()
        .flatten()
        .any(|k| k.trim().is_empty())
    {
        return Err(invalid(
            "custom_claims_allowlist entries must be non-empty strings",
        ));
    }
    Ok(())
}

/// https, a host name, and no address inside the network (SSRF), as GoTrue checks provider
/// endpoints; `CRAFTBASE_AUTH_ALLOW_LOCAL_PROVIDER_URLS` lifts this for local test providers.
pub async fn check_url(state: &AuthState, text: &str) -> Result<(), AuthError> {
    let url = url::Url::parse(text).map_err(|_| invalid("Invalid URL format"))?;
    if state.settings.allow_local_provider_urls {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(invalid("URL must use HTTPS"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("URL must have a valid hostname"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return Err(invalid(
            "URL cannot point to localhost or loopback addresses",
        ));
    }
    let addrs = tokio::net::lookup_host((host, 443))
        .await
        .map_err(|_| invalid("Unable to resolve hostname"))?;
    for addr in addrs {
        let ip = addr.ip();
        let private = match ip {
            std::net::IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_private()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_broadcast()
            }
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (v6.segments()[0] & 0xfe00) == 0xfc00
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if private {
            return Err(invalid(
                "URL cannot point to private or reserved IP addresses",
            ));
        }
    }
    Ok(())
}
