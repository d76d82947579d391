//! Cluster mode (issue 16): several craftbase nodes on one database, coordinated through NATS
//! (`craftbase-scaleout`). Off unless the process was given a NATS node; then:
//!
//! - `changes`: one node at a time (the holder of the `realtime_slot` lease) decodes the slot
//!   and publishes each batch of committed transactions to the JetStream change log; every node
//!   reads the log and delivers to its own subscribers, each checked against RLS as before;
//! - `bus`: broadcasts and presence reach the other nodes' members;
//! - `tenant`: limits counted across every node.

pub mod bus;
pub mod changes;
pub mod log;
pub mod tenant;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use craftbase_scaleout::Node;

use crate::service::Realtime;

/// How long a node that stopped sending heartbeats stays a member: the same on every node
/// (the membership bucket keeps keys this long), so craftbase joins with it too.
pub const MEMBER_TTL: Duration = Duration::from_secs(10);

/// This process's handle on the cluster, held by [`Realtime`].
pub struct Cluster {
    pub node: Node,
    /// Whether this node streams the slot now (holds the decoder lease).
    pub(crate) decoding: AtomicBool,
    /// The membership's ttl: a node silent this long is gone and its presences leave.
    pub member_ttl: Duration,
}

impl Cluster {
    pub fn new(node: Node) -> Cluster {
        Cluster {
            node,
            decoding: AtomicBool::new(false),
            member_ttl: MEMBER_TTL,
        }
    }

    /// The same with another membership ttl (tests; every node must use the same).
    pub fn with_member_ttl(node: Node, member_ttl: Duration) -> Cluster {
        Cluster {
            member_ttl,
            ..Cluster::new(node)
        }
    }

    /// Whether this node decodes the replication slot for the cluster now.
    pub fn is_decoding(&self) -> bool {
        self.decoding.load(Ordering::Relaxed)
    }
}

/// Starts the cluster's tasks for `rt` (which has a cluster): the decoder campaign, the change
/// log reader, the broadcast and presence bus.
pub fn spawn(rt: &Arc<Realtime>) {
    changes::spawn(rt);
    bus::spawn(rt);
}
