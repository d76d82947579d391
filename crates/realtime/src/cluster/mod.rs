//! Cluster mode (issue 16): several craftbase nodes on one database, coordinated through NATS
//! (`craftbase-scaleout`). Off unless the process was given a NATS node; then:
//!
//! - `changes`: one node at a time (the holder of the `realtime_slot` lease) decodes the slot
//!   and publishes each batch of committed transactions to the JetStream change log; every node
//!   reads the log and delivers to its own subscribers, each checked against RLS as before;
//! - `bus`: broadcasts and presence reach the other nodes' members;
//! - `tenant` (at the bottom, `crate::tenant`): limits counted across every node.

pub mod bus;
pub mod changes;
pub mod log;

pub use crate::node::{Cluster, MEMBER_TTL};

use std::sync::Arc;

use crate::service::Realtime;

/// Starts the cluster's tasks for `rt` (which has a cluster): the decoder campaign, the change
/// log reader, the broadcast and presence bus.
pub fn spawn(rt: &Arc<Realtime>) {
    changes::spawn(rt);
    bus::spawn(rt);
}
