//! An identity provider's metadata (`EntityDescriptor` with one `IDPSSODescriptor`): its
//! entity ID, the HTTP-Redirect single sign-on URL and its signing certificates, with
//! GoTrue's validation messages; and the bounded fetch of metadata by URL.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use uppsala::NodeId;

use super::xml::{self, DS, MD};
use super::{invalid, refuse};
use crate::error::AuthError;
use crate::AuthState;

/// Metadata documents larger than this are refused (by URL or inline).
pub const MAX_METADATA_BYTES: usize = 512 * 1024;
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// What craftbase uses of an IdP's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_redirect_url: Option<String>,
    /// DER certificates whose keys may sign responses.
    pub signing_certs: Vec<Vec<u8>>,
    /// The metadata's `validUntil`, when it has one.
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// Parses metadata XML with GoTrue's checks.
pub fn parse(raw: &str) -> Result<IdpMetadata, AuthError> {
    if raw.len() > MAX_METADATA_BYTES {
        return Err(invalid("SAML Metadata is too large"));
    }
    let doc =
        xml::parse(raw).map_err(|e| invalid(format!("SAML Metadata is not valid XML: {e}")))?;
    let root = doc
        .document_element()
        .ok_or_else(|| invalid("SAML Metadata is not valid XML"))?;
    let entity = if xml::is(&doc, root, MD, "EntityDescriptor") {
        root
    } else if xml::is(&doc, root, MD, "EntitiesDescriptor") {
        xml::child(&doc, root, MD, "EntityDescriptor")
            .ok_or_else(|| invalid("SAML Metadata does not contain an EntityDescriptor"))?
    } else {
        return Err(invalid(
            "SAML Metadata does not contain an EntityDescriptor",
        ));
    };
    let entity_id = xml::attr(&doc, entity, "entityID")
        .unwrap_or("")
        .trim()
        .to_owned();
    if entity_id.is_empty() {
        return Err(invalid("SAML Metadata does not contain an EntityID"));
    }
    let descriptors = xml::children(&doc, entity, MD, "IDPSSODescriptor");
    let descriptor = match descriptors.as_slice() {
        [] => {
            return Err(invalid(
                "SAML Metadata does not contain any IDPSSODescriptor",
            ))
        }
        [one] => *one,
        _ => return Err(invalid("SAML Metadata contains multiple IDPSSODescriptors")),
    };
    let sso_redirect_url = xml::children(&doc, descriptor, MD, "SingleSignOnService")
        .into_iter()
        .find(|s| xml::attr(&doc, *s, "Binding") == Some(REDIRECT_BINDING))
        .and_then(|s| xml::attr(&doc, s, "Location").map(str::to_owned));
    let mut signing_certs = Vec::new();
    for kd in xml::children(&doc, descriptor, MD, "KeyDescriptor") {
        if !matches!(xml::attr(&doc, kd, "use"), None | Some("signing")) {
            continue;
        }
        for cert in certificates(&doc, kd) {
            let compact: String = cert.chars().filter(|c| !c.is_whitespace()).collect();
            let der = STANDARD
                .decode(compact)
                .map_err(|_| invalid("SAML Metadata contains an invalid X509Certificate"))?;
            signing_certs.push(der);
        }
    }
    let valid_until = xml::attr(&doc, entity, "validUntil")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(IdpMetadata {
        entity_id,
        sso_redirect_url,
        signing_certs,
        valid_until,
    })
}

fn certificates(doc: &uppsala::Document<'_>, key_descriptor: NodeId) -> Vec<String> {
    let mut out = Vec::new();
    for ki in xml::children(doc, key_descriptor, DS, "KeyInfo") {
        for data in xml::children(doc, ki, DS, "X509Data") {
            for c in xml::children(doc, data, DS, "X509Certificate") {
                out.push(xml::text(doc, c));
            }
        }
    }
    out
}

/// Whether `metadata_url` may be fetched: https, or http on loopback with craftbase's test
/// switch on.
pub fn check_url(state: &AuthState, metadata_url: &str) -> Result<url::Url, AuthError> {
    let parsed =
        url::Url::parse(metadata_url).map_err(|_| invalid("metadata_url is not a valid URL"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let http_allowed = state.settings.saml.saml_allow_loopback_http_metadata && loopback;
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && http_allowed) {
        return Err(invalid("metadata_url is not a HTTPS URL"));
    }
    Ok(parsed)
}

/// GETs metadata: at most [`MAX_METADATA_BYTES`], within [`FETCH_TIMEOUT`], no redirects.
pub async fn fetch(state: &AuthState, metadata_url: &str) -> Result<String, AuthError> {
    let url = check_url(state, metadata_url)?;
    let fetch_failed = |what: String| {
        refuse(
            axum::http::StatusCode::BAD_REQUEST,
            "saml_metadata_fetch_failed",
            what,
        )
    };
    let mut response = state
        .http
        .get(url)
        .header("Accept", "application/xml;charset=UTF-8")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            fetch_failed(format!(
                "Error fetching SAML Metadata from URL '{metadata_url}': {e}"
            ))
        })?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(fetch_failed(format!(
            "HTTP {} error fetching SAML Metadata from URL '{metadata_url}'",
            response.status().as_u16()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| fetch_failed(format!("Error fetching SAML Metadata: {e}")))?
    {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(invalid("SAML Metadata is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| {
        invalid("SAML Metadata XML contains invalid UTF-8 characters, which are not supported at this time")
    })
}

/// How long metadata fetched by URL is used before it is fetched again (GoTrue's default when
/// the metadata names neither `validUntil` nor `cacheDuration`).
const METADATA_MAX_AGE: chrono::Duration = chrono::Duration::hours(24);

/// The provider's metadata, fetched again from its URL when stale (past `validUntil`, or a
/// day old) and stored; when the fetch fails, or names another entity, the stored metadata
/// is used, as GoTrue does.
pub async fn current(
    state: &AuthState,
    provider: &super::model::Provider,
) -> Result<IdpMetadata, AuthError> {
    let stored = parse(&provider.metadata_xml)?;
    let Some(url) = provider.metadata_url.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(stored);
    };
    let now = chrono::Utc::now();
    let expired = stored.valid_until.is_some_and(|t| t <= now);
    let old = provider
        .metadata_updated_at
        .is_none_or(|t| t + METADATA_MAX_AGE <= now);
    if !expired && !old {
        return Ok(stored);
    }
    let fresh = match fetch(state, url).await {
        Ok(raw) => parse(&raw).map(|m| (raw, m)),
        Err(e) => Err(e),
    };
    match fresh {
        Ok((raw, metadata)) if metadata.entity_id == stored.entity_id => {
            let db = state.ctx.admin.get().await?;
            db.execute(
                "update auth.saml_providers set metadata_xml = $2, updated_at = now() \
                 where sso_provider_id = $1",
                &[&provider.id, &raw],
            )
            .await?;
            Ok(metadata)
        }
        other => {
            let reason = match other {
                Ok(_) => "it names another entity".to_owned(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(provider = %provider.id, %reason, "SAML metadata could not be refreshed; using the stored metadata");
            Ok(stored)
        }
    }
}
