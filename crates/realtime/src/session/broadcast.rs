//! Broadcast pushes from the client: size-checked, written only where the channel's private
//! policies allow (`private_channel`), relayed through the hub, acknowledged when the join asked
//! for `ack`; and `broadcast.replication_ready`, the join option that waits for broadcasts from
//! the database to be live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::channel::{system, Channel};
use super::private_channel;
use crate::outlet::Outlet;
use crate::protocol::{json_len, Message};
use crate::service::Realtime;

/// Relays a client's broadcast on its joined `channel`.
pub(super) async fn relay(rt: &Realtime, outlet: &Outlet, channel: &mut Channel, msg: Message) {
    let ack = channel.ack;
    let size = msg.raw.as_ref().map_or_else(
        || msg.payload.get("payload").map_or(0, json_len),
        |raw| raw.len(),
    );
    if size > rt.limits.max_payload_bytes {
        if ack {
            outlet.send(msg.reply("error", json!("payload_size_exceeded")));
        }
        return;
    }
    if !private_channel::may_write_broadcast(rt, channel).await {
        if ack {
            outlet.send(msg.reply("error", json!({"reason": "Unauthorized"})));
        }
        return;
    }
    let mut payload = msg.payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.insert("type".into(), json!("broadcast"));
    }
    rt.hub.broadcast(
        &channel.key,
        Some(outlet.socket),
        &payload,
        msg.raw.as_ref(),
    );
    if ack {
        outlet.send(msg.reply("ok", json!({})));
    }
}

/// How often a waiting `replication_ready` join looks again, and how long it waits before the
/// channel is closed, as Supabase's defaults.
const READY_CHECK: Duration = Duration::from_millis(500);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// `config.broadcast.replication_ready`: once broadcasts from the database are delivered (the
/// replication stream is connected and reads `realtime.messages`), the channel gets a `system`
/// push with status `ok`; after a minute without, one with status `error` and the channel is
/// closed, as Supabase does.
pub(super) fn notify_replication_ready(
    rt: &Arc<Realtime>,
    outlet: &Outlet,
    topic: &str,
    sub_topic: &str,
    join_ref: &str,
) {
    let (rt, outlet) = (Arc::clone(rt), outlet.clone());
    let (topic, sub_topic, join_ref) =
        (topic.to_owned(), sub_topic.to_owned(), join_ref.to_owned());
    let body = |status: &str, message: &str| json!({"extension": "system", "status": status, "message": message, "channel": sub_topic});
    let ready = body("ok", "Replication connection established");
    if rt.database_broadcasts_live() {
        return outlet.send(system(&topic, Some(&join_ref), ready));
    }
    let late = body(
        "error",
        "Replication connection was not established in time",
    );
    tokio::spawn(async move {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !outlet.is_closed() {
            tokio::time::sleep(READY_CHECK).await;
            if rt.database_broadcasts_live() {
                return outlet.send(system(&topic, Some(&join_ref), ready));
            }
            if Instant::now() >= deadline {
                outlet.send(system(&topic, Some(&join_ref), late));
                let mut close = Message::push(&topic, "phx_close", json!({}));
                close.join_ref = Some(join_ref);
                return outlet.send(close);
            }
        }
    });
}
