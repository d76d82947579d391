//! Broadcast pushes from the client: size-checked, written only where the channel's private
//! policies allow, relayed through the hub, acknowledged when the join asked for `ack`.

use serde_json::json;

use super::Session;
use crate::protocol::{json_len, Message};

impl Session {
    pub(super) async fn broadcast(&mut self, msg: Message) {
        let Some(channel) = self.channels.get(&msg.topic) else {
            return;
        };
        let ack = channel.ack;
        let size = msg.raw.as_ref().map_or_else(
            || msg.payload.get("payload").map_or(0, json_len),
            |raw| raw.len(),
        );
        if size > self.rt.limits.max_payload_bytes {
            if ack {
                self.outlet
                    .send(msg.reply("error", json!("payload_size_exceeded")));
            }
            return;
        }
        if !self.may_write_broadcast(&msg.topic).await {
            if ack {
                self.outlet
                    .send(msg.reply("error", json!({"reason": "Unauthorized"})));
            }
            return;
        }
        let mut payload = msg.payload.clone();
        if let Some(o) = payload.as_object_mut() {
            o.insert("type".into(), json!("broadcast"));
        }
        let key = &self.channels[&msg.topic].key;
        self.rt
            .hub
            .broadcast(key, Some(self.outlet.socket), &payload, msg.raw.as_ref());
        if ack {
            self.outlet.send(msg.reply("ok", json!({})));
        }
    }
}
