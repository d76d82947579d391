//! Presence between nodes on one core NATS subject, `craftbase.presence`, so that each node's
//! messages reach the others in the order it sent them: diffs, requests for a node's state, and
//! snapshots (a node's whole state in parts between a begin and an end, which the receiver
//! applies at once, replacing what it had of that node).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::peer::{Presence, MAX_PEERS, MAX_PER_PEER};

/// The one subject every node publishes presence on and reads it from.
pub const SUBJECT: &str = "craftbase.presence";

/// A snapshot part holds presences up to about this many bytes: well under NATS's default
/// maximum message (1 MB), while one presence is at most the payload limit (256 kB).
const PART_BYTES: usize = 256 * 1024;

/// A presence message between nodes. `from` is the sender's node id; `to`, when set, is the
/// only node that acts on it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// Presences of topic `key` that joined and left on `from` (leaves by `phx_ref`).
    Diff {
        from: String,
        key: String,
        joins: Vec<Presence>,
        leaves: Vec<String>,
    },
    /// `from` asks for the state of `to` (of every node when `None`).
    Sync { from: String, to: Option<String> },
    /// A snapshot of `from`'s presences starts.
    Begin { from: String, to: Option<String> },
    /// Some of `from`'s presences on topic `key`.
    Part {
        from: String,
        to: Option<String>,
        key: String,
        presences: Vec<Presence>,
    },
    /// The snapshot is complete: what `from` had and is not in it has left.
    End { from: String, to: Option<String> },
}

impl Wire {
    pub fn from(&self) -> &str {
        match self {
            Wire::Diff { from, .. }
            | Wire::Sync { from, .. }
            | Wire::Begin { from, .. }
            | Wire::Part { from, .. }
            | Wire::End { from, .. } => from,
        }
    }

    pub fn to(&self) -> Option<&str> {
        match self {
            Wire::Diff { .. } => None,
            Wire::Sync { to, .. }
            | Wire::Begin { to, .. }
            | Wire::Part { to, .. }
            | Wire::End { to, .. } => to.as_deref(),
        }
    }
}

/// The messages of a snapshot of `presences` (topic → presences) from `from` to `to`.
pub fn snapshot(
    from: &str,
    to: Option<&str>,
    presences: Vec<(String, Vec<Presence>)>,
) -> Vec<Wire> {
    let (from, to) = (from.to_owned(), to.map(str::to_owned));
    let mut out = vec![Wire::Begin {
        from: from.clone(),
        to: to.clone(),
    }];
    for (key, ps) in presences {
        let mut part = Vec::new();
        let mut bytes = 0;
        for p in ps {
            let size = serde_json::to_vec(&p).map_or(0, |v| v.len());
            if !part.is_empty() && bytes + size > PART_BYTES {
                out.push(Wire::Part {
                    from: from.clone(),
                    to: to.clone(),
                    key: key.clone(),
                    presences: std::mem::take(&mut part),
                });
                bytes = 0;
            }
            bytes += size;
            part.push(p);
        }
        if !part.is_empty() {
            out.push(Wire::Part {
                from: from.clone(),
                to: to.clone(),
                key,
                presences: part,
            });
        }
    }
    out.push(Wire::End { from, to });
    out
}

/// Snapshots being received, by sending node; bounded in nodes and in presences per node.
#[derive(Default)]
pub struct Assembly {
    pending: HashMap<String, (HashMap<String, Vec<Presence>>, usize)>,
}

impl Assembly {
    /// A snapshot from `node` starts (an unfinished earlier one is dropped).
    pub fn begin(&mut self, node: &str) {
        if self.pending.len() >= MAX_PEERS && !self.pending.contains_key(node) {
            tracing::warn!(node, "too many presence snapshots at once; ignored");
            return;
        }
        self.pending.insert(node.to_owned(), Default::default());
    }

    /// Part of `node`'s snapshot; ignored without a begin, bounded per node.
    pub fn part(&mut self, node: &str, key: String, presences: Vec<Presence>) {
        let Some((state, count)) = self.pending.get_mut(node) else {
            return;
        };
        let room = MAX_PER_PEER.saturating_sub(*count);
        if presences.len() > room {
            tracing::warn!(node, "presence snapshot over the per-node bound; truncated");
        }
        let taken: Vec<Presence> = presences.into_iter().take(room).collect();
        *count += taken.len();
        state.entry(key).or_default().extend(taken);
    }

    /// `node`'s complete snapshot, if one was begun.
    pub fn end(&mut self, node: &str) -> Option<HashMap<String, Vec<Presence>>> {
        self.pending.remove(node).map(|(state, _)| state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn p(key: &str, r: &str, size: usize) -> Presence {
        let mut meta = Map::new();
        meta.insert("pad".into(), json!("x".repeat(size)));
        Presence {
            key: key.into(),
            phx_ref: r.into(),
            meta,
        }
    }

    #[test]
    fn snapshots_split_into_parts_and_assemble() {
        let big: Vec<Presence> = (0..5).map(|i| p("k", &i.to_string(), 100_000)).collect();
        let msgs = snapshot(
            "a",
            Some("b"),
            vec![
                ("t".into(), big.clone()),
                ("u".into(), vec![p("k", "x", 1)]),
            ],
        );
        assert!(matches!(msgs.first(), Some(Wire::Begin { .. })));
        assert!(matches!(msgs.last(), Some(Wire::End { .. })));
        assert!(msgs.len() >= 5, "{} messages", msgs.len());
        for m in &msgs {
            assert!(serde_json::to_vec(m).unwrap().len() < 1_000_000);
            assert_eq!((m.from(), m.to()), ("a", Some("b")));
        }
        let mut assembly = Assembly::default();
        for m in msgs {
            let text = serde_json::to_vec(&m).unwrap();
            match serde_json::from_slice(&text).unwrap() {
                Wire::Begin { from, .. } => assembly.begin(&from),
                Wire::Part {
                    from,
                    key,
                    presences,
                    ..
                } => assembly.part(&from, key, presences),
                Wire::End { from, .. } => {
                    let state = assembly.end(&from).unwrap();
                    assert_eq!(state["t"], big);
                    assert_eq!(state["u"].len(), 1);
                }
                other => panic!("{other:?}"),
            }
        }
        // A part or an end without a begin is ignored.
        assembly.part("z", "t".into(), vec![p("k", "1", 1)]);
        assert_eq!(assembly.end("z"), None);
    }
}
