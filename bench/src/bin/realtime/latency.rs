//! Collecting the latencies subscribers report, with a deadline.

use std::time::Duration;

use tokio::sync::mpsc;

/// Up to `expected` latencies from `rx`, or what arrived before `limit` passed.
pub async fn collect(
    rx: &mut mpsc::UnboundedReceiver<i64>,
    expected: usize,
    limit: Duration,
) -> Vec<i64> {
    let mut out = Vec::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + limit;
    while out.len() < expected {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(l)) => out.push(l),
            _ => break,
        }
    }
    out
}
