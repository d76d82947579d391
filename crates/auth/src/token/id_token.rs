//! `grant_type=id_token` (auth-js `signInWithIdToken`): an OpenID Connect ID token obtained
//! natively (Google, or a configured OIDC provider) for a session. The token is checked against
//! the provider's published keys, issuer and client id, and its nonce when it carries one.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::AuthError;
use crate::oauth::{self, provider};
use crate::redirect::Origin;
use crate::session::{self, Device};
use crate::AuthState;

/// The body auth-js sends.
#[derive(Deserialize)]
pub struct IdTokenGrant {
    provider: Option<String>,
    id_token: Option<String>,
    nonce: Option<String>,
}

/// GoTrue's answer to a token that does not verify (the reason stays in the log).
fn refused(why: impl std::fmt::Display) -> AuthError {
    tracing::debug!(%why, "ID token refused");
    oauth_refusal("Bad ID token")
}

/// GoTrue answers ID-token failures in the OAuth shape, with `invalid request` (a space) as error.
fn oauth_refusal(description: &'static str) -> AuthError {
    AuthError::OAuth {
        error: "invalid request",
        description: description.into(),
    }
}

/// The issuer GoTrue names when a built-in provider that issues ID tokens is off.
fn builtin_issuer(name: &str) -> Option<&'static str> {
    Some(match name {
        "google" => "https://accounts.google.com",
        "apple" => "https://appleid.apple.com",
        "azure" => "https://login.microsoftonline.com/common/v2.0",
        "facebook" => "https://www.facebook.com",
        "kakao" => "https://kauth.kakao.com",
        _ => return None,
    })
}

pub async fn grant(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    body: IdTokenGrant,
) -> Result<Value, AuthError> {
    let name = body.provider.as_deref().unwrap_or("").to_ascii_lowercase();
    let token = body
        .id_token
        .filter(|t| !t.is_empty())
        .ok_or(oauth_refusal("id_token required"))?;
    let provider = match name.strip_prefix("custom:") {
        Some(_) => custom_provider(state, &name).await?,
        None => state
            .providers
            .get(&name)
            .cloned()
            .ok_or_else(|| match builtin_issuer(&name) {
                Some(issuer) => AuthError::ProviderDisabled(format!(
                    "Provider (issuer {issuer:?}) is not enabled"
                )),
                None => {
                    AuthError::Validation(format!("Custom OIDC provider \"{name}\" not allowed"))
                }
            })?,
    };
    let keys = provider.id_tokens.as_ref().ok_or_else(|| {
        AuthError::Validation(format!("Provider \"{name}\" does not issue ID tokens"))
    })?;
    let claims = verify(state, keys, &token).await?;
    // GoTrue's order: the subject, then the audience, then the nonce.
    let account = provider::oidc_account(&Value::Object(claims.clone()))
        .ok_or(oauth_refusal("Missing sub claim in id_token"))?;
    check_audience(&claims, keys, &provider.client_id)?;
    if !keys.skip_nonce_check {
        check_nonce(&claims, body.nonce.as_deref())?;
    }
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = crate::linking::link_or_create(state, &tx, &name, &account).await?;
    let issued = session::create(state, &tx, origin, device, &user, "oauth").await?;
    tx.commit().await?;
    Ok(issued.to_json(state))
}

/// A registered provider, refused in GoTrue's words when off, unknown, disabled or not OIDC.
async fn custom_provider(state: &AuthState, name: &str) -> Result<provider::Provider, AuthError> {
    if !state.settings.custom_oauth_enabled {
        return Err(AuthError::Validation(
            "Custom OAuth providers are disabled".into(),
        ));
    }
    let db = state.ctx.admin.get().await?;
    let found = oauth::custom::CustomProvider::find(&db, name)
        .await?
        .ok_or_else(|| AuthError::Validation(format!("Custom provider {name:?} not found")))?;
    if !found.enabled {
        return Err(AuthError::ProviderDisabled(format!(
            "Custom provider {name:?} is disabled"
        )));
    }
    if !found.is_oidc() {
        return Err(AuthError::Validation(format!(
            "Provider {name:?} is not an OIDC provider"
        )));
    }
    Ok(found.to_provider())
}

/// Checks signature (with the provider's key of the token's `kid`), issuer and expiry; the
/// audience is checked apart, so that a wrong one gets GoTrue's own answer.
async fn verify(
    state: &AuthState,
    keys: &provider::IdTokenKeys,
    token: &str,
) -> Result<Map<String, Value>, AuthError> {
    let header = decode_header(token).map_err(refused)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(refused("unsupported algorithm"));
    }
    let set: Value = state
        .http
        .get(&keys.jwks_url)
        .send()
        .await
        .map_err(|e| AuthError::Internal(format!("fetching the provider's keys: {e}")))?
        .json()
        .await
        .map_err(|e| AuthError::Internal(format!("reading the provider's keys: {e}")))?;
    let jwk = set["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| header.kid.is_none() || k["kid"].as_str() == header.kid.as_deref())
        .ok_or_else(|| refused("no key with the token's kid"))?;
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(refused)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(refused)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = craftbase_shared::keys::CLOCK_SKEW_SECONDS;
    validation.validate_aud = false;
    validation.set_issuer(&[keys.issuer.as_str()]);
    Ok(decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(refused)?
        .claims)
}

/// The token's `aud` (a string or a list) must name the provider's client id or one of its extra
/// audiences; otherwise GoTrue's message, listing the token's audiences as Go prints a slice.
fn check_audience(
    claims: &Map<String, Value>,
    keys: &provider::IdTokenKeys,
    client_id: &str,
) -> Result<(), AuthError> {
    let given: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut acceptable = std::iter::once(client_id)
        .chain(keys.extra_audiences.iter().map(String::as_str))
        .filter(|a| !a.is_empty());
    if acceptable.any(|a| given.contains(&a)) {
        return Ok(());
    }
    Err(AuthError::OAuth {
        error: "invalid request",
        description: format!("Unacceptable audience in id_token: [{}]", given.join(" ")).into(),
    })
}

/// A token with a `nonce` claim needs the raw nonce whose SHA-256 (hex) it holds, or the same
/// value; a nonce given for a token without one is refused.
fn check_nonce(claims: &Map<String, Value>, given: Option<&str>) -> Result<(), AuthError> {
    let expected = claims.get("nonce").and_then(Value::as_str);
    match (expected, given.filter(|n| !n.is_empty())) {
        (None, None) => Ok(()),
        (Some(expected), Some(given)) => {
            let hashed: String = Sha256::digest(given.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if expected == hashed || expected == given {
                Ok(())
            } else {
                Err(AuthError::OAuth {
                    error: "invalid nonce",
                    description: "Nonces mismatch".into(),
                })
            }
        }
        (Some(_), None) | (None, Some(_)) => Err(oauth_refusal(
            "Passed nonce and nonce in id_token should either both exist or not.",
        )),
    }
}
