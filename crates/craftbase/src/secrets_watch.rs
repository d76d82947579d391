//! Follows `secrets.json` for a running craftbase: every [`WATCH_INTERVAL`], and at once on
//! SIGHUP, each part kept in memory (the API-key ring, the JWT signing keys) reads the file again
//! when it changed, so `craftbase keys` and `craftbase signing-keys` take effect without a restart.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often `secrets.json` is checked for a change.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// A part of `secrets.json` held in memory.
pub trait Reload: Send + Sync + 'static {
    /// What it holds, for the log.
    fn what(&self) -> &'static str;
    /// Reads the file again when it changed (or always, when `force`); true when read.
    fn reload(&self, force: bool) -> anyhow::Result<bool>;
}

/// The file's identity when read: (inode, size, modified in ns). A write through a rename
/// changes the inode, so an edit within one mtime tick is still seen.
pub fn file_identity(path: &Path) -> Option<(u64, u64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.ino(),
        meta.len(),
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    ))
}

/// One task for the life of the process; a part that cannot read the file keeps what it has.
pub fn watch(parts: Vec<Arc<dyn Reload>>) {
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
            for part in &parts {
                if let Err(e) = part.reload(force) {
                    tracing::warn!(error = %e, what = part.what(), "cannot read secrets.json; keeping what is loaded");
                }
            }
        }
    });
}
