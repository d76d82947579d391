//! This service as a SAML service provider: its metadata (`GET /sso/saml/metadata`) and the
//! AuthnRequest it sends through the HTTP-Redirect binding, signed with its key.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use super::key::SpKey;
use super::require_enabled;
use super::xml::escape;
use crate::error::AuthError;
use crate::AuthState;

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
const EMAIL_ADDRESS: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// The SP's entity ID (its metadata URL, as GoTrue's).
pub fn entity_id(state: &AuthState) -> String {
    format!("{}saml/metadata", super::sp_base(state))
}

/// The assertion consumer service URL.
pub fn acs_url(state: &AuthState) -> String {
    format!("{}saml/acs", super::sp_base(state))
}

#[derive(Deserialize, Default)]
pub struct MetadataQuery {
    download: Option<String>,
}

/// `GET /sso/saml/metadata[?download=true]`.
pub async fn metadata(
    State(state): State<AuthState>,
    Query(q): Query<MetadataQuery>,
) -> Result<Response, AuthError> {
    let key = require_enabled(&state)?;
    let download = q.download.as_deref() == Some("true");
    let valid_for = if download {
        chrono::Duration::days(5 * 365)
    } else {
        chrono::Duration::hours(48)
    };
    let valid_until = (chrono::Utc::now() + valid_for).format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="{valid_until}" entityID="{entity}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAssertionsSigned="true"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>{EMAIL_ADDRESS}</md:NameIDFormat><md:NameIDFormat>{PERSISTENT}</md:NameIDFormat><md:AssertionConsumerService Binding="{POST_BINDING}" Location="{acs}" index="1"></md:AssertionConsumerService></md:SPSSODescriptor></md:EntityDescriptor>"#,
        entity = escape(&entity_id(&state)),
        cert = key.certificate_base64(),
        acs = escape(&acs_url(&state)),
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/xml"),
            (header::CACHE_CONTROL, "public, max-age=600"),
        ],
        body,
    )
        .into_response();
    if download {
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            header::HeaderValue::from_static("attachment; filename=\"metadata.xml\""),
        );
    }
    Ok(response)
}

/// An AuthnRequest, ready to send.
pub struct AuthnRequest {
    pub id: String,
    xml: String,
}

impl AuthnRequest {
    /// A request to `destination` asking for a `name_id_format` subject (persistent unless the
    /// provider says otherwise).
    pub fn new(state: &AuthState, destination: &str, name_id_format: Option<&str>) -> Self {
        let id = format!("id-{}", hex(&rand::random::<[u8; 20]>()));
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let xml = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="{POST_BINDING}"><saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">{issuer}</saml:Issuer><samlp:NameIDPolicy Format="{format}" AllowCreate="true"/></samlp:AuthnRequest>"#,
            dest = escape(destination),
            acs = escape(&acs_url(state)),
            issuer = escape(&entity_id(state)),
            format = escape(name_id_format.unwrap_or(PERSISTENT)),
        );
        AuthnRequest { id, xml }
    }

    /// The HTTP-Redirect binding URL: deflated, base64, with the relay state, signed.
    pub fn redirect_url(&self, destination: &str, relay_state: &str, key: &SpKey) -> String {
        let encoded = STANDARD.encode(deflate_stored(self.xml.as_bytes()));
        let signed = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", &encoded)
            .append_pair("RelayState", relay_state)
            .append_pair("SigAlg", RSA_SHA256)
            .finish();
        let signature = STANDARD.encode(key.sign(signed.as_bytes()));
        let query = url::form_urlencoded::Serializer::new(signed)
            .append_pair("Signature", &signature)
            .finish();
        let sep = if destination.contains('?') { '&' } else { '?' };
        format!("{destination}{sep}{query}")
    }
}

/// Raw DEFLATE (RFC 1951) in stored blocks: valid input for every inflater, and an
/// AuthnRequest is small enough that compressing it buys nothing.
fn deflate_stored(data: &[u8]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(0xFFFF).collect()
    };
    let mut out = Vec::with_capacity(data.len() + 5 * chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stored_deflate_has_one_final_block_per_64k() {
        let out = super::deflate_stored(b"abc");
        assert_eq!(out, [1, 3, 0, 0xFC, 0xFF, b'a', b'b', b'c']);
        let big = vec![7u8; 70_000];
        let out = super::deflate_stored(&big);
        assert_eq!(out[0], 0);
        assert_eq!(out.len(), 70_000 + 10);
        assert_eq!(out[5 + 0xFFFF], 1);
    }
}
