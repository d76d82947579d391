//! Follows the signing keys in `secrets.json` for a running craftbase (through
//! `crate::secrets_watch`, with the API-key ring): `craftbase signing-keys new|promote|revoke`
//! takes effect without a restart, for REST, auth and realtime together (they share one
//! verifier).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use craftbase_shared::JwtVerifier;
use serde::Deserialize;

use super::{key_set, JwtAlgorithm, StoredSigningKey};

/// The part of `secrets.json` read here.
#[derive(Deserialize)]
struct KeysFile {
    #[serde(default)]
    signing_keys: Vec<StoredSigningKey>,
}

/// What a reload needs.
pub struct SigningKeyWatch {
    path: PathBuf,
    configured: Option<String>,
    algorithm: JwtAlgorithm,
    verifier: Arc<JwtVerifier>,
    /// The file's identity when it was last read: (inode, size, modified in ns).
    seen: Mutex<Option<(u64, u64, i64)>>,
}

impl SigningKeyWatch {
    /// Installs the keys of `stored` (read from `path`) and `configured` (`GOTRUE_JWT_KEYS`) in
    /// `verifier`.
    pub fn new(
        path: PathBuf,
        configured: Option<String>,
        algorithm: JwtAlgorithm,
        verifier: Arc<JwtVerifier>,
        stored: &[StoredSigningKey],
    ) -> anyhow::Result<Self> {
        verifier.set_keys(key_set(configured.as_deref(), stored, algorithm)?);
        Ok(Self {
            seen: Mutex::new(crate::secrets_watch::file_identity(&path)),
            path,
            configured,
            algorithm,
            verifier,
        })
    }

    /// Reads the keys again when the file changed (or always, when `force`); true when read.
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let now_seen = crate::secrets_watch::file_identity(&self.path);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !force && now_seen == *seen {
            return Ok(false);
        }
        let file: KeysFile = serde_json::from_slice(&std::fs::read(&self.path)?)?;
        let set = key_set(
            self.configured.as_deref(),
            &file.signing_keys,
            self.algorithm,
        )?;
        let signing = set.signer().map(|s| s.kid().to_owned());
        self.verifier.set_keys(set);
        *seen = now_seen;
        tracing::info!(signing_kid = ?signing, "JWT signing keys reloaded");
        Ok(true)
    }
}

impl crate::secrets_watch::Reload for SigningKeyWatch {
    fn what(&self) -> &'static str {
        "signing keys"
    }

    fn reload(&self, force: bool) -> anyhow::Result<bool> {
        SigningKeyWatch::reload(self, force)
    }
}
