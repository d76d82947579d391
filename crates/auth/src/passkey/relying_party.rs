//! The relying party every ceremony is verified for: its id, name and allowed origins, from
//! the settings, with defaults a local install works with.

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::error::WebAuthnError;
use crate::settings::Settings;

/// Longest time a browser is told to wait for the authenticator.
const CEREMONY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The relying party id: `GOTRUE_WEBAUTHN_RP_ID`, else the site URL's host.
pub fn rp_id(settings: &Settings) -> Option<String> {
    if let Some(id) = settings.webauthn.webauthn_rp_id.as_deref() {
        let id = id.trim();
        if !id.is_empty() {
            return Some(id.to_ascii_lowercase());
        }
    }
    Url::parse(&settings.site_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

/// The allowed origins: the configured ones, else the site URL's and the allow list's (those
/// without globs), keeping only origins on the relying party's domain.
pub fn origins(settings: &Settings, rp_id: &str) -> Vec<Url> {
    let configured: Vec<&str> = settings
        .webauthn
        .webauthn_rp_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let candidates: Vec<&str> = if configured.is_empty() {
        std::iter::once(settings.site_url.as_str())
            .chain(
                settings
                    .uri_allow_list
                    .iter()
                    .map(|u| u.trim())
                    .filter(|u| !u.is_empty() && !u.contains('*')),
            )
            .collect()
    } else {
        configured
    };
    let mut out: Vec<Url> = Vec::new();
    for candidate in candidates {
        let Ok(url) = Url::parse(candidate) else {
            continue;
        };
        let Some(domain) = url.domain() else {
            continue;
        };
        let on_rp = domain == rp_id || domain.ends_with(&format!(".{rp_id}"));
        let origin = url.origin();
        if !on_rp || !origin.is_tuple() {
            continue;
        }
        if let Ok(origin) = Url::parse(&origin.ascii_serialization()) {
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
    }
    out
}

/// The verifier for this configuration; a relying party that cannot be built (no id, no
/// origin on its domain) is a server misconfiguration, logged and answered as a 500.
pub fn build(settings: &Settings) -> Result<Webauthn, WebAuthnError> {
    let misconfigured = |why: &str| {
        tracing::error!(
            why,
            "WebAuthn relying party is misconfigured (GOTRUE_WEBAUTHN_*)"
        );
        WebAuthnError::Misconfigured
    };
    let id = rp_id(settings).ok_or_else(|| misconfigured("no relying party id"))?;
    let origins = origins(settings, &id);
    let (first, rest) = origins
        .split_first()
        .ok_or_else(|| misconfigured("no allowed origin on the relying party's domain"))?;
    let name = settings
        .webauthn
        .webauthn_rp_display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| id.clone());
    let mut builder = WebauthnBuilder::new(&id, first)
        .map_err(|_| misconfigured("the relying party id is not the origin's domain"))?
        .rp_name(&name)
        .timeout(CEREMONY_TIMEOUT);
    for origin in rest {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map_err(|_| misconfigured("the relying party could not be built"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flags: &[&'static str]) -> Settings {
        Settings::from_flags(flags.iter().copied()).unwrap()
    }

    #[test]
    fn defaults_come_from_the_site_url_and_the_allow_list() {
        let s = settings(&[
            "--site-url",
            "http://localhost:3000/app",
            "--uri-allow-list",
            "http://localhost:5173/**,http://localhost:4000/cb,https://evil.example/,not a url",
        ]);
        assert_eq!(rp_id(&s).as_deref(), Some("localhost"));
        let origins: Vec<String> = origins(&s, "localhost")
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect();
        // Globs are not origins; other domains could never match the relying party.
        assert_eq!(
            origins,
            ["http://localhost:3000/", "http://localhost:4000/"]
        );
        assert!(build(&s).is_ok());
    }

    #[test]
    fn configured_origins_replace_the_defaults_and_subdomains_are_kept() {
        let s = settings(&[
            "--webauthn-rp-id",
            "Example.com",
            "--webauthn-rp-origins",
            "https://app.example.com,https://example.com:8443,https://example.org",
        ]);
        assert_eq!(rp_id(&s).as_deref(), Some("example.com"));
        let origins: Vec<String> = origins(&s, "example.com")
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect();
        assert_eq!(
            origins,
            ["https://app.example.com/", "https://example.com:8443/"]
        );
    }

    #[test]
    fn an_ip_address_site_url_has_no_relying_party() {
        let s = settings(&["--site-url", "http://127.0.0.1:3000"]);
        assert!(matches!(build(&s), Err(WebAuthnError::Misconfigured)));
    }
}
