//! Waiting for the signals that ask a service to stop.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a stop was asked for, so that work failing because the database is going away
/// (it is stopped after the API) can end quietly instead of reporting a failure.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler only fails outside a runtime");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; shutting down"),
        _ = term.recv() => tracing::info!("terminated; shutting down"),
    }
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Whether the process was asked to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
