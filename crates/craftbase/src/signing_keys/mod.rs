//! The keys users' access tokens are signed with: P-256 keys craftbase generates (ES256, each
//! with a random `kid`), kept in the data directory's `secrets.json` beside the JWT secret.
//!
//! A key is `current` (signs new tokens), `standby` (published in the JWKS and verifying, so
//! every verifier knows it before it signs), `previous` (no longer signs; its tokens keep
//! verifying until they expire) or `revoked` (its private half is gone and its tokens stop
//! verifying at once). `craftbase signing-keys` moves keys through these states
//! ([`command`]); a running craftbase follows the file ([`watch`]). HS256 tokens signed with the
//! project secret (legacy keys, sessions from before the upgrade) keep verifying throughout.

pub mod command;
pub mod watch;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use craftbase_shared::KeySet;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How users' access tokens are signed, from `CRAFTBASE_JWT_ALGORITHM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// The default: a generated P-256 key signs; HS256 tokens still verify.
    Es256,
    /// Only the project secret signs (no key is generated; existing keys keep verifying).
    Hs256,
    /// `GOTRUE_JWT_KEYS` is set: its key marked `sign` signs, and the operator manages the keys
    /// (none is generated; the data directory's keep verifying, so no one is logged out).
    Configured,
}

impl JwtAlgorithm {
    /// `CRAFTBASE_JWT_ALGORITHM` (`ES256`, the default, or `HS256`); `Configured` when
    /// `GOTRUE_JWT_KEYS` is set and the algorithm is not HS256.
    pub fn from_env() -> anyhow::Result<JwtAlgorithm> {
        let chosen = JwtAlgorithm::chosen()?;
        let configured = std::env::var("GOTRUE_JWT_KEYS").is_ok_and(|k| !k.trim().is_empty());
        Ok(match chosen {
            JwtAlgorithm::Es256 if configured => JwtAlgorithm::Configured,
            other => other,
        })
    }

    fn chosen() -> anyhow::Result<JwtAlgorithm> {
        match std::env::var("CRAFTBASE_JWT_ALGORITHM") {
            Err(_) => Ok(JwtAlgorithm::Es256),
            Ok(v) => match v.trim().to_ascii_uppercase().as_str() {
                "" | "ES256" => Ok(JwtAlgorithm::Es256),
                "HS256" => Ok(JwtAlgorithm::Hs256),
                other => anyhow::bail!("CRAFTBASE_JWT_ALGORITHM={other}: expected ES256 or HS256"),
            },
        }
    }
}

/// Where a key is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Current,
    Standby,
    Previous,
    Revoked,
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyStatus::Current => "current",
            KeyStatus::Standby => "standby",
            KeyStatus::Previous => "previous",
            KeyStatus::Revoked => "revoked",
        })
    }
}

/// One signing key as `secrets.json` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSigningKey {
    pub kid: String,
    pub status: KeyStatus,
    /// Always `ES256` for generated keys.
    pub algorithm: String,
    /// The private JWK; `None` once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Value>,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// A new P-256 key in `status`.
pub fn generate(status: KeyStatus, now: chrono::DateTime<chrono::Utc>) -> StoredSigningKey {
    let secret = loop {
        let mut scalar = [0u8; 32];
        rand::rng().fill_bytes(&mut scalar);
        // Out of range (zero or past the group order) in about 2^-32 of draws: draw again.
        if let Ok(key) = p256::SecretKey::from_slice(&scalar) {
            break key;
        }
    };
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let kid = uuid::Uuid::new_v4().to_string();
    StoredSigningKey {
        jwk: Some(json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "x": b64(&point.x().map(|x| x.to_vec()).unwrap_or_default()),
            "y": b64(&point.y().map(|y| y.to_vec()).unwrap_or_default()),
            "d": b64(&secret.to_bytes()),
        })),
        kid,
        status,
        algorithm: "ES256".into(),
        created_at: now.to_rfc3339(),
        revoked_at: None,
    }
}

/// Adds a current key when `algorithm` is ES256 and none is current; true when it did.
pub fn ensure_current(
    keys: &mut Vec<StoredSigningKey>,
    algorithm: JwtAlgorithm,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    if algorithm != JwtAlgorithm::Es256 || keys.iter().any(|k| k.status == KeyStatus::Current) {
        return false;
    }
    keys.push(generate(KeyStatus::Current, now));
    true
}

/// The index of the key `which` names: its whole `kid`, or a prefix of at least 4 characters
/// that only one key has.
pub fn find(keys: &[StoredSigningKey], which: &str) -> anyhow::Result<usize> {
    if let Some(at) = keys.iter().position(|k| k.kid == which) {
        return Ok(at);
    }
    anyhow::ensure!(which.len() >= 4, "no signing key {which}");
    let found: Vec<usize> = (0..keys.len())
        .filter(|i| keys[*i].kid.starts_with(which))
        .collect();
    match found.as_slice() {
        [at] => Ok(*at),
        [] => anyhow::bail!("no signing key {which}"),
        _ => anyhow::bail!("{which} names more than one signing key; give more of the kid"),
    }
}

/// Makes a standby (or previous) key current; the current one becomes previous.
pub fn promote(keys: &mut [StoredSigningKey], which: &str) -> anyhow::Result<usize> {
    let at = find(keys, which)?;
    match keys[at].status {
        KeyStatus::Standby | KeyStatus::Previous => {}
        KeyStatus::Current => anyhow::bail!("{} is already the current key", keys[at].kid),
        KeyStatus::Revoked => anyhow::bail!("{} is revoked", keys[at].kid),
    }
    for key in keys.iter_mut() {
        if key.status == KeyStatus::Current {
            key.status = KeyStatus::Previous;
        }
    }
    keys[at].status = KeyStatus::Current;
    Ok(at)
}

/// Revokes a standby or previous key: its private half is dropped and its tokens stop
/// verifying. The current key cannot be revoked (promote another first).
pub fn revoke(
    keys: &mut [StoredSigningKey],
    which: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<usize> {
    let at = find(keys, which)?;
    match keys[at].status {
        KeyStatus::Current => anyhow::bail!(
            "{} is the current key; promote another key first (craftbase signing-keys new, then promote)",
            keys[at].kid
        ),
        KeyStatus::Revoked => anyhow::bail!("{} is already revoked", keys[at].kid),
        _ => {}
    }
    keys[at].status = KeyStatus::Revoked;
    keys[at].jwk = None;
    keys[at].revoked_at = Some(now.to_rfc3339());
    Ok(at)
}

/// The keys tokens are verified and signed with: `GOTRUE_JWT_KEYS` (`configured`) first, whose
/// signing key wins, then the data directory's unrevoked keys; the current one signs when
/// `algorithm` is ES256.
pub fn key_set(
    configured: Option<&str>,
    stored: &[StoredSigningKey],
    algorithm: JwtAlgorithm,
) -> anyhow::Result<KeySet> {
    let configured = match configured.map(str::trim).filter(|k| !k.is_empty()) {
        Some(jwks) => KeySet::from_jwks(jwks)?,
        None => KeySet::default(),
    };
    let list: Vec<Value> = stored
        .iter()
        .filter(|k| k.status != KeyStatus::Revoked)
        .filter_map(|k| {
            let mut jwk = k.jwk.clone()?;
            let object = jwk.as_object_mut()?;
            object.insert("kid".into(), json!(k.kid));
            if k.status == KeyStatus::Current && algorithm == JwtAlgorithm::Es256 {
                object.insert("key_ops".into(), json!(["sign", "verify"]));
            } else {
                object.remove("d");
                object.insert("key_ops".into(), json!(["verify"]));
            }
            Some(jwk)
        })
        .collect();
    Ok(configured.merge(KeySet::from_list(&list)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_moves_the_signer_and_revocation_drops_the_key() {
        let now = chrono::Utc::now();
        let mut keys = Vec::new();
        assert!(ensure_current(&mut keys, JwtAlgorithm::Es256, now));
        assert!(!ensure_current(&mut keys, JwtAlgorithm::Es256, now));
        let first = keys[0].kid.clone();
        let set = key_set(None, &keys, JwtAlgorithm::Es256).unwrap();
        assert_eq!(set.signer().unwrap().kid(), first);
        assert_eq!(set.published().len(), 1);
        assert!(set.published()[0].get("d").is_none());

        keys.push(generate(KeyStatus::Standby, now));
        let second = keys[1].kid.clone();
        let set = key_set(None, &keys, JwtAlgorithm::Es256).unwrap();
        assert_eq!(
            set.signer().unwrap().kid(),
            first,
            "a standby key does not sign"
        );
        assert_eq!(set.published().len(), 2, "but it is published");

        promote(&mut keys, &second[..8]).unwrap();
        assert_eq!(keys[0].status, KeyStatus::Previous);
        assert!(
            revoke(&mut keys, &second, now).is_err(),
            "not the current key"
        );
        let set = key_set(None, &keys, JwtAlgorithm::Es256).unwrap();
        assert_eq!(set.signer().unwrap().kid(), second);

        revoke(&mut keys, &first, now).unwrap();
        assert!(keys[0].jwk.is_none());
        let set = key_set(None, &keys, JwtAlgorithm::Es256).unwrap();
        assert_eq!(set.published().len(), 1);
        assert!(key_set(None, &keys, JwtAlgorithm::Hs256)
            .unwrap()
            .signer()
            .is_none());
    }
}
