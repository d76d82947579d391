//! Follows the signing keys in `secrets.json` for a running craftbase, as the API-key ring
//! does (every two seconds, and at once on SIGHUP): `craftbase signing-keys new|promote|revoke`
//! takes effect without a restart, for REST, auth and realtime together (they share one
//! verifier).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use craftbase_shared::JwtVerifier;
use serde::Deserialize;

use super::{key_set, JwtAlgorithm, StoredSigningKey};
use crate::api_keys::ring::WATCH_INTERVAL;

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
            seen: Mutex::new(identity(&path)),
            path,
            configured,
            algorithm,
            verifier,
        })
    }

    /// Reads the keys again when the file changed (or always, when `force`); true when read.
    pub fn reload(&self, force: bool) -> anyhow::Result<bool> {
        let now_seen = identity(&self.path);
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

    /// Watches the file for the life of the process: every [`WATCH_INTERVAL`], and on SIGHUP.
    pub fn watch(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            loop {
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async { match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    } } => true,
                };
                if let Err(e) = self.reload(force) {
                    tracing::warn!(error = %e, "cannot read the signing keys; keeping the ones loaded");
                }
            }
        });
    }
}

fn identity(path: &std::path::Path) -> Option<(u64, u64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.ino(),
        meta.len(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    ))
}
