//! Which nodes are alive: each node writes its key in a KV bucket whose entries expire `ttl`
//! after their last write, every third of `ttl`; a node that dies stops writing and drops out
//! of [`Membership::members`] within `ttl`. A node that stops cleanly deletes its key at once.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::{boxed, ScaleoutError};

/// Joins and leaves as a watcher sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Joined(String),
    Left(String),
}

/// The registry, as seen from one node.
#[derive(Clone)]
pub struct Membership {
    store: kv::Store,
    node: String,
    ttl: Duration,
}

impl Membership {
    pub(crate) fn new(store: kv::Store, node: String, ttl: Duration) -> Membership {
        Membership { store, node, ttl }
    }

    /// Announces this node (its key's value: `info`, e.g. its API address), and keeps it
    /// announced until the returned [`Heartbeat`] is stopped or dropped.
    pub async fn join(&self, info: &str) -> Result<Heartbeat, ScaleoutError> {
        let value = Bytes::from(info.to_owned());
        self.beat(&value).await?;
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.ttl / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = me.beat(&value).await {
                    tracing::warn!(node = %me.node, error = %e, "heartbeat not written");
                }
            }
        });
        Ok(Heartbeat {
            membership: self.clone(),
            task,
        })
    }

    async fn beat(&self, value: &Bytes) -> Result<(), ScaleoutError> {
        self.store
            .put(&self.node, value.clone())
            .await
            .map(|_| ())
            .map_err(|e| ScaleoutError::nats("heartbeat")(boxed(e)))
    }

    /// The nodes alive now (their key written within `ttl`), this one included once joined.
    pub async fn members(&self) -> Result<BTreeSet<String>, ScaleoutError> {
        let mut keys = self
            .store
            .keys()
            .await
            .map_err(|e| ScaleoutError::nats("list members")(boxed(e)))?;
        let mut members = BTreeSet::new();
        while let Some(key) = keys.next().await {
            members.insert(key.map_err(|e| ScaleoutError::nats("list members")(boxed(e)))?);
        }
        Ok(members)
    }

    /// What a member announced in [`Membership::join`].
    pub async fn info(&self, node: &str) -> Result<Option<String>, ScaleoutError> {
        let value = self
            .store
            .get(node)
            .await
            .map_err(|e| ScaleoutError::nats("read member")(boxed(e)))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Joins and leaves, found by listing the members every `every` (NATS 2.9 expires keys
    /// silently, so a dead node's leave can only be seen as its key's absence). The first
    /// message lists every member as joined. Ends when the receiver is dropped.
    pub fn changes(&self, every: Duration) -> mpsc::Receiver<MemberChange> {
        let (tx, rx) = mpsc::channel(64);
        let me = self.clone();
        tokio::spawn(async move {
            let mut known = BTreeSet::new();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = match me.members().await {
                    Ok(now) => now,
                    // Unknown is not gone: keep the last list until NATS answers again.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list cluster members");
                        continue;
                    }
                };
                let left = known.difference(&now).cloned().map(MemberChange::Left);
                let joined = now.difference(&known).cloned().map(MemberChange::Joined);
                for change in left.chain(joined).collect::<Vec<_>>() {
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
                known = now;
            }
        });
        rx
    }
}

/// Keeps this node in the registry; stopping it removes the node at once, dropping it lets the
/// key expire.
pub struct Heartbeat {
    membership: Membership,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Leaves the cluster cleanly.
    pub async fn leave(self) -> Result<(), ScaleoutError> {
        self.task.abort();
        self.membership
            .store
            .delete(&self.membership.node)
            .await
            .map_err(|e| ScaleoutError::nats("leave")(boxed(e)))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
