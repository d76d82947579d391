//! One websocket's Phoenix state machine (§3.3, §3.4): heartbeats, joins with their config,
//! leaves, `access_token` renewals, broadcast and presence pushes, and closing channels whose
//! token expired. Everything it says goes through the socket's outlet, so it runs the same
//! against a real websocket or an in-memory receiver in tests.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::changes::subscribe::{self, Binding};
use crate::hub::{Identity, Outlet};
use crate::private;
use crate::protocol::Message;
use crate::replay;
use crate::token::{self, Grant};
use crate::Realtime;

/// A joined channel.
struct Channel {
    /// The hub key: private channels never share members with public ones of the same name.
    key: String,
    join_ref: String,
    sub_topic: String,
    identity: Arc<Identity>,
    exp: Option<i64>,
    presence_key: String,
    ack: bool,
    private: bool,
    /// Whether a write to this private channel was authorized (checked on first send).
    may_write: Option<bool>,
}

/// The state of one socket.
pub struct Session {
    rt: Arc<Realtime>,
    outlet: Outlet,
    /// The connect-time apikey, used when a join carries no `access_token`.
    apikey: Option<String>,
    channels: HashMap<String, Channel>,
}

/// The hub key of a channel.
pub fn hub_key(topic: &str, private: bool) -> String {
    if private {
        format!("private|{topic}")
    } else {
        topic.to_owned()
    }
}

fn lenient_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl Session {
    pub fn new(rt: Arc<Realtime>, outlet: Outlet, apikey: Option<String>) -> Session {
        Session {
            rt,
            outlet,
            apikey,
            channels: HashMap::new(),
        }
    }

    /// Handles one message from the client.
    pub async fn handle(&mut self, msg: Message) {
        match (msg.topic.as_str(), msg.event.as_str()) {
            ("phoenix", "heartbeat") => self.outlet.send(msg.reply("ok", json!({}))),
            (_, "phx_join") => self.join(msg).await,
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
            (_, "broadcast") => self.broadcast(msg).await,
            (_, "presence") => self.presence(msg).await,
            _ => self.outlet.send(msg.reply("ok", json!({}))),
        }
    }

    /// Whether `msg` belongs to the channel's current join.
    fn is_current(&self, msg: &Message) -> bool {
        self.channels
            .get(&msg.topic)
            .is_some_and(|c| msg.join_ref.is_none() || msg.join_ref.as_deref() == Some(&c.join_ref))
    }

    async fn join(&mut self, msg: Message) {
        let Some(sub_topic) = msg
            .topic
            .strip_prefix("realtime:")
            .filter(|t| !t.is_empty())
        else {
            return self.outlet.send(msg.reply(
                "error",
                json!({"reason": "TopicNameRequired: You must provide a topic name"}),
            ));
        };
        let sub_topic = sub_topic.to_owned();
        if self.channels.contains_key(&msg.topic) {
            self.close_channel(&msg.topic);
        }
        let join_ref = msg
            .join_ref
            .clone()
            .or_else(|| msg.msg_ref.clone())
            .unwrap_or_default();
        let config = msg.payload.get("config").cloned().unwrap_or(Value::Null);
        let grant = match self.grant(msg.payload.get("access_token")) {
            Ok(g) => g,
            Err(e) => {
                return self
                    .outlet
                    .send(msg.reply("error", json!({"reason": format!("InvalidJWTToken: {e}")})))
            }
        };
        tracing::debug!(topic = %msg.topic, role = %grant.identity.role, has_token = msg.payload.get("access_token").is_some(), "join");
        let private = lenient_bool(config.get("private"));
        if private {
            match private::may_read(&self.rt, &grant, &sub_topic).await {
                Ok(true) => {}
                Ok(false) => {
                    return self.outlet.send(msg.reply(
                        "error",
                        json!({"reason": format!("Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}")}),
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "private channel check failed");
                    return self.outlet.send(msg.reply(
                        "error",
                        json!({"reason": "Unknown Error on Channel"}),
                    ));
                }
            }
        }
        let replayed = match self
            .replay(&config, private, &grant, &sub_topic, &msg.topic)
            .await
        {
            Ok(r) => r,
            Err(refusal) => {
                return self
                    .outlet
                    .send(msg.reply("error", json!({"reason": refusal.reason()})))
            }
        };
        let broadcast = config.get("broadcast").cloned().unwrap_or(Value::Null);
        let presence = config.get("presence").cloned().unwrap_or(Value::Null);
        let presence_key = presence
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let bindings: Vec<Value> = config
            .get("postgres_changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let identity = Arc::new(grant.identity.clone());
        let key = hub_key(&msg.topic, private);
        let channel = Channel {
            key: key.clone(),
            join_ref: join_ref.clone(),
            sub_topic: sub_topic.clone(),
            identity: identity.clone(),
            exp: grant.exp,
            presence_key,
            ack: lenient_bool(broadcast.get("ack")),
            private,
            may_write: None,
        };
        self.rt.hub.join(
            &key,
            &msg.topic,
            self.outlet.clone(),
            &join_ref,
            lenient_bool(broadcast.get("self")),
        );
        self.channels.insert(msg.topic.clone(), channel);

        let parsed: Vec<Binding> = bindings.iter().map(Binding::from_config).collect();
        let reply: Vec<Value> = bindings
            .iter()
            .zip(&parsed)
            .map(|(raw, b)| {
                let mut echoed = raw.as_object().cloned().unwrap_or_default();
                echoed.insert("id".into(), json!(b.id));
                Value::Object(echoed)
            })
            .collect();
        self.outlet
            .send(msg.reply("ok", json!({ "postgres_changes": reply })));

        for m in replayed {
            self.outlet.send(m);
        }

        if lenient_bool(presence.get("enabled")) {
            let mut state = Message::push(
                &msg.topic,
                "presence_state",
                self.rt.hub.presence_state(&key),
            );
            state.join_ref = Some(join_ref.clone());
            self.outlet.send(state);
        }

        if !parsed.is_empty() {
            let result =
                subscribe::register(&self.rt, &self.outlet, &msg.topic, &parsed, identity).await;
            let body = match result {
                Ok(()) => json!({"extension": "postgres_changes", "status": "ok",
                                  "message": "Subscribed to PostgreSQL", "channel": sub_topic}),
                Err(e) => json!({"extension": "postgres_changes", "status": "error",
                                  "message": e.to_string(), "channel": sub_topic}),
            };
            self.system(&msg.topic, body);
        }
    }

    /// The stored broadcasts a join asked to replay, read before the join is answered so a
    /// refusal can still fail it.
    async fn replay(
        &self,
        config: &Value,
        private: bool,
        grant: &Grant,
        sub_topic: &str,
        topic: &str,
    ) -> Result<Vec<Message>, replay::Refusal> {
        let Some(req) = replay::request(config, private)? else {
            return Ok(Vec::new());
        };
        replay::messages(&self.rt, grant, sub_topic, topic, req)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "broadcast replay failed");
                replay::Refusal::Failed
            })
    }

    /// The grant of the join's `access_token`, or of the connect-time apikey.
    fn grant(&self, access_token: Option<&Value>) -> Result<Grant, token::TokenError> {
        let token = access_token
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("sb_"))
            .or(self.apikey.as_deref())
            .unwrap_or("");
        token::check(&self.rt.ctx.jwt, &self.rt.ctx.roles, token)
    }

    async fn renew(&mut self, msg: Message) {
        let Some(token) = msg
            .payload
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.starts_with("sb_"))
        else {
            return;
        };
        let grant = match token::check(&self.rt.ctx.jwt, &self.rt.ctx.roles, token) {
            Ok(g) => {
                tracing::debug!(topic = %msg.topic, role = %g.identity.role, "access token renewed");
                g
            }
            Err(e) => return self.refuse(&msg.topic, &e.to_string()),
        };
        let Some(channel) = self.channels.get(&msg.topic) else {
            return;
        };
        if channel.private {
            let sub = channel.sub_topic.clone();
            if !private::may_read(&self.rt, &grant, &sub)
                .await
                .unwrap_or(false)
            {
                return self.refuse(
                    &msg.topic,
                    &format!("You do not have permissions to read from this Channel topic: {sub}"),
                );
            }
        }
        let identity = Arc::new(grant.identity);
        if let Some(channel) = self.channels.get_mut(&msg.topic) {
            channel.exp = grant.exp;
            channel.may_write = None;
            if channel.identity != identity {
                channel.identity = identity.clone();
                self.rt
                    .hub
                    .reidentify(&msg.topic, self.outlet.socket, identity);
            }
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
        let mut m = Message::push(topic, "system", body);
        m.join_ref = self.channels.get(topic).map(|c| c.join_ref.clone());
        self.outlet.send(m);
    }

    async fn broadcast(&mut self, msg: Message) {
        let Some(channel) = self.channels.get(&msg.topic) else {
            return;
        };
        let ack = channel.ack;
        if channel.private && channel.may_write.is_none() {
            let grant = Grant {
                identity: (*channel.identity).clone(),
                claims: Map::new(),
                exp: channel.exp,
            };
            let sub = channel.sub_topic.clone();
            let allowed = private::may_write(&self.rt, &grant, &sub, "broadcast")
                .await
                .unwrap_or(false);
            if let Some(c) = self.channels.get_mut(&msg.topic) {
                c.may_write = Some(allowed);
            }
        }
        let channel = &self.channels[&msg.topic];
        if channel.private && channel.may_write != Some(true) {
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
        self.rt.hub.broadcast(
            &channel.key,
            Some(self.outlet.socket),
            &payload,
            msg.raw.as_ref(),
        );
        if ack {
            self.outlet.send(msg.reply("ok", json!({})));
        }
    }

    async fn presence(&mut self, msg: Message) {
        let Some(channel) = self.channels.get(&msg.topic) else {
            return;
        };
        if channel.private {
            let grant = Grant {
                identity: (*channel.identity).clone(),
                claims: Map::new(),
                exp: channel.exp,
            };
            let sub = channel.sub_topic.clone();
            if !private::may_write(&self.rt, &grant, &sub, "presence")
                .await
                .unwrap_or(false)
            {
                return self
                    .outlet
                    .send(msg.reply("error", json!({"reason": "Unauthorized"})));
            }
        }
        let channel = &self.channels[&msg.topic];
        match msg.payload.get("event").and_then(Value::as_str) {
            Some("track") => {
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
            Some("untrack") => {
                self.rt.hub.untrack(&channel.key, self.outlet.socket);
                self.outlet.send(msg.reply("ok", json!({})));
            }
            _ => self
                .outlet
                .send(msg.reply("error", json!({"reason": "unknown presence event"}))),
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
            self.rt.hub.unsubscribe(topic, self.outlet.socket);
        }
    }

    /// Leaves every channel (the socket closed).
    pub fn close(&mut self) {
        for (topic, c) in self.channels.drain() {
            self.rt.hub.leave(&c.key, self.outlet.socket);
            self.rt.hub.unsubscribe(&topic, self.outlet.socket);
        }
        self.channels.clear();
    }
}

/// The state machine without a database: joins without postgres_changes or private channels,
/// heartbeats, leaves, broadcast, presence and tokens never reach the pools.
#[cfg(test)]
mod tests {
    use super::*;
    use craftbase_shared::keys::{sign, ApiKeys};
    use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
    use tokio::sync::mpsc;

    const SECRET: &str = "session-test-secret-of-enough-length-0123456789";

    fn realtime() -> Arc<Realtime> {
        // Pools connect lazily; these tests never use them.
        let nowhere = tokio_postgres::Config::new();
        Realtime::new(ServiceContext {
            db: pool::build(nowhere.clone(), 1),
            admin: pool::build(nowhere, 1),
            admin_conninfo: String::new(),
            jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
            keys: Arc::new(ApiKeys::mint(SECRET, token::now() as u64).unwrap()),
            roles: Arc::new(RoleSwitch::new(
                ["anon", "authenticated", "service_role"].map(String::from),
            )),
        })
    }

    fn socket(rt: &Arc<Realtime>) -> (Session, mpsc::Receiver<Message>) {
        let (outlet, rx, _) = Outlet::new(rt.hub.socket_id());
        let anon = rt.ctx.keys.anon_key.clone();
        (Session::new(rt.clone(), outlet, Some(anon)), rx)
    }

    fn m(join_ref: Option<&str>, r: &str, topic: &str, event: &str, payload: Value) -> Message {
        Message {
            join_ref: join_ref.map(str::to_owned),
            msg_ref: Some(r.to_owned()),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            raw: None,
            payload_text: None,
        }
    }

    fn take(rx: &mut mpsc::Receiver<Message>) -> Vec<Message> {
        let mut out = Vec::new();
        while let Ok(msg) = rx.try_recv() {
            out.push(msg);
        }
        out
    }

    fn user(exp_in: i64) -> String {
        sign(
            SECRET,
            &json!({"sub": "u1", "role": "authenticated", "exp": token::now() + exp_in}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn heartbeat_join_leave_and_unmatched_topics() {
        let rt = realtime();
        let (mut s, mut rx) = socket(&rt);
        s.handle(m(None, "1", "phoenix", "heartbeat", json!({})))
            .await;
        let out = take(&mut rx);
        assert_eq!(out[0].event, "phx_reply");
        assert_eq!(out[0].payload, json!({"status": "ok", "response": {}}));

        s.handle(m(Some("2"), "3", "realtime:room", "broadcast", json!({})))
            .await;
        let out = take(&mut rx);
        assert_eq!(
            out[0].payload,
            json!({"status": "error", "response": {"reason": "unmatched topic"}})
        );
        assert_eq!(out[0].join_ref, None);

        s.handle(m(
            Some("4"),
            "4",
            "realtime:room",
            "phx_join",
            json!({"config": {}}),
        ))
        .await;
        let out = take(&mut rx);
        assert_eq!(
            out[0].payload,
            json!({"status": "ok", "response": {"postgres_changes": []}})
        );
        assert_eq!(out[0].join_ref.as_deref(), Some("4"));

        s.handle(m(Some("4"), "5", "realtime:room", "phx_leave", json!({})))
            .await;
        let out = take(&mut rx);
        assert_eq!(out[0].event, "phx_reply");
        assert_eq!(out[1].event, "phx_close");
        assert_eq!(
            (out[1].join_ref.as_deref(), out[1].msg_ref.as_deref()),
            (Some("4"), Some("4"))
        );
    }

    #[tokio::test]
    async fn join_refusals_carry_supabase_reasons() {
        let rt = realtime();
        let (mut s, mut rx) = socket(&rt);
        s.handle(m(Some("1"), "1", "realtime:", "phx_join", json!({})))
            .await;
        assert_eq!(
            take(&mut rx)[0].payload["response"]["reason"],
            "TopicNameRequired: You must provide a topic name"
        );
        let expired = user(-30);
        s.handle(m(
            Some("2"),
            "2",
            "realtime:a",
            "phx_join",
            json!({"access_token": expired}),
        ))
        .await;
        let reason = take(&mut rx)[0].payload["response"]["reason"].clone();
        assert!(
            reason
                .as_str()
                .unwrap()
                .starts_with("InvalidJWTToken: Token has expired"),
            "{reason}"
        );
        s.handle(m(
            Some("3"),
            "3",
            "realtime:a",
            "phx_join",
            json!({"access_token": "x.y.z"}),
        ))
        .await;
        assert_eq!(
            take(&mut rx)[0].payload["response"]["reason"],
            "InvalidJWTToken: Failed to validate JWT signature"
        );
    }

    #[tokio::test]
    async fn bindings_are_echoed_in_order_with_ids() {
        let rt = realtime();
        let (mut s, mut rx) = socket(&rt);
        let bindings = json!([
            {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.5"},
            {"event": "*", "schema": "public"},
            {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.5"}
        ]);
        s.handle(m(
            Some("1"),
            "1",
            "realtime:db",
            "phx_join",
            json!({"config": {"postgres_changes": bindings}}),
        ))
        .await;
        let reply = &take(&mut rx)[0];
        let echoed = reply.payload["response"]["postgres_changes"]
            .as_array()
            .unwrap();
        assert_eq!(echoed.len(), 3);
        assert_eq!(echoed[0]["filter"], "id=eq.5");
        assert_eq!(echoed[1]["event"], "*");
        assert!(
            echoed[1].get("table").is_none(),
            "the client's own map, echoed"
        );
        assert!(echoed[0]["id"].as_u64().unwrap() > 0);
        assert_eq!(
            echoed[0]["id"], echoed[2]["id"],
            "equal bindings share an id"
        );
        assert_ne!(echoed[0]["id"], echoed[1]["id"]);
    }

    #[tokio::test]
    async fn broadcast_self_ack_and_presence() {
        let rt = realtime();
        let (mut a, mut rx_a) = socket(&rt);
        let (mut b, mut rx_b) = socket(&rt);
        let cfg = |self_: bool, key: &str| json!({"config": {"broadcast": {"self": self_, "ack": true}, "presence": {"key": key, "enabled": true}}});
        a.handle(m(
            Some("1"),
            "1",
            "realtime:room",
            "phx_join",
            cfg(false, "a"),
        ))
        .await;
        b.handle(m(
            Some("9"),
            "9",
            "realtime:room",
            "phx_join",
            cfg(true, "b"),
        ))
        .await;
        take(&mut rx_a);
        let joined_b = take(&mut rx_b);
        assert_eq!(joined_b[1].event, "presence_state");

        let push = json!({"type": "broadcast", "event": "ev", "payload": {"x": 1}});
        a.handle(m(
            Some("1"),
            "2",
            "realtime:room",
            "broadcast",
            push.clone(),
        ))
        .await;
        let to_a = take(&mut rx_a);
        assert_eq!(
            to_a.len(),
            1,
            "no echo without self, only the ack: {to_a:?}"
        );
        assert_eq!(to_a[0].event, "phx_reply");
        let to_b = take(&mut rx_b);
        assert_eq!(to_b[0].event, "broadcast");
        assert_eq!(to_b[0].payload, push);

        b.handle(m(
            Some("9"),
            "10",
            "realtime:room",
            "broadcast",
            push.clone(),
        ))
        .await;
        let to_b = take(&mut rx_b);
        assert!(to_b.iter().any(|x| x.event == "broadcast"), "self echo");

        let track = json!({"type": "presence", "event": "track", "payload": {"status": "on"}});
        a.handle(m(Some("1"), "3", "realtime:room", "presence", track))
            .await;
        let to_b = take(&mut rx_b);
        let diff = to_b.iter().find(|x| x.event == "presence_diff").unwrap();
        assert_eq!(diff.payload["joins"]["a"]["metas"][0]["status"], "on");
        assert_eq!(diff.join_ref.as_deref(), Some("9"));
        a.close();
        let to_b = take(&mut rx_b);
        let diff = to_b.iter().find(|x| x.event == "presence_diff").unwrap();
        assert_eq!(diff.payload["leaves"]["a"]["metas"][0]["status"], "on");
    }

    #[tokio::test]
    async fn expiry_closes_and_renewal_extends() {
        let rt = realtime();
        let (mut s, mut rx) = socket(&rt);
        let short = user(5);
        s.handle(m(
            Some("1"),
            "1",
            "realtime:a",
            "phx_join",
            json!({"access_token": short}),
        ))
        .await;
        s.handle(m(
            Some("2"),
            "2",
            "realtime:b",
            "phx_join",
            json!({"access_token": short}),
        ))
        .await;
        take(&mut rx);
        s.handle(m(
            Some("1"),
            "3",
            "realtime:a",
            "access_token",
            json!({"access_token": user(3600)}),
        ))
        .await;
        s.expire(token::now() + 10);
        let out = take(&mut rx);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].topic, "realtime:b");
        assert_eq!(out[0].event, "system");
        assert_eq!(out[0].payload["extension"], "system");
        assert_eq!(out[0].payload["status"], "error");
        assert!(out[0].payload["message"]
            .as_str()
            .unwrap()
            .starts_with("Token has expired"));
        assert_eq!(out[1].event, "phx_close");

        s.handle(m(
            Some("1"),
            "4",
            "realtime:a",
            "access_token",
            json!({"access_token": "bad"}),
        ))
        .await;
        let out = take(&mut rx);
        assert_eq!(out[0].event, "system");
        assert_eq!(out[1].event, "phx_close");
    }

    #[tokio::test]
    async fn a_full_queue_signals_overflow_instead_of_blocking() {
        let (outlet, _rx, overflow) = Outlet::new(1);
        for _ in 0..crate::hub::SOCKET_QUEUE + 1 {
            outlet.send(Message::push("t", "e", json!({})));
        }
        tokio::time::timeout(std::time::Duration::from_secs(1), overflow.notified())
            .await
            .expect("overflow notified");
    }
}
