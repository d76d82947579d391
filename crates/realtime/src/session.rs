//! One websocket's Phoenix state machine (§3.3, §3.4): heartbeats, joins with their config and
//! per-socket limits, leaves, `access_token` renewals, and closing channels whose token expired.
//! Each channel kind has its own module: `broadcast`, `presence`, `postgres_changes` and
//! `private_channel`. Everything it says goes through the socket's outlet, so it runs the same
//! against a real websocket or an in-memory receiver in tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::changes::subscribe::Binding;
use crate::hub;
use crate::limits::Window;
use crate::outlet::Outlet;
use crate::protocol::{Envelope, Message};
use crate::service::Realtime;
use crate::tenant::Admission;

use channel::{lenient_bool, Channel};

mod access_token;
mod broadcast;
mod channel;
mod postgres_changes;
mod presence;
mod private_channel;
#[cfg(test)]
mod tests;

/// The state of one socket.
pub struct Session {
    rt: Arc<Realtime>,
    outlet: Outlet,
    /// The connect-time apikey, used when a join carries no `access_token`.
    apikey: Option<String>,
    channels: HashMap<String, Channel>,
    /// Joins in the current second (`TENANT_MAX_JOINS_PER_SECOND`).
    joins: Window,
    /// Other messages in the current second (`TENANT_MAX_EVENTS_PER_SECOND`).
    events: Window,
    /// Set when the socket must be closed (too many joins), as Supabase disconnects it.
    disconnect: bool,
}

impl Session {
    pub fn new(rt: Arc<Realtime>, outlet: Outlet, apikey: Option<String>) -> Session {
        let second = std::time::Duration::from_secs(1);
        Session {
            joins: Window::new(rt.limits.max_joins_per_second, second),
            events: Window::new(rt.limits.max_events_per_second, second),
            rt,
            outlet,
            apikey,
            channels: HashMap::new(),
            disconnect: false,
        }
    }

    /// Whether the socket should be closed (after the replies already queued).
    pub fn wants_disconnect(&self) -> bool {
        self.disconnect
    }

    /// Reads a frame's payload only when it will be used: for a join, or on a joined topic.
    /// Anything else is answered from its envelope alone.
    pub fn admit(&self, envelope: Envelope<'_>) -> Result<Message, crate::protocol::FrameError> {
        if envelope.event == "phx_join" || self.channels.contains_key(&envelope.topic) {
            envelope.message()
        } else {
            Ok(envelope.bare())
        }
    }

    /// Handles one message from the client.
    pub async fn handle(&mut self, msg: Message) {
        if msg.event == "phx_join" {
            return self.join(msg).await;
        }
        let heartbeat = msg.topic == "phoenix" && msg.event == "heartbeat";
        if !heartbeat && !self.events.hit(Instant::now()) {
            if self.channels.contains_key(&msg.topic) {
                self.refuse(&msg.topic, "Too many messages per second");
            }
            return;
        }
        match (msg.topic.as_str(), msg.event.as_str()) {
            ("phoenix", "heartbeat") => self.outlet.send(msg.reply("ok", json!({}))),
            _ if !self.is_current(&msg) => {
                let mut reply = msg.reply("error", json!({"reason": "unmatched topic"}));
                reply.join_ref = None;
                self.outlet.send(reply);
            }
            (_, "phx_leave") => {
                self.outlet.send(msg.reply("ok", json!({})));
                self.close_channel(&msg.topic);
            }
            (_, "access_token") => self.renew(msg).await,
            (_, "broadcast" | "presence") if !self.tenant_allows(&msg.topic).await => {}
            (_, "broadcast") => {
                if let Some(channel) = self.channels.get_mut(&msg.topic) {
                    broadcast::relay(&self.rt, &self.outlet, channel, msg).await;
                }
            }
            (_, "presence") => self.presence(msg).await,
            _ => self.outlet.send(msg.reply("ok", json!({}))),
        }
    }

    /// The project-wide limit (`REALTIME_TENANT_MAX_EVENTS_PER_SECOND`, on every node): over
    /// it the message is dropped and its channel closed with the `system` error Supabase sends
    /// when a tenant is over its events per second.
    async fn tenant_allows(&mut self, topic: &str) -> bool {
        if self.rt.tenant_events.take(1).await == Admission::Allowed {
            return true;
        }
        self.refuse(topic, "Too many messages per second");
        false
    }

    /// Whether `msg` belongs to the channel's current join.
    fn is_current(&self, msg: &Message) -> bool {
        self.channels
            .get(&msg.topic)
            .is_some_and(|c| msg.join_ref.is_none() || msg.join_ref.as_deref() == Some(&c.join_ref))
    }

    async fn join(&mut self, msg: Message) {
        let refuse = |reason: &str| msg.reply("error", json!({ "reason": reason }));
        if !self.joins.hit(Instant::now()) {
            self.disconnect = true;
            return self.outlet.send(refuse(
                "ClientJoinRateLimitReached: Too many joins per second",
            ));
        }
        let Some(sub_topic) = msg
            .topic
            .strip_prefix("realtime:")
            .filter(|t| !t.is_empty())
        else {
            return self
                .outlet
                .send(refuse("TopicNameRequired: You must provide a topic name"));
        };
        if let Err(reason) = self.check_topic(&msg.topic) {
            return self.outlet.send(refuse(&reason));
        }
        let sub_topic = sub_topic.to_owned();
        if self.channels.contains_key(&msg.topic) {
            self.close_channel(&msg.topic);
        } else if self.channels.len() >= self.rt.limits.max_channels {
            return self
                .outlet
                .send(refuse("ChannelRateLimitReached: Too many channels"));
        }
        let join_ref = msg
            .join_ref
            .clone()
            .or_else(|| msg.msg_ref.clone())
            .unwrap_or_default();
        let config = msg.payload.get("config").cloned().unwrap_or(Value::Null);
        let bindings = match postgres_changes::bindings(&self.rt.limits, &config) {
            Ok(b) => b,
            Err(reason) => return self.outlet.send(refuse(&reason)),
        };
        let access_token = msg.payload.get("access_token");
        let grant = match access_token::join_grant(&self.rt, self.apikey.as_deref(), access_token) {
            Ok(g) => g,
            Err(e) => return self.outlet.send(refuse(&format!("InvalidJWTToken: {e}"))),
        };
        tracing::debug!(topic = %msg.topic, role = %grant.identity.role, has_token = msg.payload.get("access_token").is_some(), "join");
        let private = lenient_bool(config.get("private"));
        let replayed = match private_channel::admit_join(
            &self.rt, &config, private, &grant, &sub_topic, &msg.topic,
        )
        .await
        {
            Ok(r) => r,
            Err(reason) => return self.outlet.send(refuse(&reason)),
        };
        let identity = Arc::new(grant.identity.clone());
        let key = hub::key(&msg.topic, private);
        let parsed: Vec<Binding> = bindings.iter().map(Binding::from_config).collect();
        let mut channel = Channel::new(
            &key,
            &join_ref,
            &sub_topic,
            &grant,
            private,
            &config,
            &self.rt.limits,
        );
        channel.bindings = parsed.clone();
        let broadcast = config.get("broadcast").unwrap_or(&Value::Null);
        let presence = config.get("presence").unwrap_or(&Value::Null);
        let replayed_ids = replayed
            .iter()
            .filter_map(|m| m.payload.pointer("/meta/id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        self.rt.hub.join(
            &key,
            hub::Joining {
                outlet: self.outlet.clone(),
                topic: msg.topic.clone(),
                join_ref: join_ref.clone(),
                broadcast_self: lenient_bool(broadcast.get("self")),
                identity: identity.clone(),
                replayed: replayed_ids,
            },
        );
        self.channels.insert(msg.topic.clone(), channel);

        let reply = postgres_changes::echo(bindings, &parsed);
        self.outlet
            .send(msg.reply("ok", json!({ "postgres_changes": reply })));
        for m in replayed {
            self.outlet.send(m);
        }
        if lenient_bool(broadcast.get("replication_ready")) {
            broadcast::notify_replication_ready(
                &self.rt,
                &self.outlet,
                &msg.topic,
                &sub_topic,
                &join_ref,
            );
        }
        if lenient_bool(presence.get("enabled")) {
            presence::send_state(&self.rt, &self.outlet, &msg.topic, &key, &join_ref);
        }
        let target = postgres_changes::Target {
            topic: &msg.topic,
            sub_topic: &sub_topic,
            join_ref: &join_ref,
        };
        postgres_changes::subscribe(&self.rt, &self.outlet, target, &parsed, identity).await;
    }

    /// A topic's name is refused before it reaches a policy or a frame: too long for the
    /// binary frames' length byte, or holding control characters (a NUL cannot be a
    /// PostgreSQL text value).
    fn check_topic(&self, topic: &str) -> Result<(), String> {
        let max = self.rt.limits.max_topic_bytes;
        if topic.len() > max {
            return Err(format!(
                "InvalidTopic: A topic name is at most {max} bytes long"
            ));
        }
        if topic.chars().any(char::is_control) {
            return Err("InvalidTopic: A topic name must not contain control characters".into());
        }
        Ok(())
    }

    /// An `access_token` push: the channel acts with the new token from now on.
    async fn renew(&mut self, msg: Message) {
        let Some(token) = msg
            .payload
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("sb_"))
        else {
            return;
        };
        let Some(channel) = self.channels.get_mut(&msg.topic) else {
            return;
        };
        match access_token::renew(&self.rt, &msg.topic, channel, token).await {
            Err(reason) => self.refuse(&msg.topic, &reason),
            // As Supabase, the bindings are subscribed again under the new claims: a join whose
            // bindings were refused under the apikey's role (realtime-js can send the join before
            // it has its token) works once the token arrives, and says so in a `system` message.
            Ok(Some(identity)) => {
                let Some(channel) = self.channels.get(&msg.topic) else {
                    return;
                };
                self.rt
                    .hub
                    .set_identity(&channel.key, self.outlet.socket, identity.clone());
                let target = postgres_changes::Target {
                    topic: &msg.topic,
                    sub_topic: &channel.sub_topic,
                    join_ref: &channel.join_ref,
                };
                let bindings = &channel.bindings;
                if !postgres_changes::subscribe(&self.rt, &self.outlet, target, bindings, identity)
                    .await
                {
                    // Nothing keeps flowing under the previous token's claims.
                    self.rt
                        .subscriptions
                        .unsubscribe(&msg.topic, self.outlet.socket);
                }
            }
            Ok(None) => {}
        }
    }

    /// Sends a `system` error and closes the channel.
    fn refuse(&mut self, topic: &str, message: &str) {
        let sub = self
            .channels
            .get(topic)
            .map(|c| c.sub_topic.clone())
            .unwrap_or_default();
        self.system(
            topic,
            json!({"extension": "system", "status": "error", "message": message, "channel": sub}),
        );
        self.close_channel(topic);
    }

    fn system(&self, topic: &str, body: Value) {
        let join_ref = self.channels.get(topic).map(|c| c.join_ref.as_str());
        self.outlet.send(channel::system(topic, join_ref, body));
    }

    /// A presence push on a joined channel; a refusal closes the channel.
    async fn presence(&mut self, msg: Message) {
        let topic = msg.topic.clone();
        let Some(channel) = self.channels.get_mut(&topic) else {
            return;
        };
        if let Err(reason) = presence::handle(&self.rt, &self.outlet, channel, msg).await {
            self.refuse(&topic, reason);
        }
    }

    /// Closes every channel whose token has expired, with the system message Supabase sends.
    pub fn expire(&mut self, now: i64) {
        let expired: Vec<(String, i64)> = self
            .channels
            .iter()
            .filter_map(|(t, c)| c.exp.filter(|e| *e <= now).map(|e| (t.clone(), now - e)))
            .collect();
        for (topic, ago) in expired {
            self.refuse(&topic, &format!("Token has expired {ago} seconds ago"));
        }
    }

    /// Leaves a channel: phx_close to the client, and out of the hub.
    fn close_channel(&mut self, topic: &str) {
        if let Some(c) = self.channels.remove(topic) {
            self.outlet.send(Message {
                join_ref: Some(c.join_ref.clone()),
                msg_ref: Some(c.join_ref),
                topic: topic.to_owned(),
                event: "phx_close".into(),
                payload: json!({}),
                raw: None,
                payload_text: None,
            });
            self.rt.hub.leave(&c.key, self.outlet.socket);
            self.rt.subscriptions.unsubscribe(topic, self.outlet.socket);
        }
    }

    /// Leaves every channel (the socket closed).
    pub fn close(&mut self) {
        for (topic, c) in self.channels.drain() {
            self.rt.hub.leave(&c.key, self.outlet.socket);
            self.rt
                .subscriptions
                .unsubscribe(&topic, self.outlet.socket);
        }
        self.channels.clear();
    }
}
