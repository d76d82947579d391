//! Fan-out, the pipeline's last step (`pipeline`): one payload per (role, old row visible), one
//! message per channel listing the ids of that channel's matching bindings, queued on each
//! subscriber's outlet.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::authorize::Receiver;
use super::decode::Change;
use super::payload::{data, exact_text};
use super::registry::PgSubscription;
use super::table::Table;
use crate::protocol::Message;

/// Sends one change to its receivers: one payload per role (and `select` list), one message per
/// channel listing the ids of that channel's matching bindings.
pub fn send(table: &Table, commit_ts: &str, change: &Change, receivers: &[Receiver]) {
    // (role, old row visible, selected columns) → the payload and the subscriptions it goes to.
    type Key<'r> = (&'r str, bool, Option<&'r [String]>);
    type Payloads<'r> = HashMap<Key<'r>, ((Value, Option<String>), Vec<&'r Arc<PgSubscription>>)>;
    let mut by_role: Payloads = HashMap::new();
    let mut delivered = 0;
    for r in receivers {
        let entry = by_role
            .entry((
                r.sub.identity.role.as_str(),
                r.old_visible,
                r.sub.select.as_deref(),
            ))
            .or_insert_with(|| {
                let select = r.sub.select.as_deref();
                let data = data(table, commit_ts, change, &r.access, r.old_visible, select);
                let text = exact_text(table, change, &data);
                ((data, text), Vec::new())
            });
        entry.1.push(&r.sub);
    }
    for ((data, text), subs) in by_role.into_values() {
        // (socket, topic) → the ids of its bindings that match, and one of its subscriptions.
        type Channel<'s> = ((u64, &'s str), Vec<u32>, &'s Arc<PgSubscription>);
        let mut channels: Vec<Channel> = Vec::new();
        for sub in subs {
            let key = (sub.outlet.socket, sub.topic.as_str());
            match channels.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, ids, _)) => {
                    if !ids.contains(&sub.id) {
                        ids.push(sub.id)
                    }
                }
                None => channels.push((key, vec![sub.id], sub)),
            }
        }
        for ((_, topic), ids, sub) in channels {
            let mut msg =
                Message::push(topic, "postgres_changes", json!({"ids": ids, "data": data}));
            if let Some(text) = &text {
                msg.payload_text = Some(Arc::from(format!(
                    r#"{{"data":{text},"ids":{}}}"#,
                    Value::from(ids)
                )));
            }
            sub.outlet.send(msg);
            delivered += 1;
        }
    }
    crate::stats::delivered(crate::stats::Delivery::PostgresChanges, delivered);
}
