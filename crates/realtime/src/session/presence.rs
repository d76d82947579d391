//! Presence from the client (track, untrack), bounded per channel in calls and payload size,
//! and the `presence_state` a join with presence enabled receives.

use std::time::Instant;

use serde_json::{json, Value};

use super::Session;
use crate::protocol::{json_len, Message};

impl Session {
    pub(super) async fn presence(&mut self, msg: Message) {
        let Some(channel) = self.channels.get_mut(&msg.topic) else {
            return;
        };
        let Some(event) = msg.payload.get("event").and_then(Value::as_str) else {
            return self.outlet.send(msg.reply("ok", json!({})));
        };
        let event = event.to_ascii_lowercase();
        if !channel.presence_calls.hit(Instant::now()) {
            return self.refuse(&msg.topic, "Client presence rate limit exceeded");
        }
        let track = msg.payload.get("payload");
        if event == "track" {
            match track {
                None | Some(Value::Object(_)) => {}
                Some(_) => {
                    return self.outlet.send(msg.reply(
                        "error",
                        json!({"reason": "Presence track payload must be a map"}),
                    ))
                }
            }
            if track.map_or(0, json_len) > self.rt.limits.max_payload_bytes {
                return self.refuse(&msg.topic, "Track message size exceeded");
            }
        }
        if !self.may_write_presence(&msg.topic).await {
            return self
                .outlet
                .send(msg.reply("error", json!({"reason": "Unauthorized"})));
        }
        let channel = &self.channels[&msg.topic];
        match event.as_str() {
            "track" => {
                let meta = msg
                    .payload
                    .get("payload")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                self.rt.hub.track(
                    &channel.key,
                    self.outlet.socket,
                    &channel.presence_key,
                    meta,
                );
                self.outlet.send(msg.reply("ok", json!({})));
            }
            "untrack" => {
                self.rt.hub.untrack(&channel.key, self.outlet.socket);
                self.outlet.send(msg.reply("ok", json!({})));
            }
            _ => self
                .outlet
                .send(msg.reply("error", json!({"reason": "unknown presence event"}))),
        }
    }

    /// The topic's presences, sent after a join with presence enabled.
    pub(super) fn send_presence_state(&self, topic: &str, key: &str, join_ref: &str) {
        let mut state = Message::push(topic, "presence_state", self.rt.hub.presence_state(key));
        state.join_ref = Some(join_ref.to_owned());
        self.outlet.send(state);
        crate::stats::delivered(crate::stats::Delivery::Presence, 1);
    }
}
