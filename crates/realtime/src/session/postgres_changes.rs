//! A join's `postgres_changes` bindings: bounded in number, echoed with their ids in the join
//! reply, then registered (`changes::subscribe`) and confirmed with a `system` message.

use std::sync::Arc;

use serde_json::{json, Value};

use super::channel::system;
use crate::changes::subscribe::{self, Binding};
use crate::identity::Identity;
use crate::limits::Limits;
use crate::outlet::Outlet;
use crate::service::Realtime;

/// The join's bindings, or the reason a join with too many is refused.
pub(super) fn bindings<'c>(limits: &Limits, config: &'c Value) -> Result<&'c [Value], String> {
    let bindings = config
        .get("postgres_changes")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let max = limits.max_bindings;
    if bindings.len() > max {
        return Err(format!(
            "TooManyBindings: A channel accepts at most {max} postgres_changes bindings"
        ));
    }
    Ok(bindings)
}

/// The channel a subscription belongs to: its topic as the client named it, the sub-topic the
/// `system` message names, and the join it answers.
pub(super) struct Target<'a> {
    pub topic: &'a str,
    pub sub_topic: &'a str,
    pub join_ref: &'a str,
}

/// Subscribes a joined channel's bindings and says how it went, as Supabase does, in a
/// `system` message after the join reply (or after a renewed token). Whether they were
/// subscribed: on failure the channel's earlier subscriptions, if any, are still in place.
pub(super) async fn subscribe(
    rt: &Realtime,
    outlet: &Outlet,
    target: Target<'_>,
    parsed: &[Binding],
    identity: Arc<Identity>,
) -> bool {
    if parsed.is_empty() {
        return true;
    }
    let Target {
        topic,
        sub_topic,
        join_ref,
    } = target;
    let result = subscribe::register(rt, outlet, topic, parsed, identity).await;
    let subscribed = result.is_ok();
    let body = match result {
        Ok(()) => json!({"extension": "postgres_changes", "status": "ok",
                          "message": "Subscribed to PostgreSQL", "channel": sub_topic}),
        Err(e) => json!({"extension": "postgres_changes", "status": "error",
                          "message": e.to_string(), "channel": sub_topic}),
    };
    outlet.send(system(topic, Some(join_ref), body));
    subscribed
}

/// The bindings as the join reply echoes them: the client's own maps, each with its id.
pub(super) fn echo(bindings: &[Value], parsed: &[Binding]) -> Vec<Value> {
    bindings
        .iter()
        .zip(parsed)
        .map(|(raw, b)| {
            let mut echoed = raw.as_object().cloned().unwrap_or_default();
            echoed.insert("id".into(), json!(b.id));
            Value::Object(echoed)
        })
        .collect()
}
