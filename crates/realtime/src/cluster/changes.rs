//! `postgres_changes` across nodes: the leader decodes the slot into the change log; every node
//! reads the log and delivers.

use std::sync::Arc;

use crate::service::Realtime;

/// Starts the decoder campaign and the log reader.
pub fn spawn(rt: &Arc<Realtime>) {
    // Until cluster decoding is built, every node would want the slot: only one streams.
    tokio::spawn(crate::changes::stream::run(rt.clone()));
}
