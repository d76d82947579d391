//! Who a request runs as: the bearer JWT, verified with the pinned algorithm, and the role it
//! names, which must be one `authenticator` may switch to. Nothing here reaches the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap};
use craftbase_shared::{Claims, JwtError, ServiceContext};

use crate::config::GatewayConfig;
use crate::error::ApiError;

/// The role and claims a request runs with.
#[derive(Debug, Clone)]
pub struct Identity {
    pub role: String,
    /// All claims as JSON, `role` filled in when the token has none; `{"role":"anon"}` without
    /// a token.
    pub claims_json: String,
    /// Whether the role is the anon role (`PGRST_DB_ANON_ROLE`).
    anon: bool,
}

impl Identity {
    /// PostgREST answers 42501 with 403 to a signed-in role and 401 to anon.
    pub fn is_authenticated(&self) -> bool {
        !self.anon
    }
}

/// Identities of tokens verified recently, so that a client's next requests skip the checks.
/// An entry lives until its token expires (with the usual leeway), five minutes at most, or
/// until the verifier's keys change (a revoked signing key's tokens stop at once).
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// The verifier's key generation these entries were verified under.
    generation: u64,
    map: HashMap<String, (Arc<Identity>, u64)>,
}

/// Entries kept before the cache is emptied and starts over.
const TOKEN_CACHE_SIZE: usize = 10_000;
const TOKEN_CACHE_SECONDS: u64 = 300;

impl TokenCache {
    fn get(&self, token: &str, now: u64, generation: u64) -> Option<Arc<Identity>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            entries.map.clear();
            entries.generation = generation;
            return None;
        }
        match entries.map.get(token) {
            Some((identity, until)) if now < *until => Some(identity.clone()),
            _ => None,
        }
    }

    fn insert(
        &self,
        token: &str,
        claims: &Claims,
        identity: &Arc<Identity>,
        now: u64,
        generation: u64,
    ) {
        let expires = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .map_or(u64::MAX, |e| {
                e.saturating_add(craftbase_shared::keys::CLOCK_SKEW_SECONDS)
            });
        let until = expires.min(now + TOKEN_CACHE_SECONDS);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.generation != generation {
            // The keys changed while this token was checked: do not keep its verdict.
            return;
        }
        if entries.map.len() >= TOKEN_CACHE_SIZE {
            entries.map.clear();
        }
        entries
            .map
            .insert(token.to_owned(), (identity.clone(), until));
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verifies the `Authorization: Bearer` token (anon without one). A token verified recently
/// skips the signature check, the audience check and the role lookup: its identity is cached.
pub fn authenticate(
    ctx: &ServiceContext,
    cache: &TokenCache,
    config: &GatewayConfig,
    headers: &HeaderMap,
) -> Result<Arc<Identity>, ApiError> {
    let audience = config.jwt_aud.as_deref();
    let token = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::JwtInvalid("Invalid Authorization header".into()))?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                None
            } else {
                let token = token.trim();
                if token.is_empty() {
                    return Err(ApiError::JwtInvalid(
                        "Empty JWT is sent in Authorization header".into(),
                    ));
                }
                Some(token)
            }
        }
    };
    let Some(token) = token else {
        return identity(ctx, config, None).map(Arc::new);
    };
    let now = unix_now();
    let generation = ctx.jwt.generation();
    if let Some(identity) = cache.get(token, now, generation) {
        return Ok(identity);
    }
    let claims = ctx.jwt.verify_access_token(token).map_err(|e| match e {
        JwtError::Expired => ApiError::JwtClaims("JWT expired".into()),
        JwtError::NotYetValid => ApiError::JwtClaims("JWT not yet valid".into()),
        JwtError::Audience => ApiError::JwtClaims("JWT not in audience".into()),
        JwtError::MissingClaim(c) => {
            ApiError::JwtClaims(format!("JWT is missing the required claim {c}"))
        }
        JwtError::Invalid => {
            ApiError::JwtInvalid("JWT could not be decoded or its signature is invalid".into())
        }
    })?;
    if let Some(aud) = audience {
        let matches = match claims.get("aud") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::String(s)) => s.is_empty() || s == aud,
            Some(serde_json::Value::Array(list)) => {
                list.is_empty() || list.iter().any(|a| a.as_str() == Some(aud))
            }
            Some(_) => false,
        };
        if !matches {
            return Err(ApiError::JwtClaims("JWT not in audience".into()));
        }
    }
    let identity = Arc::new(identity(ctx, config, Some(claims.clone()))?);
    cache.insert(token, &claims, &identity, now, generation);
    Ok(identity)
}

/// The role a request runs as (only one authenticator may become) and its claims as JSON:
/// the value at `PGRST_JWT_ROLE_CLAIM_KEY`, else the anon role, else 401 PGRST302.
fn identity(
    ctx: &ServiceContext,
    config: &GatewayConfig,
    claims: Option<Claims>,
) -> Result<Identity, ApiError> {
    let mut claims = serde_json::Value::Object(claims.unwrap_or_default());
    let role = match config.role_claim_key.find(&claims) {
        None | Some(serde_json::Value::Null) => config
            .anon_role
            .clone()
            .ok_or(ApiError::AnonymousDisabled)?,
        Some(serde_json::Value::String(role)) => role.clone(),
        Some(_) => {
            return Err(ApiError::JwtClaims(
                "The JWT role claim must be a string".into(),
            ))
        }
    };
    if !ctx.roles.allows(&role) {
        return Err(ApiError::RoleNotAllowed(role));
    }
    if let serde_json::Value::Object(map) = &mut claims {
        // Functions read `request.jwt.claims->>'role'`; a role found elsewhere leaves the
        // token's own `role` claim as it is.
        if config.role_claim_key.is_default() || !map.contains_key("role") {
            map.insert("role".into(), serde_json::Value::String(role.clone()));
        }
    }
    Ok(Identity {
        anon: config.anon_role.as_deref() == Some(role.as_str()),
        role,
        claims_json: claims.to_string(),
    })
}
