//! The new API keys (`sb_publishable_…`, `sb_secret_…`): opaque random strings, not JWTs, kept in
//! the data directory's `secrets.json` beside the JWT secret (mode 0600). Several of each kind may
//! exist; a revoked key keeps its row (id, name, prefix, dates) but loses its value.
//!
//! The edge maps a publishable key to the `anon` role and a secret key to `service_role`
//! ([`ring::KeyRing`]); `craftbase keys` manages them ([`command`]).

pub mod command;
pub mod ring;

use std::fmt;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The two kinds of key and the role each acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Safe to ship in a browser or app: acts as `anon`, so RLS applies.
    Publishable,
    /// For servers only: acts as `service_role`, so it bypasses RLS.
    Secret,
}

impl KeyKind {
    /// The key's text prefix, as Supabase spells it.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Publishable => "sb_publishable_",
            KeyKind::Secret => "sb_secret_",
        }
    }

    /// The database role requests made with the key run as.
    pub fn role(self) -> &'static str {
        match self {
            KeyKind::Publishable => "anon",
            KeyKind::Secret => "service_role",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
        })
    }
}

/// One key as `secrets.json` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKey {
    /// A random id, to name the key in `craftbase keys revoke`.
    pub id: String,
    pub kind: KeyKind,
    pub name: String,
    /// The key itself; `None` once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The first characters of the key, enough to recognise it and safe to show.
    pub prefix: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl StoredKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none() && self.key.is_some()
    }
}

/// Random characters after the kind's prefix: 16 bytes (128 bits), URL-safe base64.
const RANDOM_BYTES: usize = 16;
/// Characters of the key shown by `craftbase keys list` for a secret key.
const SHOWN_PREFIX_CHARS: usize = 4;

/// A fresh key of `kind`: the prefix, 128 random bits, then an 8-character checksum of both
/// (so a mistyped key is recognisably not a key), in Supabase's `sb_<kind>_<random>_<check>` shape.
pub fn generate(kind: KeyKind) -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = format!("{}{}", kind.prefix(), b64.encode(bytes));
    let check = b64.encode(Sha256::digest(body.as_bytes()));
    format!("{body}_{}", &check[..8])
}

/// A new stored key of `kind` named `name`, created at `now`.
pub fn new_key(kind: KeyKind, name: &str, now: chrono::DateTime<chrono::Utc>) -> StoredKey {
    let key = generate(kind);
    let prefix = key[..kind.prefix().len() + SHOWN_PREFIX_CHARS].to_owned();
    let mut id = [0u8; 6];
    rand::rng().fill_bytes(&mut id);
    StoredKey {
        id: id.iter().map(|b| format!("{b:02x}")).collect(),
        kind,
        name: name.to_owned(),
        key: Some(key),
        prefix,
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        revoked_at: None,
    }
}

/// Adds a `default` key of each kind that has never had one (a new data directory, or one
/// from before the new keys); true when something was added. A kind whose keys were all
/// revoked stays without keys: that was the operator's choice.
pub fn ensure_defaults(keys: &mut Vec<StoredKey>, now: chrono::DateTime<chrono::Utc>) -> bool {
    let mut added = false;
    for kind in [KeyKind::Publishable, KeyKind::Secret] {
        if !keys.iter().any(|k| k.kind == kind) {
            keys.push(new_key(kind, "default", now));
            added = true;
        }
    }
    added
}

/// The oldest active key of `kind`: the one `status` and `start` print.
pub fn primary(keys: &[StoredKey], kind: KeyKind) -> Option<&str> {
    keys.iter()
        .filter(|k| k.kind == kind && k.is_active())
        .find_map(|k| k.key.as_deref())
}

/// Why a key could not be revoked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RevokeError {
    #[error("no active key has the id or prefix {0:?} (see `craftbase keys list`)")]
    NotFound(String),
    #[error("{0:?} names more than one active key; give more characters: {1}")]
    Ambiguous(String, String),
    #[error("give at least 4 characters of an id, or a key prefix longer than sb_publishable_/sb_secret_")]
    TooShort,
}

/// Revokes the one active key whose id is or starts with `which`, or whose key starts with it;
/// returns its index. Its value is forgotten; the row stays, marked revoked at `now`.
pub fn revoke(
    keys: &mut [StoredKey],
    which: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, RevokeError> {
    let by_key = which.starts_with("sb_");
    let long_enough = if by_key {
        [KeyKind::Publishable, KeyKind::Secret]
            .iter()
            .any(|k| which.len() > k.prefix().len() && which.starts_with(k.prefix()))
    } else {
        which.len() >= 4
    };
    if !long_enough {
        return Err(RevokeError::TooShort);
    }
    let matches: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.is_active())
        .filter(|(_, k)| {
            if by_key {
                k.key.as_deref().is_some_and(|v| v.starts_with(which))
            } else {
                k.id.starts_with(which)
            }
        })
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [] => Err(RevokeError::NotFound(which.to_owned())),
        [one] => {
            let key = &mut keys[*one];
            key.key = None;
            key.revoked_at = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            Ok(*one)
        }
        many => Err(RevokeError::Ambiguous(
            which.to_owned(),
            many.iter()
                .map(|i| keys[*i].id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    #[test]
    fn keys_have_supabase_shape_and_differ() {
        let a = generate(KeyKind::Secret);
        let b = generate(KeyKind::Secret);
        assert_ne!(a, b);
        assert!(a.starts_with("sb_secret_"));
        // prefix + 22 random characters + "_" + 8 check characters.
        assert_eq!(a.len(), "sb_secret_".len() + 22 + 1 + 8);
        let p = generate(KeyKind::Publishable);
        assert!(p.starts_with("sb_publishable_"));
        assert_eq!(p.len(), "sb_publishable_".len() + 22 + 1 + 8);
    }

    #[test]
    fn defaults_are_added_once_per_kind_and_not_after_revocation() {
        let mut keys = Vec::new();
        assert!(ensure_defaults(&mut keys, now()));
        assert_eq!(keys.len(), 2);
        assert!(!ensure_defaults(&mut keys, now()));
        let secret = keys.iter().find(|k| k.kind == KeyKind::Secret).unwrap();
        let id = secret.id.clone();
        revoke(&mut keys, &id, now()).unwrap();
        assert!(!ensure_defaults(&mut keys, now()));
        assert_eq!(primary(&keys, KeyKind::Secret), None);
        assert!(primary(&keys, KeyKind::Publishable).is_some());
    }

    #[test]
    fn revoke_by_id_or_key_prefix_forgets_the_value() {
        let mut keys = Vec::new();
        ensure_defaults(&mut keys, now());
        keys.push(new_key(KeyKind::Secret, "ci", now()));
        let value = keys[2].key.clone().unwrap();
        assert_eq!(revoke(&mut keys, &value[..14], now()), Ok(2));
        assert_eq!(keys[2].key, None);
        assert!(keys[2].revoked_at.is_some());
        assert_eq!(
            revoke(&mut keys, &value[..14], now()),
            Err(RevokeError::NotFound(value[..14].to_owned()))
        );
        assert_eq!(
            revoke(&mut keys, "sb_secret_", now()),
            Err(RevokeError::TooShort)
        );
        assert_eq!(revoke(&mut keys, "ab", now()), Err(RevokeError::TooShort));
        let id = keys[0].id.clone();
        assert_eq!(revoke(&mut keys, &id[..6], now()), Ok(0));
    }
}
