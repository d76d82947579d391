//! Broadcast from the database, the delivery of stored broadcasts (`message`): each committed
//! row goes to the members of its topic's private or public channel as Supabase's
//! broadcast-from-database sends it, `{type: "broadcast", event, payload, meta: {id}}`, JSON as
//! stored or the binary payload as bytes (vsn-2 sockets only: a JSON frame cannot carry them,
//! as in Supabase). Messages already replayed to a join are skipped.
//!
//! A private message reaches a member only if the `realtime.messages` SELECT policies, under
//! the member's role and claims with `realtime.topic()` set, let it read that committed row:
//! one call of `realtime.craftbase_readable_messages` per batch checks every (identity, topic)
//! group's messages. Supabase asks the policies once, at join; asking per message keeps a
//! policy that reads the message itself (its event, a recipient in its payload) true live as it
//! is for replay. A payload over the per-message limit is dropped with a warning, as Supabase
//! drops it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::Pool;
use serde_json::{json, Value};

use super::message::{Body, StoredBroadcast};
use crate::hub::{self, Hub};
use crate::identity::Identity;

/// Sends a batch's stored broadcasts, in order, to the members allowed to read them.
pub async fn send(hub: &Hub, admin: &Pool, broadcasts: &[&StoredBroadcast], max_payload: usize) {
    let broadcasts: Vec<&StoredBroadcast> = broadcasts
        .iter()
        .copied()
        .filter(|b| {
            let fits = b.size() <= max_payload;
            if !fits {
                tracing::warn!(topic = %b.topic, bytes = b.size(), "database broadcast over the payload limit dropped");
            }
            fits
        })
        .collect();
    let readable = readable(hub, admin, &broadcasts).await;
    for b in broadcasts {
        let (payload, raw) = match &b.body {
            Body::Json(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => (v, None),
                Err(_) => continue,
            },
            Body::Binary(bytes) => (Value::Null, Some(Arc::clone(bytes))),
        };
        let message = json!({
            "type": "broadcast",
            "event": b.event,
            "payload": payload,
            "meta": {"id": b.id},
        });
        let key = key(b);
        hub.broadcast_stored(&key, &b.id, &message, raw.as_ref(), |identity| {
            !b.private || readable.contains(&(identity.clone(), b.id.clone()))
        });
    }
}

/// The hub key of a message's channel.
fn key(b: &StoredBroadcast) -> String {
    hub::key(&format!("realtime:{}", b.topic), b.private)
}

/// The (identity, message id) pairs of the batch's private messages that the policies let
/// through; empty (nothing private delivered) when the check cannot run.
async fn readable(
    hub: &Hub,
    admin: &Pool,
    broadcasts: &[&StoredBroadcast],
) -> HashSet<(Identity, String)> {
    // (identity, topic) groups, each with the (id, insert time) of the messages it asks about.
    let mut by_topic: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for b in broadcasts.iter().filter(|b| b.private) {
        by_topic
            .entry(&b.topic)
            .or_default()
            .push((&b.id, &b.inserted_at));
    }
    let mut groups: Vec<(Arc<Identity>, &str)> = Vec::new();
    for topic in by_topic.keys() {
        let key = hub::key(&format!("realtime:{topic}"), true);
        groups.extend(hub.identities(&key).into_iter().map(|id| (id, *topic)));
    }
    if groups.is_empty() {
        return HashSet::new();
    }
    // By role, so the function switches roles only between roles.
    groups.sort_by(|a, b| a.0.role.cmp(&b.0.role));
    let mut roles = Vec::with_capacity(groups.len());
    let mut claims = Vec::with_capacity(groups.len());
    let mut topics = Vec::with_capacity(groups.len());
    let mut bounds = Vec::with_capacity(groups.len() + 1);
    let (mut ids, mut ats): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for (identity, topic) in &groups {
        roles.push(identity.role.as_str());
        claims.push(identity.claims.as_str());
        topics.push(*topic);
        bounds.push(ids.len() as i32 + 1);
        for (id, at) in &by_topic[topic] {
            ids.push(id);
            ats.push(at);
        }
    }
    bounds.push(ids.len() as i32 + 1);
    let client = match admin.get().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no connection to check database broadcasts; private ones withheld");
            return HashSet::new();
        }
    };
    let mut isolated = false;
    let rows = loop {
        let found = client
            .query(
                "select grp, id::text from realtime.craftbase_readable_messages(
                     $1, $2, $3, $4, $5::text[]::uuid[], $6::text[]::timestamp[], $7)",
                &[&roles, &claims, &topics, &bounds, &ids, &ats, &isolated],
            )
            .await;
        match found {
            Ok(rows) => break rows,
            // A policy failed for some group: ask again with each check on its own.
            Err(e) if !isolated && e.as_db_error().is_some() => isolated = true,
            Err(e) => {
                tracing::warn!(error = %e, "database broadcasts not checked; private ones withheld");
                return HashSet::new();
            }
        }
    };
    rows.iter()
        .filter_map(|r| {
            let g: i32 = r.get(0);
            let (identity, _) = groups.get(usize::try_from(g - 1).ok()?)?;
            Some(((**identity).clone(), r.get::<_, String>(1)))
        })
        .collect()
}
