//! OpenID discovery of a custom OIDC provider: its endpoints, fetched from the issuer's
//! well-known document (or `discovery_url`) when it is registered or its issuer changes.

use serde_json::{Map, Value};

use super::invalid;
use crate::error::AuthError;
use crate::AuthState;

/// Fetches and checks an OIDC discovery document: it must parse, name `issuer`, and have the
/// authorization, token and key endpoints.
pub async fn discover(state: &AuthState, url: &str, issuer: &str) -> Result<Value, AuthError> {
    let failed = |why: String| invalid(format!("OIDC discovery from {url:?} failed: {why}"));
    let res = state
        .http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| failed(format!("oidc: discovery request to {url} failed: {e}")))?;
    if !res.status().is_success() {
        let status = res.status();
        return Err(failed(format!(
            "oidc: discovery request to {url} returned {status}"
        )));
    }
    let doc: Value = res.json().await.map_err(|e| {
        failed(format!(
            "oidc: failed to decode discovery document from {url}: {e}"
        ))
    })?;
    let got = doc["issuer"].as_str().unwrap_or("");
    if got != issuer {
        return Err(failed(format!(
            "oidc: issuer mismatch, expected {issuer:?} got {got:?}"
        )));
    }
    let required = [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
    ];
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|k| doc[*k].as_str().unwrap_or("").is_empty())
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "OIDC discovery document is missing required fields: {}",
            missing.join(", ")
        )));
    }
    let mut kept = Map::new();
    for key in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "scopes_supported",
        "response_types_supported",
        "grant_types_supported",
        "subject_types_supported",
    ] {
        if let Some(v) = doc.get(key).filter(|v| !v.is_null()) {
            kept.insert(key.into(), v.clone());
        }
    }
    Ok(Value::Object(kept))
}

/// OIDC scopes always start with `openid`.
pub fn with_openid(mut scopes: Vec<String>) -> Vec<String> {
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    scopes
}
