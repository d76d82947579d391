//! The other nodes' presences, by topic key and node, as the bus last heard them: applied from
//! their diffs, replaced by their snapshots, dropped when a node dies. Each change returns
//! what actually changed, for the hub to diff to its local members. Bounded per node and topic,
//! per node, and in nodes.

use std::collections::{HashMap, HashSet};

use super::Presence;

/// At most this many presences of one node on one topic are kept.
pub const MAX_PER_PEER_TOPIC: usize = 10_000;
/// At most this many presences of one node in all.
pub const MAX_PER_PEER: usize = 100_000;
/// At most this many other nodes' presences are kept.
pub const MAX_PEERS: usize = 256;

/// What changed on one topic: presences that joined and that left.
#[derive(Debug, Default, PartialEq)]
pub struct TopicDiff {
    pub key: String,
    pub joins: Vec<Presence>,
    pub leaves: Vec<Presence>,
}

/// Presences of one node on one topic, by `phx_ref`.
type Entries = HashMap<String, Presence>;

/// Every other node's presences.
#[derive(Default)]
pub struct Remote {
    /// topic key → node → presences.
    topics: HashMap<String, HashMap<String, Entries>>,
    /// node → how many presences it has in all.
    counts: HashMap<String, usize>,
}

impl Remote {
    /// The presences other nodes have on `key`.
    pub fn on(&self, key: &str) -> impl Iterator<Item = &Presence> {
        self.topics
            .get(key)
            .into_iter()
            .flat_map(|nodes| nodes.values())
            .flat_map(|entries| entries.values())
    }

    /// Applies a diff `node` sent for `key`; returns what is new and what was there and left.
    pub fn apply(
        &mut self,
        node: &str,
        key: &str,
        joins: Vec<Presence>,
        leaves: &[String],
    ) -> TopicDiff {
        let mut diff = TopicDiff {
            key: key.to_owned(),
            ..TopicDiff::default()
        };
        if !self.counts.contains_key(node) && self.counts.len() >= MAX_PEERS {
            tracing::warn!(node, "too many cluster nodes with presences; ignored");
            return diff;
        }
        let nodes = self.topics.entry(key.to_owned()).or_default();
        let entries = nodes.entry(node.to_owned()).or_default();
        let count = self.counts.entry(node.to_owned()).or_default();
        for phx_ref in leaves {
            if let Some(p) = entries.remove(phx_ref) {
                *count -= 1;
                diff.leaves.push(p);
            }
        }
        for p in joins {
            let full = entries.len() >= MAX_PER_PEER_TOPIC || *count >= MAX_PER_PEER;
            match entries.get_mut(&p.phx_ref) {
                Some(known) if *known == p => {}
                Some(known) => {
                    *known = p.clone();
                    diff.joins.push(p);
                }
                None if full => {
                    tracing::warn!(
                        node,
                        topic = key,
                        "too many presences from one node; ignored"
                    );
                }
                None => {
                    entries.insert(p.phx_ref.clone(), p.clone());
                    *count += 1;
                    diff.joins.push(p);
                }
            }
        }
        self.tidy(node, key);
        diff
    }

    /// Replaces everything `node` had with `state` (key → presences); returns each topic's
    /// changes.
    pub fn replace(&mut self, node: &str, state: HashMap<String, Vec<Presence>>) -> Vec<TopicDiff> {
        let mut keys: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, nodes)| nodes.contains_key(node))
            .map(|(k, _)| k.clone())
            .collect();
        keys.extend(state.keys().cloned());
        keys.sort();
        keys.dedup();
        let mut state = state;
        let mut diffs = Vec::new();
        for key in keys {
            let new = state.remove(&key).unwrap_or_default();
            let kept: HashSet<&str> = new.iter().map(|p| p.phx_ref.as_str()).collect();
            let old: Vec<String> = self
                .topics
                .get(&key)
                .and_then(|nodes| nodes.get(node))
                .map(|e| {
                    e.keys()
                        .filter(|r| !kept.contains(r.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let diff = self.apply(node, &key, new, &old);
            if !diff.joins.is_empty() || !diff.leaves.is_empty() {
                diffs.push(diff);
            }
        }
        diffs
    }

    /// Forgets `node` (it died); returns the presences that left, by topic.
    pub fn forget(&mut self, node: &str) -> Vec<TopicDiff> {
        self.replace(node, HashMap::new())
    }

    /// Drops empty entries so that a node's departures leave nothing behind.
    fn tidy(&mut self, node: &str, key: &str) {
        if let Some(nodes) = self.topics.get_mut(key) {
            if nodes.get(node).is_some_and(HashMap::is_empty) {
                nodes.remove(node);
            }
            if nodes.is_empty() {
                self.topics.remove(key);
            }
        }
        if self.counts.get(node) == Some(&0) {
            self.counts.remove(node);
        }
    }

    /// How many presences other nodes have in all.
    pub fn len(&self) -> usize {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn p(key: &str, r: &str) -> Presence {
        Presence {
            key: key.into(),
            phx_ref: r.into(),
            meta: Map::new(),
        }
    }

    #[test]
    fn diffs_apply_once_and_snapshots_replace() {
        let mut remote = Remote::default();
        let d = remote.apply("b", "t", vec![p("bob", "1")], &[]);
        assert_eq!(d.joins, vec![p("bob", "1")]);
        // The same join again (a snapshot after a diff) changes nothing.
        assert!(remote
            .apply("b", "t", vec![p("bob", "1")], &[])
            .joins
            .is_empty());
        assert!(remote
            .apply("b", "t", vec![], &["nope".into()])
            .leaves
            .is_empty());
        remote.apply("c", "t", vec![p("carol", "2")], &[]);
        assert_eq!(remote.on("t").count(), 2);

        let mut state = HashMap::new();
        state.insert("u".to_owned(), vec![p("bob", "3")]);
        let diffs = remote.replace("b", state);
        assert_eq!(diffs.len(), 2);
        assert_eq!(
            (diffs[0].key.as_str(), diffs[0].leaves.clone()),
            ("t", vec![p("bob", "1")])
        );
        assert_eq!(
            (diffs[1].key.as_str(), diffs[1].joins.clone()),
            ("u", vec![p("bob", "3")])
        );

        // A snapshot's topic that other nodes already have.
        let mut state = HashMap::new();
        state.insert("t".to_owned(), vec![p("dave", "4")]);
        let diffs = remote.replace("d", state);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].joins, vec![p("dave", "4")]);
        remote.forget("d");

        let gone = remote.forget("c");
        assert_eq!(
            gone,
            vec![TopicDiff {
                key: "t".into(),
                joins: vec![],
                leaves: vec![p("carol", "2")]
            }]
        );
        assert_eq!(remote.len(), 1);
        remote.forget("b");
        assert!(remote.is_empty() && remote.topics.is_empty());
    }

    #[test]
    fn presences_are_bounded_per_node_and_topic() {
        let mut remote = Remote::default();
        let many: Vec<Presence> = (0..MAX_PER_PEER_TOPIC + 5)
            .map(|i| p("k", &i.to_string()))
            .collect();
        let d = remote.apply("b", "t", many, &[]);
        assert_eq!(d.joins.len(), MAX_PER_PEER_TOPIC);
        assert_eq!(remote.len(), MAX_PER_PEER_TOPIC);
        for i in 0..MAX_PEERS {
            remote.apply(&format!("n{i}"), "t", vec![p("k", "x")], &[]);
        }
        // b and MAX_PEERS - 1 others fit; the rest are refused.
        assert_eq!(remote.counts.len(), MAX_PEERS);
    }
}
