//! Where things point: this service's public URL (the base of mailed links and the token
//! issuer) and the `redirect_to` targets users are sent back to.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::settings::Settings;
use crate::AuthState;

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

impl FromRequestParts<AuthState> for Origin {
    type Rejection = std::convert::Infallible;

    /// `API_EXTERNAL_URL` when set; otherwise the host the request came to, so links work
    /// wherever craftbase is reached from.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.settings.api_external_url {
            return Ok(Origin(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
            })
            .unwrap_or("127.0.0.1:54321");
        Ok(Origin(format!("http://{host}/auth/v1")))
    }
}

/// The redirect target for `requested`: it when allowed, the site URL otherwise.
pub fn target(settings: &Settings, requested: Option<&str>) -> String {
    match requested {
        Some(r) if is_allowed(settings, r) => r.to_owned(),
        _ => settings.site_url.clone(),
    }
}

/// Allowed targets: the site URL's origin, or an allow-list entry (`*` matches within a path
/// segment, `**` anything).
pub fn is_allowed(settings: &Settings, requested: &str) -> bool {
    let Ok(url) = url::Url::parse(requested) else {
        return false;
    };
    if let Ok(site) = url::Url::parse(&settings.site_url) {
        if site.origin() == url.origin() {
            return true;
        }
    }
    settings
        .uri_allow_list
        .iter()
        .filter(|p| !p.is_empty())
        .any(|pattern| glob(pattern.trim(), requested))
}

fn glob(pattern: &str, text: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("**") {
        return (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| glob(rest, &text[i..]));
    }
    if let Some(rest) = pattern.strip_prefix('*') {
        return (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .take_while(|i| !text[..*i].contains('/'))
            .any(|i| glob(rest, &text[i..]));
    }
    match (pattern.chars().next(), text.chars().next()) {
        (None, None) => true,
        (Some(p), Some(t)) if p == t => glob(&pattern[p.len_utf8()..], &text[t.len_utf8()..]),
        _ => false,
    }
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
    use super::glob;

    #[test]
    fn globs_match_like_gotrue_allow_lists() {
        assert!(glob(
            "http://localhost:3000/**",
            "http://localhost:3000/a/b?c=1"
        ));
        assert!(glob("http://*.example.com", "http://app.example.com"));
        assert!(!glob(
            "http://*.example.com",
            "http://evil.com/.example.com"
        ));
        assert!(glob("http://x/cb", "http://x/cb"));
        assert!(!glob("http://x/cb", "http://x/cb2"));
    }
}
