//! Broadcast and presence across nodes (issue 16, item 3). The hub queues what it delivers from
//! a socket or REST (broadcasts, local presence diffs) on its [`Link`]; one outbound task per
//! node publishes them in order: broadcasts with `node.broadcasts()` (a subject per registry
//! key, so private and public channels of one name stay apart), presence on
//! [`wire::SUBJECT`]. Inbound tasks deliver the other nodes' broadcasts to every member here
//! (`self` and `ack` were the sender's node's business) and keep their presences. Stored
//! broadcasts (`realtime.messages`) never go on the bus: every node reads them from the change
//! stream.
//!
//! Presence state converges: a node that starts, or whose NATS connection comes back, sends its
//! snapshot and asks the others for theirs; a node the membership reports `Left` (its heartbeat
//! expired) has its presences dropped, diffed as leaves to the members here; one that comes back
//! is asked for its state again; a presence message dropped on a full queue is made good by a
//! snapshot. Broadcast stays at most once, as in Supabase.

mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use craftbase_scaleout::{Envelope, MemberChange, Membership, Node, ScaleoutError};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::peer::{self, Link, Outgoing};
use crate::service::Realtime;

/// Items the outbound queue holds before it drops (NATS slow or away).
const QUEUE: usize = 8192;
/// Bytes the outbound queue holds before it drops.
const QUEUE_BYTES: usize = 64 << 20;
/// How often the connection and a pending resync are looked at.
const TICK: Duration = Duration::from_secs(1);
/// Node ids remembered as gone (to ask for their state when they come back).
const MAX_GONE: usize = 1024;

/// Why the bus could not start (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    Scaleout(#[from] ScaleoutError),
    #[error("NATS {op} failed: {source}")]
    Nats {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("realtime is not in cluster mode")]
    NoCluster,
    #[error("the hub is already connected to the cluster")]
    Connected,
}

/// The bus's running tasks.
pub struct Bus {
    tasks: Vec<JoinHandle<()>>,
}

impl Bus {
    /// Stops the tasks (tests: a node that goes silent).
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the bus in the background, retrying until NATS answers.
pub fn spawn(rt: &Arc<Realtime>) {
    let rt = Arc::clone(rt);
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(1);
        loop {
            match start(&rt).await {
                Ok(_running) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster bus not started; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Subscribes, connects the hub to the other nodes and starts the tasks; returns once the
/// subscriptions are registered with NATS (nothing sent after that is missed).
pub async fn start(rt: &Arc<Realtime>) -> Result<Bus, BusError> {
    let cluster = rt.cluster.as_ref().ok_or(BusError::NoCluster)?;
    let node = cluster.node.clone();
    let presence = node
        .client()
        .subscribe(wire::SUBJECT)
        .await
        .map_err(|e| BusError::Nats {
            op: "subscribe",
            source: Box::new(e),
        })?;
    let broadcasts = node.broadcasts().subscribe_all().await?;
    let membership = node.membership(cluster.member_ttl).await?;
    node.client().flush().await.map_err(|e| BusError::Nats {
        op: "flush",
        source: Box::new(e),
    })?;
    let (link, rx) = Link::new(QUEUE, QUEUE_BYTES);
    if !rt.hub.connect_peers(link) {
        return Err(BusError::Connected);
    }
    let link = rt.hub.peers().ok_or(BusError::Connected)?;
    // Sockets may have tracked presences before the link was set: the others get them all.
    link.send(Outgoing::Snapshot { to: None });
    link.send(Outgoing::Sync { to: None });
    tracing::info!(node = %node.id(), "cluster bus: broadcast and presence shared with the other nodes");
    let every = (cluster.member_ttl / 4).max(Duration::from_millis(250));
    Ok(Bus {
        tasks: vec![
            tokio::spawn(outbound(Arc::clone(rt), node.clone(), rx)),
            tokio::spawn(inbound_broadcasts(Arc::clone(rt), broadcasts)),
            tokio::spawn(inbound_presence(
                Arc::clone(rt),
                node.id().to_owned(),
                presence,
            )),
            tokio::spawn(watch(Arc::clone(rt), node, membership, every)),
        ],
    })
}

/// The hub's link; set before any task starts.
fn link(rt: &Realtime) -> &Link {
    rt.hub
        .peers()
        .expect("the bus's tasks start after the link is set")
}

/// Publishes the queue in order.
async fn outbound(rt: Arc<Realtime>, node: Node, mut rx: mpsc::Receiver<Outgoing>) {
    let broadcasts = node.broadcasts();
    let me = node.id().to_owned();
    let client = node.client().clone();
    let publish = |w: wire::Wire| {
        let client = client.clone();
        async move {
            let body = serde_json::to_vec(&w).unwrap_or_default();
            client
                .publish(wire::SUBJECT, body.into())
                .await
                .map_err(|e| e.to_string())
        }
    };
    let mut failures = 0u64;
    while let Some(item) = rx.recv().await {
        let link = link(&rt);
        link.taken(&item);
        let (kind, sent) = match item {
            Outgoing::Broadcast { key, frame } => (
                "broadcast",
                broadcasts
                    .publish(&key, frame)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            Outgoing::Presence { key, joins, leaves } => {
                let diff = wire::Wire::Diff {
                    from: me.clone(),
                    key,
                    joins,
                    leaves,
                };
                ("presence", publish(diff).await)
            }
            Outgoing::Sync { to } => (
                "presence",
                publish(wire::Wire::Sync {
                    from: me.clone(),
                    to,
                })
                .await,
            ),
            Outgoing::Snapshot { to } => {
                let mut sent = Ok(());
                for w in wire::snapshot(&me, to.as_deref(), rt.hub.local_presences()) {
                    sent = publish(w).await;
                    if sent.is_err() {
                        break;
                    }
                }
                ("presence", sent)
            }
        };
        if let Err(e) = sent {
            metrics::counter!(peer::DROPPED, "kind" => kind).increment(1);
            if kind == "presence" {
                link.ask_resync();
            }
            if failures.is_multiple_of(1000) {
                tracing::warn!(kind, error = %e, "not published to the other nodes");
            }
            failures += 1;
        }
    }
}

/// Delivers the other nodes' broadcasts to the members here.
async fn inbound_broadcasts(rt: Arc<Realtime>, stream: impl Stream<Item = Envelope> + Send) {
    let mut stream = std::pin::pin!(stream);
    while let Some(envelope) = stream.next().await {
        if !rt.hub.has_members(&envelope.topic) {
            continue;
        }
        match peer::decode_broadcast(&envelope.payload) {
            Some((payload, raw)) => {
                rt.hub
                    .broadcast_from_peer(&envelope.topic, &payload, raw.as_ref());
            }
            None => {
                tracing::debug!(origin = %envelope.origin, "malformed broadcast from a node dropped")
            }
        }
    }
}

/// Keeps the other nodes' presences and answers their requests for this node's.
async fn inbound_presence(rt: Arc<Realtime>, me: String, mut sub: async_nats::Subscriber) {
    let mut assembly = wire::Assembly::default();
    while let Some(msg) = sub.next().await {
        let Ok(w) = serde_json::from_slice::<wire::Wire>(&msg.payload) else {
            tracing::debug!("malformed presence message from a node dropped");
            continue;
        };
        let from = w.from();
        if from == me || from.is_empty() || from.len() > 64 || w.to().is_some_and(|to| to != me) {
            continue;
        }
        match w {
            wire::Wire::Diff {
                from,
                key,
                joins,
                leaves,
            } => rt.hub.presence_from_peer(&from, &key, joins, &leaves),
            wire::Wire::Sync { from, .. } => link(&rt).send(Outgoing::Snapshot { to: Some(from) }),
            wire::Wire::Begin { from, .. } => assembly.begin(&from),
            wire::Wire::Part {
                from,
                key,
                presences,
                ..
            } => assembly.part(&from, key, presences),
            wire::Wire::End { from, .. } => {
                if let Some(state) = assembly.end(&from) {
                    rt.hub.replace_peer(&from, state);
                }
            }
        }
    }
}

/// Follows membership (a dead node's presences leave; one back is asked for its state) and
/// the NATS connection (back after an outage: snapshot and ask everyone), and sends a snapshot
/// when a presence message was dropped.
async fn watch(rt: Arc<Realtime>, node: Node, membership: Membership, every: Duration) {
    let mut changes = membership.changes(every);
    let mut tick = tokio::time::interval(TICK);
    let mut connected = true;
    let mut gone: HashSet<String> = HashSet::new();
    let link = link(&rt);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                None => return,
                Some(MemberChange::Left(id)) if id != node.id() => {
                    if gone.len() >= MAX_GONE {
                        gone.clear();
                    }
                    gone.insert(id.clone());
                    rt.hub.forget_peer(&id);
                }
                Some(MemberChange::Joined(id)) if gone.remove(&id) => {
                    link.send(Outgoing::Sync { to: Some(id) });
                }
                Some(_) => {}
            },
            _ = tick.tick() => {
                let now = node.client().connection_state() == async_nats::connection::State::Connected;
                if now && !connected {
                    tracing::info!("NATS back: presence exchanged with the other nodes again");
                    link.send(Outgoing::Snapshot { to: None });
                    link.send(Outgoing::Sync { to: None });
                } else if link.take_resync() {
                    link.send(Outgoing::Snapshot { to: None });
                }
                connected = now;
            }
        }
    }
}
