//! This process's node in a cluster (`--nats-url`), as the service's state holds it: its NATS
//! connection and what the cluster tasks (`cluster`) share with the rest of realtime. At the
//! bottom, so that `service` can hold it while `cluster` builds on `service`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use craftbase_scaleout::Node;

/// How long a node that stopped sending heartbeats stays a member: the same on every node
/// (the membership bucket keeps keys this long), so craftbase joins with it too.
pub const MEMBER_TTL: Duration = Duration::from_secs(10);

/// This process's handle on the cluster, held by `Realtime`.
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
