//! Broadcast pushes from the client: size-checked, written only where the channel's private
//! policies allow (`private_channel`), relayed through the hub, acknowledged when the join asked
//! for `ack`.

use serde_json::json;

use super::channel::Channel;
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
