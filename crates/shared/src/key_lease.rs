//! A websocket's hold on the API key it connected with: the edge hands one to realtime with the
//! upgrade, and marks it revoked when the key is; realtime closes the socket then. Without it a
//! socket opened with a secret key would keep service_role's view after the key was revoked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by every socket of one key; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct KeyLease(Arc<AtomicBool>);

impl KeyLease {
    pub fn new() -> KeyLease {
        KeyLease::default()
    }

    /// The key was revoked: sockets holding this lease must close.
    pub fn revoke(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn revoked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
