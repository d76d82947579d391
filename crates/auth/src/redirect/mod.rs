//! Where things point: this service's public URL (the base of mailed links and the token
//! issuer) and the `redirect_to` targets users are sent back to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::settings::Settings;
use crate::AuthState;

mod glob;

/// The public base URL of the auth service, e.g. `http://127.0.0.1:54321/auth/v1`.
#[derive(Clone, Debug)]
pub struct Origin(pub String);

impl Origin {
    /// The `iss` of access tokens.
    pub fn issuer(&self, settings: &Settings) -> String {
        settings
            .jwt_issuer
            .clone()
            .unwrap_or_else(|| self.0.clone())
    }
}

/// The external URL when neither `API_EXTERNAL_URL` nor `craftbase start` set one: the address
/// `supabase start` serves auth on.
pub const DEFAULT_EXTERNAL_URL: &str = "http://127.0.0.1:54321/auth/v1";

impl FromRequestParts<AuthState> for Origin {
    type Rejection = std::convert::Infallible;

    /// `API_EXTERNAL_URL` (which `craftbase start` derives from its own `--host`/`--port` when
    /// unset), never the request's `Host`: a mailed link built from a header the caller
    /// chooses would carry a valid token to the caller's host.
    async fn from_request_parts(
        _parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let url = state
            .settings
            .api_external_url
            .as_deref()
            .unwrap_or(DEFAULT_EXTERNAL_URL);
        Ok(Origin(url.trim_end_matches('/').to_owned()))
    }
}

/// The redirect target for `requested`: it when allowed, the site URL otherwise.
pub fn target(settings: &Settings, requested: Option<&str>) -> String {
    match requested {
        Some(r) if is_allowed(settings, r) => r.to_owned(),
        _ => settings.site_url.clone(),
    }
}

/// Allowed targets, as GoTrue decides them: the site URL's scheme, host and port (any port on
/// `localhost`, RFC 8252), a loopback address, or an allow-list entry matched against the parsed
/// URL part by part ([`allow`]). A target with userinfo (`user@`), a backslash, whitespace or a
/// control character is never allowed: browsers and URL parsers disagree on where its host is.
pub fn is_allowed(settings: &Settings, requested: &str) -> bool {
    if requested
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Ok(url) = url::Url::parse(requested) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    if let Ok(site) = url::Url::parse(&settings.site_url) {
        let local = matches!(url.host_str(), Some("localhost" | "[::1]" | "127.0.0.1"));
        if site.scheme() == url.scheme()
            && site.host_str().is_some()
            && site.host_str() == url.host_str()
            && (site.port_or_known_default() == url.port_or_known_default() || local)
        {
            return true;
        }
    }
    let http = matches!(url.scheme(), "http" | "https");
    match url.host() {
        // GoTrue: an IP address only when it is loopback, whatever the allow list says.
        Some(url::Host::Ipv4(ip)) => return ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => return ip.is_loopback(),
        Some(url::Host::Domain(d)) if http && !regular_hostname(d) => return false,
        _ => {}
    }
    settings
        .uri_allow_list
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .any(|pattern| allow(pattern, &url))
}

/// GoTrue's test of an http(s) host name: letters, digits, dots and hyphens.
fn regular_hostname(host: &str) -> bool {
    let bytes = host.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
}

/// What `*` and `?` never match in a host name (and a port), and in a path with its query.
const HOST_SEPARATORS: [char; 6] = ['.', ':', '@', '/', '?', '#'];
const PATH_SEPARATORS: [char; 4] = ['.', '/', '?', '#'];

/// One allow-list entry against a parsed target. An entry `scheme://host[:port][/path]` is
/// split the same way and each part matched on its own, so no wildcard reaches across a
/// part: `https://*.example.com` is a host ending in `.example.com`, and
/// `http://localhost:*` is `localhost` on any port. An entry without `://` (a bare
/// `scheme:path`) is matched against the whole URL with every separator.
fn allow(pattern: &str, url: &url::Url) -> bool {
    let Some((scheme, rest)) = pattern.split_once("://") else {
        let whole = url.as_str().split('#').next().unwrap_or("");
        return glob::matches(pattern, whole, &HOST_SEPARATORS);
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return false;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host, Some(port)),
        _ => (authority, None),
    };
    let port_matches = match (port, url.port()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(p), _) => url
            .port_or_known_default()
            .is_some_and(|actual| glob::matches(p, &actual.to_string(), &HOST_SEPARATORS)),
    };
    let target_path = match (url.path(), url.query()) {
        ("", None) => "/".to_owned(),
        (path, None) => path.to_owned(),
        ("", Some(q)) => format!("/?{q}"),
        (path, Some(q)) => format!("{path}?{q}"),
    };
    let path = if path.is_empty() { "/" } else { path };
    glob::matches(&scheme.to_ascii_lowercase(), url.scheme(), &HOST_SEPARATORS)
        && glob::matches(
            &host.to_ascii_lowercase(),
            url.host_str().unwrap_or(""),
            &HOST_SEPARATORS,
        )
        && port_matches
        && glob::matches(path, &target_path, &PATH_SEPARATORS)
}

/// Appends `params` to `base` as a fragment (implicit flow) or query (PKCE code).
pub fn with_params(base: &str, params: &str, as_fragment: bool) -> String {
    let base = if as_fragment {
        base.split('#').next().unwrap_or(base)
    } else {
        base
    };
    if as_fragment {
        format!("{base}#{params}")
    } else if base.contains('?') {
        format!("{base}&{params}")
    } else {
        format!("{base}?{params}")
    }
}

#[cfg(test)]
mod tests {
    use super::is_allowed;
    use crate::settings::Settings;

    fn settings(allow: &'static str) -> Settings {
        let flags = [
            "--site-url",
            "https://app.example.org",
            "--uri-allow-list",
            allow,
        ];
        Settings::from_flags(flags).unwrap()
    }

    #[test]
    fn site_url_matches_by_scheme_host_and_port() {
        let s = settings("");
        assert!(is_allowed(&s, "https://app.example.org/welcome?x=1"));
        assert!(!is_allowed(&s, "http://app.example.org/"));
        assert!(!is_allowed(&s, "https://app.example.org:8443/"));
        assert!(!is_allowed(&s, "https://app.example.org.evil.tld/"));
        assert!(!is_allowed(&s, "https://evil.tld@app.example.org/"));
        assert!(!is_allowed(&s, "https://app.example.org\\@evil.tld/"));
    }

    #[test]
    fn wildcards_do_not_cross_url_parts() {
        let s = settings("https://*.example.com,http://localhost:*,http://localhost:3000/**");
        assert!(is_allowed(&s, "https://app.example.com"));
        assert!(is_allowed(&s, "https://app.example.com/"));
        assert!(!is_allowed(&s, "https://evil.tld?.example.com"));
        assert!(!is_allowed(&s, "https://evil?.example.com"));
        assert!(!is_allowed(&s, "https://evil.tld#.example.com"));
        assert!(!is_allowed(&s, "https://evil.tld/.example.com"));
        assert!(!is_allowed(&s, "https://a.b.example.com"));
        assert!(!is_allowed(&s, "https://app.example.com/path"));
        assert!(is_allowed(&s, "http://localhost:4000"));
        assert!(!is_allowed(&s, "http://localhost:1@evil.tld"));
        assert!(!is_allowed(&s, "http://localhost:1@evil"));
        assert!(is_allowed(&s, "http://localhost:3000/a/b.c?d=e"));
        assert!(!is_allowed(&s, "http://localhost.evil.tld:3000/"));
    }

    #[test]
    fn paths_queries_and_custom_schemes() {
        let s = settings("https://x.example.com/cb/*,myapp://callback,com.example.app:/oauth");
        assert!(is_allowed(&s, "https://x.example.com/cb/done"));
        assert!(!is_allowed(&s, "https://x.example.com/cb/a/b"));
        assert!(!is_allowed(&s, "https://x.example.com/cb/a?next=//evil"));
        assert!(is_allowed(&s, "myapp://callback"));
        assert!(!is_allowed(&s, "myapp://callback.evil"));
        assert!(is_allowed(&s, "com.example.app:/oauth"));
    }

    #[test]
    fn ip_addresses_only_when_loopback() {
        let s = settings("http://10.0.0.5:3000/**");
        assert!(is_allowed(&s, "http://127.0.0.1:9999/cb"));
        assert!(is_allowed(&s, "http://[::1]:9999/cb"));
        assert!(!is_allowed(&s, "http://10.0.0.5:3000/cb"));
    }
}
