//! A registered OAuth client (`auth.oauth_clients`): its row, its JSON, the checks GoTrue makes
//! of what admins register, and its secret, which is shown once and kept only as a SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use deadpool_postgres::GenericClient;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::error::AuthError;

/// The columns [`Client::from_row`] reads.
pub const COLUMNS: &str = "id, client_secret_hash, registration_type::text, redirect_uris, \
    grant_types, client_name, client_uri, logo_uri, created_at, updated_at, client_type::text, \
    token_endpoint_auth_method";

/// One OAuth client.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: Uuid,
    pub secret_hash: Option<String>,
    pub registration_type: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub name: Option<String>,
    pub uri: Option<String>,
    pub logo_uri: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub client_type: String,
    pub auth_method: String,
}

fn split(list: String) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Client {
    pub fn from_row(r: &Row) -> Client {
        Client {
            id: r.get(0),
            secret_hash: r.get(1),
            registration_type: r.get(2),
            redirect_uris: split(r.get(3)),
            grant_types: split(r.get(4)),
            name: r.get(5),
            uri: r.get(6),
            logo_uri: r.get(7),
            created_at: r.get(8),
            updated_at: r.get(9),
            client_type: r.get(10),
            auth_method: r.get(11),
        }
    }

    /// A client that has not been deleted.
    pub async fn find(db: &impl GenericClient, id: Uuid) -> Result<Option<Client>, AuthError> {
        let sql = format!(
            "select {COLUMNS} from auth.oauth_clients where id = $1 and deleted_at is null"
        );
        Ok(db
            .query_opt(&sql, &[&id])
            .await?
            .map(|r| Self::from_row(&r)))
    }

    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }

    /// GoTrue's client JSON; empty optional fields are left out.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "client_id": self.id,
            "client_type": self.client_type,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": self.auth_method,
            "grant_types": self.grant_types,
            "response_types": ["code"],
            "registration_type": self.registration_type,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        for (key, value) in [
            ("client_name", &self.name),
            ("client_uri", &self.uri),
            ("logo_uri", &self.logo_uri),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                out[key] = json!(v);
            }
        }
        out
    }

    /// The consent screen's view of the client.
    pub fn details(&self) -> Value {
        let mut out = json!({ "id": self.id });
        for (key, value) in [
            ("name", &self.name),
            ("uri", &self.uri),
            ("logo_uri", &self.logo_uri),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                out[key] = json!(v);
            }
        }
        out
    }

    /// Whether `secret` is this client's, compared in constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        let Some(stored) = self
            .secret_hash
            .as_deref()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        else {
            return false;
        };
        let given = Sha256::digest(secret.as_bytes());
        stored.len() == given.len()
            && stored
                .iter()
                .zip(given.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A new secret (32 random bytes, base64url) and the hash that is stored.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()));
    (secret, hash)
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Validation(msg.into())
}

/// A redirect URI a client may register: absolute, no fragment, no script-like scheme, and
/// plain http only on the loopback host.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Err("redirect URI cannot be empty".into());
    }
    let url = url::Url::parse(uri).map_err(|_| "invalid URL format".to_owned())?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must have scheme and host".into());
    }
    let scheme = url.scheme();
    if ["javascript", "data", "file", "vbscript", "about", "blob"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(format!(
            "scheme '{scheme}' is not allowed for security reasons"
        ));
    }
    if scheme == "http" {
        let host = url.host_str().unwrap_or("");
        if !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
            return Err("HTTP scheme only allowed for localhost".into());
        }
    }
    if url.fragment().is_some() {
        return Err("fragment not allowed in redirect URI".into());
    }
    Ok(())
}

pub fn check_redirect_uris(uris: &[String], required: bool) -> Result<(), AuthError> {
    if required && uris.is_empty() {
        return Err(invalid("redirect_uris is required"));
    }
    if uris.is_empty() {
        return Err(invalid("redirect_uris cannot be empty"));
    }
    if uris.len() > 10 {
        return Err(invalid("redirect_uris cannot exceed 10 items"));
    }
    for uri in uris {
        check_redirect_uri(uri)
            .map_err(|e| invalid(format!("invalid redirect_uri '{uri}': {e}")))?;
    }
    Ok(())
}

pub fn check_grant_types(types: &[String]) -> Result<(), AuthError> {
    if types.is_empty() {
        return Err(invalid("grant_types cannot be empty"));
    }
    if types
        .iter()
        .any(|t| t != "authorization_code" && t != "refresh_token")
    {
        return Err(invalid(
            "grant_types must only contain 'authorization_code' and/or 'refresh_token'",
        ));
    }
    Ok(())
}

pub fn check_name_and_uris(
    name: Option<&str>,
    uri: Option<&str>,
    logo: Option<&str>,
) -> Result<(), AuthError> {
    if name.is_some_and(|n| n.len() > 1024) {
        return Err(invalid("client_name cannot exceed 1024 characters"));
    }
    for (field, value) in [("client_uri", uri), ("logo_uri", logo)] {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if v.len() > 2048 {
            return Err(invalid(format!("{field} cannot exceed 2048 characters")));
        }
        if url::Url::parse(v).is_err() {
            return Err(invalid(format!("{field} must be a valid URL")));
        }
    }
    Ok(())
}

/// The authentication methods of the token endpoint, as GoTrue lists them.
pub const AUTH_METHODS: [&str; 3] = ["none", "client_secret_basic", "client_secret_post"];

/// The methods as GoTrue lists them in its refusals: `[none client_secret_basic ...]`.
pub fn auth_methods_text() -> String {
    format!("[{}]", AUTH_METHODS.join(" "))
}

/// `none` is for public clients, the secret methods for confidential ones.
pub fn client_type_of(method: &str) -> &'static str {
    if method == "none" {
        "public"
    } else {
        "confidential"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_gotrue() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(check_redirect_uri("myapp://callback").is_ok());
        assert!(check_redirect_uri("javascript://x/alert").is_err());
        assert_eq!(
            check_redirect_uri("http://app.example.com/cb").unwrap_err(),
            "HTTP scheme only allowed for localhost"
        );
        assert_eq!(
            check_redirect_uri("https://app.example.com/cb#x").unwrap_err(),
            "fragment not allowed in redirect URI"
        );
    }

    #[test]
    fn secrets_are_checked_against_their_hash() {
        let (secret, hash) = new_secret();
        let client = Client {
            id: Uuid::nil(),
            secret_hash: Some(hash),
            registration_type: "manual".into(),
            redirect_uris: vec![],
            grant_types: vec![],
            name: None,
            uri: None,
            logo_uri: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            client_type: "confidential".into(),
            auth_method: "client_secret_basic".into(),
        };
        assert!(client.secret_matches(&secret));
        assert!(!client.secret_matches("nope"));
    }
}
