//! Who is listening on which topic: the members (and presences) of each topic and the outlets
//! they are reached by, for broadcast and presence. It knows nothing of tables, catalogs or
//! filters (`postgres_changes` subscriptions are `changes::registry`'s). Locks here are never
//! held across an await, and never two at once.
//!
//! In cluster mode the hub also has a [`Link`] to the other nodes: what it delivers from a
//! socket or REST is queued for them too, what they send is delivered here without going back,
//! and presence state is the union of every node's. Without a cluster the link is unset and
//! costs one atomic load where it is checked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::identity::Identity;
use crate::memory::shrink;
use crate::mutex::lock;
use crate::outlet::Outlet;
use crate::peer::{self, Link, Outgoing, Presence, TopicDiff};
use crate::protocol::Message;
use serde_json::{json, Map, Value};

/// The registry key of a channel: private channels never share members with public ones of
/// the same name.
pub fn key(topic: &str, private: bool) -> String {
    if private {
        format!("private|{topic}")
    } else {
        topic.to_owned()
    }
}

/// A socket joining a topic.
pub struct Joining {
    pub outlet: Outlet,
    /// The topic as the client named it (the registry key differs for private channels).
    pub topic: String,
    pub join_ref: String,
    pub broadcast_self: bool,
    /// Who the channel acts as: stored messages of private topics are checked for it.
    pub identity: Arc<Identity>,
    /// Ids of the stored messages replayed to this join, not sent again when they arrive live.
    pub replayed: Vec<String>,
}

/// A socket's membership of a topic.
#[derive(Clone)]
struct Member {
    outlet: Outlet,
    topic: String,
    join_ref: String,
    broadcast_self: bool,
    identity: Arc<Identity>,
    presence: Option<Presence>,
    replayed: Option<Arc<HashSet<String>>>,
}

/// The shared registry.
#[derive(Default)]
pub struct Hub {
    next_socket: AtomicU64,
    topics: Mutex<HashMap<String, Vec<Member>>>,
    /// The other nodes, in cluster mode (set once by `cluster::bus`).
    peers: OnceLock<Link>,
}

impl Hub {
    /// A fresh socket id.
    pub fn socket_id(&self) -> u64 {
        self.next_socket.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a socket to a topic (replacing an earlier join of the same socket). `key` separates
    /// private channels from public ones of the same name.
    pub fn join(&self, key: &str, joining: Joining) {
        let Joining {
            outlet,
            topic,
            join_ref,
            broadcast_self,
            identity,
            replayed,
        } = joining;
        let replayed = (!replayed.is_empty()).then(|| Arc::new(replayed.into_iter().collect()));
        let mut topics = lock(&self.topics);
        let members = topics.entry(key.to_owned()).or_default();
        members.retain(|m| m.outlet.socket != outlet.socket);
        members.push(Member {
            outlet,
            topic,
            join_ref,
            broadcast_self,
            identity,
            presence: None,
            replayed,
        });
    }

    /// The channel now acts as `identity` (its token was renewed).
    pub fn set_identity(&self, key: &str, socket: u64, identity: Arc<Identity>) {
        if let Some(m) = lock(&self.topics)
            .get_mut(key)
            .and_then(|ms| ms.iter_mut().find(|m| m.outlet.socket == socket))
        {
            m.identity = identity;
        }
    }

    /// The distinct identities a topic's members act as.
    pub fn identities(&self, key: &str) -> Vec<Arc<Identity>> {
        let topics = lock(&self.topics);
        let mut seen: HashSet<&Arc<Identity>> = HashSet::new();
        topics
            .get(key)
            .into_iter()
            .flatten()
            .filter(|m| seen.insert(&m.identity))
            .map(|m| Arc::clone(&m.identity))
            .collect()
    }

    /// Removes a socket from a topic; peers are told its presence left.
    pub fn leave(&self, topic: &str, socket: u64) {
        let left = {
            let mut topics = lock(&self.topics);
            let Some(members) = topics.get_mut(topic) else {
                return;
            };
            let left = members
                .iter()
                .find(|m| m.outlet.socket == socket)
                .and_then(|m| m.presence.clone());
            members.retain(|m| m.outlet.socket != socket);
            if members.is_empty() {
                topics.remove(topic);
                shrink(&mut topics);
            } else if members.capacity() > 8 && members.len() < members.capacity() / 4 {
                members.shrink_to_fit();
            }
            left
        };
        if let Some(p) = left {
            self.presence_diff(topic, None, Some(&p));
        }
    }

    /// Sends a broadcast to a topic's members; the sender too when it asked for `self`. In
    /// cluster mode it is queued once for the other nodes' members as well. Returns how many
    /// sockets here received it.
    pub fn broadcast(
        &self,
        topic: &str,
        from: Option<u64>,
        payload: &Value,
        raw: Option<&Arc<[u8]>>,
    ) -> usize {
        let sent = self.deliver(topic, from, payload, raw);
        if let Some(link) = self.peers.get() {
            link.send(Outgoing::Broadcast {
                key: topic.to_owned(),
                frame: peer::encode_broadcast(payload, raw),
            });
        }
        sent
    }

    /// Delivers a broadcast another node received: to every member here (`self` and `ack`
    /// were the sending node's business), and not back to the bus.
    pub fn broadcast_from_peer(
        &self,
        topic: &str,
        payload: &Value,
        raw: Option<&Arc<[u8]>>,
    ) -> usize {
        self.deliver(topic, None, payload, raw)
    }

    /// Whether a topic has members here (a peer's broadcast to none need not be decoded).
    pub fn has_members(&self, topic: &str) -> bool {
        lock(&self.topics).contains_key(topic)
    }

    fn deliver(
        &self,
        topic: &str,
        from: Option<u64>,
        payload: &Value,
        raw: Option<&Arc<[u8]>>,
    ) -> usize {
        let members = lock(&self.topics).get(topic).cloned().unwrap_or_default();
        let mut sent = 0;
        for m in members {
            if Some(m.outlet.socket) == from && !m.broadcast_self {
                continue;
            }
            let mut msg = Message::push(&m.topic, "broadcast", payload.clone());
            msg.raw = raw.cloned();
            m.outlet.send(msg);
            sent += 1;
        }
        crate::stats::delivered(crate::stats::Delivery::Broadcast, sent);
        sent
    }

    /// Sends a stored message (`id`) to those of a topic's members whose identity `reads` it,
    /// except those it was replayed to. Returns how many sockets received it.
    pub fn broadcast_stored(
        &self,
        topic: &str,
        id: &str,
        payload: &Value,
        raw: Option<&Arc<[u8]>>,
        reads: impl Fn(&Identity) -> bool,
    ) -> usize {
        let members = lock(&self.topics).get(topic).cloned().unwrap_or_default();
        let mut sent = 0;
        for m in members {
            if m.replayed.as_ref().is_some_and(|ids| ids.contains(id)) || !reads(&m.identity) {
                continue;
            }
            let mut msg = Message::push(&m.topic, "broadcast", payload.clone());
            msg.raw = raw.cloned();
            m.outlet.send(msg);
            sent += 1;
        }
        crate::stats::delivered(crate::stats::Delivery::Broadcast, sent);
        sent
    }

    /// The topic's presences as `presence_state` wants them: this node's and, in cluster
    /// mode, every other node's.
    pub fn presence_state(&self, topic: &str) -> Value {
        let mut state = Map::new();
        {
            let topics = lock(&self.topics);
            for p in topics
                .get(topic)
                .into_iter()
                .flatten()
                .filter_map(|m| m.presence.as_ref())
            {
                push_meta(&mut state, p);
            }
        }
        if let Some(link) = self.peers.get() {
            for p in link.remote().on(topic) {
                push_meta(&mut state, p);
            }
        }
        Value::Object(state)
    }

    /// Tracks (or updates) a socket's presence under `key`.
    pub fn track(&self, topic: &str, socket: u64, key: &str, meta: Map<String, Value>) {
        let (old, new) = {
            let mut topics = lock(&self.topics);
            let Some(m) = topics
                .get_mut(topic)
                .and_then(|ms| ms.iter_mut().find(|m| m.outlet.socket == socket))
            else {
                return;
            };
            if m.presence
                .as_ref()
                .is_some_and(|p| p.meta == meta && p.key == key)
            {
                return;
            }
            let new = Presence {
                key: key.to_owned(),
                phx_ref: uuid::Uuid::new_v4().simple().to_string(),
                meta,
            };
            (m.presence.replace(new.clone()), new)
        };
        self.presence_diff(topic, Some(&new), old.as_ref());
    }

    /// Withdraws a socket's presence.
    pub fn untrack(&self, topic: &str, socket: u64) {
        let old = {
            let mut topics = lock(&self.topics);
            topics
                .get_mut(topic)
                .and_then(|ms| ms.iter_mut().find(|m| m.outlet.socket == socket))
                .and_then(|m| m.presence.take())
        };
        if let Some(p) = old {
            self.presence_diff(topic, None, Some(&p));
        }
    }

    /// A local presence change: diffed to the members here and, in cluster mode, queued for
    /// the other nodes.
    fn presence_diff(&self, topic: &str, joined: Option<&Presence>, left: Option<&Presence>) {
        self.deliver_diff(topic, joined.into_iter(), left.into_iter());
        if let Some(link) = self.peers.get() {
            link.send(Outgoing::Presence {
                key: topic.to_owned(),
                joins: joined.cloned().into_iter().collect(),
                leaves: left.map(|p| p.phx_ref.clone()).into_iter().collect(),
            });
        }
    }

    fn deliver_diff<'a>(
        &self,
        topic: &str,
        joined: impl Iterator<Item = &'a Presence>,
        left: impl Iterator<Item = &'a Presence>,
    ) {
        let (mut joins, mut leaves) = (Map::new(), Map::new());
        for p in joined {
            push_meta(&mut joins, p);
        }
        for p in left {
            push_meta(&mut leaves, p);
        }
        let payload = json!({"joins": joins, "leaves": leaves});
        let members = lock(&self.topics).get(topic).cloned().unwrap_or_default();
        crate::stats::delivered(crate::stats::Delivery::Presence, members.len());
        for m in members {
            let mut msg = Message::push(&m.topic, "presence_diff", payload.clone());
            msg.join_ref = Some(m.join_ref.clone());
            m.outlet.send(msg);
        }
    }

    /// Connects the hub to the other nodes; `false` (and `link` dropped) if it already is.
    pub fn connect_peers(&self, link: Link) -> bool {
        self.peers.set(link).is_ok()
    }

    /// The link to the other nodes, in cluster mode.
    pub fn peers(&self) -> Option<&Link> {
        self.peers.get()
    }

    /// Another node's presence diff on `topic`: kept, and what changed diffed to the members
    /// here.
    pub fn presence_from_peer(
        &self,
        node: &str,
        topic: &str,
        joins: Vec<Presence>,
        leaves: &[String],
    ) {
        let Some(link) = self.peers.get() else {
            return;
        };
        let diff = link.remote().apply(node, topic, joins, leaves);
        self.deliver_topic_diffs([diff]);
    }

    /// Another node's whole presence state (topic → presences), replacing what it had.
    pub fn replace_peer(&self, node: &str, state: HashMap<String, Vec<Presence>>) {
        let Some(link) = self.peers.get() else {
            return;
        };
        let diffs = link.remote().replace(node, state);
        self.deliver_topic_diffs(diffs);
    }

    /// A node died: its presences leave, diffed to the members here.
    pub fn forget_peer(&self, node: &str) {
        let Some(link) = self.peers.get() else {
            return;
        };
        let diffs = link.remote().forget(node);
        if !diffs.is_empty() {
            tracing::info!(
                node,
                topics = diffs.len(),
                "cluster node gone: its presences left"
            );
        }
        self.deliver_topic_diffs(diffs);
    }

    fn deliver_topic_diffs(&self, diffs: impl IntoIterator<Item = TopicDiff>) {
        for d in diffs {
            if !d.joins.is_empty() || !d.leaves.is_empty() {
                self.deliver_diff(&d.key, d.joins.iter(), d.leaves.iter());
            }
        }
    }

    /// This node's presences by topic, for a snapshot to the other nodes.
    pub fn local_presences(&self) -> Vec<(String, Vec<Presence>)> {
        let topics = lock(&self.topics);
        topics
            .iter()
            .map(|(key, members)| {
                let ps: Vec<Presence> = members.iter().filter_map(|m| m.presence.clone()).collect();
                (key.clone(), ps)
            })
            .filter(|(_, ps)| !ps.is_empty())
            .collect()
    }

    /// How many topics have members, and how many channels (a socket joined to a topic) there
    /// are in all; read when metrics are scraped.
    pub fn channel_counts(&self) -> (usize, usize) {
        let topics = lock(&self.topics);
        (topics.len(), topics.values().map(Vec::len).sum())
    }
}

fn push_meta(map: &mut Map<String, Value>, p: &Presence) {
    let mut meta = p.meta.clone();
    meta.insert("phx_ref".into(), Value::String(p.phx_ref.clone()));
    let entry = map
        .entry(p.key.clone())
        .or_insert_with(|| json!({"metas": []}));
    if let Some(metas) = entry.get_mut("metas").and_then(Value::as_array_mut) {
        metas.push(Value::Object(meta));
    }
}
