//! The keys a running craftbase accepts, and the JWTs it passes inward for them.
//!
//! Only SHA-256 digests of the active keys are held, and a presented key is compared against
//! every one of them in constant time. `secrets.json` is watched (every two seconds, and at
//! once on SIGHUP), so `craftbase keys new|revoke` takes effect without a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

use craftbase_shared::key_lease::KeyLease;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{KeyKind, StoredKey};

/// Lifetime of the JWT minted for an HTTP request made with a key: short, so a token read back
/// (say from `request.headers` in SQL) is worth little, and a revoked key's tokens die soon.
const REQUEST_TOKEN_SECONDS: u64 = 300;
/// A cached request token is re-minted once less than this is left of it.
const REQUEST_TOKEN_MIN_LEFT: u64 = 120;
/// Lifetime of the JWT a realtime socket connects with: realtime closes channels when their
/// token expires, and a key does not expire, so it lives as long as the legacy keys (ten
/// years). It stays inside craftbase: realtime never hands the connect token back.
const SOCKET_TOKEN_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// What a minted token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Use {
    /// One HTTP request.
    Request,
    /// A realtime websocket, for as long as it stays open.
    Socket,
}

/// The accepted keys and the tokens minted for them.
pub struct KeyRing {
    path: PathBuf,
    jwt_secret: String,
    active: RwLock<Active>,
    tokens: Mutex<HashMap<(KeyKind, Use), (String, u64)>>,
    /// The leases of sockets opened with each key (by digest), revoked with the key.
    leases: Mutex<HashMap<[u8; 32], KeyLease>>,
}

struct Active {
    digests: Vec<(KeyKind, [u8; 32])>,
    /// The file's identity when it was last read: (inode, size, modified in ns).
    seen: Option<(u64, u64, i64)>,
}

/// The part of `secrets.json` the ring reads.
#[derive(Deserialize)]
struct KeysFile {
    #[serde(default)]
    api_keys: Vec<StoredKey>,
}

impl KeyRing {
    /// A ring over `keys`, which were read from `path`; tokens are signed with `jwt_secret`.
    pub fn new(path: PathBuf, jwt_secret: &str, keys: &[StoredKey]) -> Self {
        let seen = crate::secrets_watch::file_identity(&path);
        Self {
            path,
            jwt_secret: jwt_secret.to_owned(),
            active: RwLock::new(Active {
                digests: digests(keys),
                seen,
            }),
            tokens: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// The lease a socket opened with `presented` (an active key) holds until the key is revoked.
    pub fn lease(&self, presented: &str) -> KeyLease {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.entry(digest).or_default().clone()
    }

    /// The kind of an active key equal to `presented`, compared in constant time with each.
    pub fn identify(&self, presented: &str) -> Option<KeyKind> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let active = self.active.read().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for (kind, known) in &active.digests {
            if constant_time_eq(&digest, known) {
                found = Some(*kind);
            }
        }
        found
    }

    /// A JWT for `kind`'s role, from the cache while it has enough life left.
    pub fn token(&self, kind: KeyKind, used: Use) -> anyhow::Result<String> {
        let now = crate::datadir::unix_now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = tokens.get(&(kind, used)) {
            if used == Use::Socket || *exp > now + REQUEST_TOKEN_MIN_LEFT {
                return Ok(token.clone());
            }
        }
        let lifetime = match used {
            Use::Request => REQUEST_TOKEN_SECONDS,
            Use::Socket => SOCKET_TOKEN_SECONDS,
        };
        let exp = now + lifetime;
        let claims = serde_json::json!({
            "iss": "supabase",
            "ref": "craftbase",
            "role": kind.role(),
            "iat": now,
            "exp": exp,
        });
        let token = craftbase_shared::keys::sign(&self.jwt_secret, &claims)?;
        tokens.insert((kind, used), (token.clone(), exp));
        Ok(token)
    }

    /// Reads the keys again when the file changed since the last read (or always, when
    /// `force`); true when they were read.
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let now_seen = crate::secrets_watch::file_identity(&self.path);
        {
            let active = self.active.read().unwrap_or_else(|e| e.into_inner());
            if !force && now_seen == active.seen {
                return Ok(false);
            }
        }
        let file: KeysFile = serde_json::from_slice(&std::fs::read(&self.path)?)?;
        let digests = digests(&file.api_keys);
        let count = digests.len();
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        // Sockets of a key that is gone close.
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        leases.retain(|digest, lease| {
            let kept = digests.iter().any(|(_, d)| d == digest);
            if !kept {
                lease.revoke();
            }
            kept
        });
        drop(leases);
        active.digests = digests;
        active.seen = now_seen;
        tracing::info!(active_keys = count, "API keys reloaded");
        Ok(true)
    }
}

impl crate::secrets_watch::Reload for KeyRing {
    fn what(&self) -> &'static str {
        "API keys"
    }

    fn reload(&self, force: bool) -> anyhow::Result<bool> {
        KeyRing::reload(self, force)
    }
}

fn digests(keys: &[StoredKey]) -> Vec<(KeyKind, [u8; 32])> {
    keys.iter()
        .filter(|k| k.is_active())
        .filter_map(|k| {
            let value = k.key.as_deref()?;
            Some((k.kind, Sha256::digest(value.as_bytes()).into()))
        })
        .collect()
}

/// Equal digests, in time that does not depend on where they first differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_keys::new_key;
    use craftbase_shared::JwtVerifier;

    const SECRET: &str = "a-secret-of-enough-length-for-hs256-0123";

    #[test]
    fn identifies_active_keys_only_and_mints_their_roles() {
        let now = chrono::Utc::now();
        let mut keys = vec![
            new_key(KeyKind::Publishable, "web", now),
            new_key(KeyKind::Secret, "server", now),
        ];
        let publishable = keys[0].key.clone().unwrap();
        let secret = keys[1].key.clone().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let write = |keys: &[StoredKey]| {
            std::fs::write(&path, serde_json::json!({ "api_keys": keys }).to_string()).unwrap()
        };
        write(&keys);
        let ring = KeyRing::new(path.clone(), SECRET, &keys);
        assert_eq!(ring.identify(&publishable), Some(KeyKind::Publishable));
        assert_eq!(ring.identify(&secret), Some(KeyKind::Secret));
        assert_eq!(ring.identify(&secret[..secret.len() - 1]), None);
        assert_eq!(ring.identify("sb_secret_nope"), None);

        let verifier = JwtVerifier::hs256(SECRET, None);
        let token = ring.token(KeyKind::Secret, Use::Request).unwrap();
        assert_eq!(ring.token(KeyKind::Secret, Use::Request).unwrap(), token);
        let claims = verifier.verify_api_key(&token).unwrap();
        assert_eq!(claims["role"], "service_role");
        let left = claims["exp"].as_u64().unwrap() - crate::datadir::unix_now();
        assert!(left <= REQUEST_TOKEN_SECONDS);
        let anon = ring.token(KeyKind::Publishable, Use::Socket).unwrap();
        assert_eq!(verifier.verify_api_key(&anon).unwrap()["role"], "anon");

        crate::api_keys::revoke(&mut keys, &secret[..16], now).unwrap();
        write(&keys);
        assert!(ring.reload(true).unwrap());
        assert_eq!(ring.identify(&secret), None);
        assert_eq!(ring.identify(&publishable), Some(KeyKind::Publishable));
        assert!(!ring.reload(false).unwrap());
    }
}
