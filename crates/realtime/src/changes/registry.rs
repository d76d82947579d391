//! The `postgres_changes` subscriptions, by table: each binding of a joined channel on each
//! published table it names, with the subscriber's identity and the filter's conditions.
//! Delivery reads a table's subscriptions as they are at that moment. Locks here are never held
//! across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::condition::Condition;
use crate::identity::Identity;
use crate::memory::shrink;
use crate::mutex::lock;
use crate::outlet::Outlet;

/// Which changes a binding wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFilter {
    All,
    Insert,
    Update,
    Delete,
}

impl EventFilter {
    pub fn parse(s: &str) -> Option<EventFilter> {
        match s.to_ascii_uppercase().as_str() {
            "*" => Some(EventFilter::All),
            "INSERT" => Some(EventFilter::Insert),
            "UPDATE" => Some(EventFilter::Update),
            "DELETE" => Some(EventFilter::Delete),
            _ => None,
        }
    }

    /// Whether a change of `kind` (INSERT, UPDATE, DELETE) passes.
    pub fn accepts(self, kind: &str) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Insert => kind == "INSERT",
            EventFilter::Update => kind == "UPDATE",
            EventFilter::Delete => kind == "DELETE",
        }
    }
}

/// One `postgres_changes` binding on one published table.
pub struct PgSubscription {
    pub outlet: Outlet,
    pub topic: String,
    /// The id returned in the join reply.
    pub id: u32,
    pub event: EventFilter,
    pub table_oid: u32,
    pub conditions: Vec<Condition>,
    /// The binding's `select`: only these columns (and the primary key) in the payload.
    pub select: Option<Arc<[String]>>,
    pub identity: Arc<Identity>,
}

/// Every subscription, by table oid.
#[derive(Default)]
pub struct Subscriptions {
    by_table: Mutex<HashMap<u32, Vec<Arc<PgSubscription>>>>,
}

impl Subscriptions {
    /// Registers a socket's postgres_changes subscriptions on a topic, replacing its earlier ones.
    pub fn subscribe(&self, topic: &str, socket: u64, subs: Vec<PgSubscription>) {
        let mut all = lock(&self.by_table);
        for list in all.values_mut() {
            list.retain(|s| !(s.outlet.socket == socket && s.topic == topic));
            if list.capacity() > 8 && list.len() < list.capacity() / 4 {
                list.shrink_to_fit();
            }
        }
        for s in subs {
            all.entry(s.table_oid).or_default().push(Arc::new(s));
        }
        all.retain(|_, l| !l.is_empty());
        shrink(&mut all);
    }

    /// Drops a socket's postgres_changes subscriptions on a topic.
    pub fn unsubscribe(&self, topic: &str, socket: u64) {
        self.subscribe(topic, socket, Vec::new());
    }

    /// The subscriptions on a table, as they are now.
    pub fn by_table(&self, table_oid: u32) -> Vec<Arc<PgSubscription>> {
        lock(&self.by_table)
            .get(&table_oid)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether anyone subscribes to changes at all.
    pub fn any(&self) -> bool {
        !lock(&self.by_table).is_empty()
    }
}
