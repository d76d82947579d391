//! `craftbase start` in cluster mode (`--nats-url`): connects this node to NATS and keeps it in
//! the cluster's membership until shutdown. Without a URL nothing here runs.

use std::time::Duration;

use anyhow::Context;
use craftbase_scaleout::{Heartbeat, NatsSettings, Node};

/// How long a node that stopped sending heartbeats stays listed as a member: realtime's, which
/// drops a node's presences when it expires.
pub const MEMBER_TTL: Duration = craftbase_realtime::cluster::MEMBER_TTL;

/// This node's place in the cluster while it runs.
pub struct Joined {
    pub node: Node,
    heartbeat: Heartbeat,
}

/// Connects and announces this node (its API address as its member info); `None` when cluster
/// mode is off. An unreachable NATS stops start-up: nodes that silently run alone would count
/// limits and deliver messages per node.
pub async fn join(settings: &NatsSettings, api_url: &str) -> anyhow::Result<Option<Joined>> {
    let Some(node) = Node::from_settings(settings).await? else {
        return Ok(None);
    };
    let membership = node
        .membership(MEMBER_TTL)
        .await
        .context("cannot open the cluster's membership (is JetStream enabled on NATS?)")?;
    let heartbeat = membership
        .join(api_url)
        .await
        .context("cannot join the cluster's membership")?;
    tracing::info!(node = %node.id(), "cluster mode: joined");
    Ok(Some(Joined { node, heartbeat }))
}

impl Joined {
    /// Leaves the membership at once, so the other nodes need not wait for the heartbeat to
    /// expire.
    pub async fn leave(self) {
        if let Err(e) = self.heartbeat.leave().await {
            tracing::warn!(error = %e, "cannot leave the cluster cleanly; the heartbeat will expire");
        }
    }
}
