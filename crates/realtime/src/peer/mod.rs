//! What the hub shares with the other nodes in cluster mode, without knowing how it travels
//! (`cluster::bus` carries it over NATS): the [`Link`] (a bounded queue of what this node
//! publishes, and the presences the other nodes have), the [`Presence`] entries both sides
//! hold, and the frame a broadcast crosses in. With no cluster the hub has no link and none of
//! this runs.

mod remote;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub use remote::{Remote, TopicDiff, MAX_PEERS, MAX_PER_PEER, MAX_PER_PEER_TOPIC};

/// Broadcasts and presence messages this node could not hand to the bus (its queue was full),
/// by `kind`.
pub const DROPPED: &str = "craftbase_realtime_cluster_dropped_total";

/// One presence entry: a socket's tracked state under `key` (several sockets may share a key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub key: String,
    pub phx_ref: String,
    pub meta: Map<String, Value>,
}

/// What this node publishes to the others, in the order it happened.
#[derive(Debug)]
pub enum Outgoing {
    /// A broadcast delivered here, for the members of `key` (a registry key: private channels
    /// apart) on the other nodes.
    Broadcast { key: String, frame: Bytes },
    /// Presences of `key` that joined and left here (leaves by `phx_ref`).
    Presence {
        key: String,
        joins: Vec<Presence>,
        leaves: Vec<String>,
    },
    /// Ask `to` (every node when `None`) for its presences.
    Sync { to: Option<String> },
    /// Send every local presence to `to` (every node when `None`), which replaces what it had.
    Snapshot { to: Option<String> },
}

impl Outgoing {
    /// Bytes the item holds, for the queue's byte bound.
    fn weight(&self) -> usize {
        match self {
            Outgoing::Broadcast { key, frame } => key.len() + frame.len(),
            Outgoing::Presence { key, joins, leaves } => {
                key.len()
                    + joins.iter().map(presence_weight).sum::<usize>()
                    + leaves.iter().map(String::len).sum::<usize>()
            }
            Outgoing::Sync { .. } | Outgoing::Snapshot { .. } => 64,
        }
    }
}

fn presence_weight(p: &Presence) -> usize {
    // The meta's size as JSON, cheaply over-estimated from its top level.
    p.key.len()
        + p.phx_ref.len()
        + p.meta
            .iter()
            .map(|(k, v)| k.len() + crate::protocol::json_len(v))
            .sum::<usize>()
}

/// This node's link to the others: set once on the hub by the cluster's bus.
pub struct Link {
    tx: mpsc::Sender<Outgoing>,
    queued: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
    /// A presence message was dropped: the others must get a full snapshot again.
    resync: AtomicBool,
    remote: Mutex<Remote>,
}

impl Link {
    /// A link whose queue holds at most `capacity` items and `max_bytes`; the receiver is the
    /// bus's one outbound task (one per node, so a node's messages stay in order).
    pub fn new(capacity: usize, max_bytes: usize) -> (Link, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity);
        let link = Link {
            tx,
            queued: AtomicUsize::new(0),
            max_bytes,
            dropped: AtomicU64::new(0),
            resync: AtomicBool::new(false),
            remote: Mutex::new(Remote::default()),
        };
        (link, rx)
    }

    /// Queues `item` without waiting: a full queue (NATS slow or away) drops it, counted and
    /// logged, and never holds up a socket. A dropped presence message asks for a resync.
    pub fn send(&self, item: Outgoing) {
        let weight = item.weight();
        let before = self.queued.fetch_add(weight, Ordering::Relaxed);
        let refused = if before.saturating_add(weight) > self.max_bytes {
            Some(item)
        } else {
            self.tx.try_send(item).err().map(|e| match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            })
        };
        let Some(item) = refused else {
            return;
        };
        self.queued.fetch_sub(weight, Ordering::Relaxed);
        let kind = match item {
            Outgoing::Broadcast { .. } => "broadcast",
            _ => {
                self.resync.store(true, Ordering::Relaxed);
                "presence"
            }
        };
        metrics::counter!(DROPPED, "kind" => kind).increment(1);
        let n = self.dropped.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(
                kind,
                dropped = n + 1,
                "cluster bus queue full: message not sent to the other nodes"
            );
        }
    }

    /// The outbound task took `item` off the queue.
    pub fn taken(&self, item: &Outgoing) {
        self.queued.fetch_sub(item.weight(), Ordering::Relaxed);
    }

    /// A presence message was lost on the way: the others need a snapshot.
    pub fn ask_resync(&self) {
        self.resync.store(true, Ordering::Relaxed);
    }

    /// Whether a presence message was dropped since the last call (a snapshot is due).
    pub fn take_resync(&self) -> bool {
        self.resync.swap(false, Ordering::Relaxed)
    }

    /// How many messages were dropped in all.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The other nodes' presences.
    pub fn remote(&self) -> MutexGuard<'_, Remote> {
        crate::mutex::lock(&self.remote)
    }
}

/// A broadcast as it crosses: a flag byte (1 when raw bytes follow), the JSON payload's length
/// (4 bytes, big-endian), the JSON, then the raw bytes if any.
pub fn encode_broadcast(payload: &Value, raw: Option<&Arc<[u8]>>) -> Bytes {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    let raw_len = raw.map_or(0, |r| r.len());
    let mut frame = Vec::with_capacity(5 + json.len() + raw_len);
    frame.push(u8::from(raw.is_some()));
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(&json);
    if let Some(r) = raw {
        frame.extend_from_slice(r);
    }
    Bytes::from(frame)
}

/// The payload and raw bytes of a frame from [`encode_broadcast`]; `None` if it is malformed.
pub fn decode_broadcast(frame: &[u8]) -> Option<(Value, Option<Arc<[u8]>>)> {
    let (&flag, rest) = frame.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let json = rest.get(4..4usize.checked_add(len)?)?;
    let payload = serde_json::from_slice(json).ok()?;
    let tail = &rest[4 + len..];
    let raw = match flag {
        0 if tail.is_empty() => None,
        1 => Some(Arc::from(tail)),
        _ => return None,
    };
    Some((payload, raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broadcast_frames_round_trip() {
        let payload = json!({"type": "broadcast", "event": "e", "payload": {"a": [1, "ü"]}});
        let frame = encode_broadcast(&payload, None);
        assert_eq!(decode_broadcast(&frame), Some((payload.clone(), None)));
        let raw: Arc<[u8]> = Arc::from(&[0u8, 1, 2, 255][..]);
        let frame = encode_broadcast(&payload, Some(&raw));
        assert_eq!(decode_broadcast(&frame), Some((payload, Some(raw))));
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x00\x00\x00\x09{}",
            b"\x02\x00\x00\x00\x02{}",
        ] {
            assert_eq!(decode_broadcast(bad), None);
        }
        assert_eq!(decode_broadcast(b"\x00\x00\x00\x00\x02{}x"), None);
    }

    #[test]
    fn a_full_queue_drops_and_asks_for_a_resync() {
        let (link, mut rx) = Link::new(1, 1 << 20);
        let p = |key: &str| Outgoing::Presence {
            key: key.into(),
            joins: vec![],
            leaves: vec!["r".into()],
        };
        link.send(p("a"));
        assert!(!link.take_resync());
        link.send(p("b"));
        assert_eq!(link.dropped(), 1);
        assert!(link.take_resync());
        assert!(!link.take_resync());
        let first = rx.try_recv().unwrap();
        link.taken(&first);
        assert_eq!(link.queued.load(Ordering::Relaxed), 0);
        let (small, _rx) = Link::new(10, 10);
        small.send(Outgoing::Broadcast {
            key: "k".into(),
            frame: Bytes::from(vec![0; 64]),
        });
        assert_eq!(small.dropped(), 1);
        assert!(!small.take_resync());
    }
}
