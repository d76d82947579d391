//! Presence from the client (track, untrack), bounded per channel in calls and payload size,
//! and the `presence_state` a join with presence enabled receives.

use std::time::Instant;

use serde_json::{json, Value};

use super::channel::Channel;
use super::private_channel;
use crate::outlet::Outlet;
use crate::protocol::{json_len, Message};
use crate::service::Realtime;

/// Handles a presence push on its joined `channel`; `Err` carries the reason the channel is
/// closed with.
pub(super) async fn handle(
    rt: &Realtime,
    outlet: &Outlet,
    channel: &mut Channel,
    msg: Message,
) -> Result<(), &'static str> {
    let Some(event) = msg.payload.get("event").and_then(Value::as_str) else {
        outlet.send(msg.reply("ok", json!({})));
        return Ok(());
    };
    let event = event.to_ascii_lowercase();
    if !channel.presence_calls.hit(Instant::now()) {
        return Err("Client presence rate limit exceeded");
    }
    let track = msg.payload.get("payload");
    if event == "track" {
        match track {
            None | Some(Value::Object(_)) => {}
            Some(_) => {
                outlet.send(msg.reply(
                    "error",
                    json!({"reason": "Presence track payload must be a map"}),
                ));
                return Ok(());
            }
        }
        if track.map_or(0, json_len) > rt.limits.max_payload_bytes {
            return Err("Track message size exceeded");
        }
    }
    if !private_channel::may_write_presence(rt, channel).await {
        outlet.send(msg.reply("error", json!({"reason": "Unauthorized"})));
        return Ok(());
    }
    match event.as_str() {
        "track" => {
            let meta = track
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            rt.hub
                .track(&channel.key, outlet.socket, &channel.presence_key, meta);
            outlet.send(msg.reply("ok", json!({})));
        }
        "untrack" => {
            rt.hub.untrack(&channel.key, outlet.socket);
            outlet.send(msg.reply("ok", json!({})));
        }
        _ => outlet.send(msg.reply("error", json!({"reason": "unknown presence event"}))),
    }
    Ok(())
}

/// The topic's presences, sent after a join with presence enabled.
pub(super) fn send_state(rt: &Realtime, outlet: &Outlet, topic: &str, key: &str, join_ref: &str) {
    let mut state = Message::push(topic, "presence_state", rt.hub.presence_state(key));
    state.join_ref = Some(join_ref.to_owned());
    outlet.send(state);
    crate::stats::delivered(crate::stats::Delivery::Presence, 1);
}
