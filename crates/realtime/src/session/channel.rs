//! A joined channel's state, grouped by what each channel kind keeps per join: the hub key and
//! identity every kind uses, broadcast's `ack`, presence's key and call window, a private
//! channel's cached write decision, the `postgres_changes` bindings. The kind modules read and update it; `Session` keeps one per
//! joined topic.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::changes::subscribe::Binding;
use crate::identity::Identity;
use crate::limits::{Limits, Window};
use crate::protocol::Message;
use crate::token::Grant;

/// A joined channel.
pub(super) struct Channel {
    /// The hub key: private channels never share members with public ones of the same name.
    pub key: String,
    pub join_ref: String,
    pub sub_topic: String,
    pub identity: Arc<Identity>,
    pub exp: Option<i64>,
    /// Broadcast: whether each push is acknowledged (`config.broadcast.ack`).
    pub ack: bool,
    /// Presence: the key this socket's presence is tracked under.
    pub presence_key: String,
    /// Presence: calls in the current window (`CLIENT_PRESENCE_MAX_CALLS`).
    pub presence_calls: Window,
    /// Private channels (`config.private`) are authorized by `realtime.messages` policies.
    pub private: bool,
    /// Private: whether a write was authorized (checked on first send, per token).
    pub may_write: Option<bool>,
    /// `postgres_changes`: the join's bindings, subscribed again when the token changes.
    pub bindings: Vec<Binding>,
}

impl Channel {
    /// The channel a join opens: `key` in the hub, acting with `grant`, configured by the
    /// join's `config` (broadcast `ack`, presence `key`); its `bindings` are set by the caller.
    pub fn new(
        key: &str,
        join_ref: &str,
        sub_topic: &str,
        grant: &Grant,
        private: bool,
        config: &Value,
        limits: &Limits,
    ) -> Channel {
        let presence_key = config
            .pointer("/presence/key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Channel {
            key: key.to_owned(),
            join_ref: join_ref.to_owned(),
            sub_topic: sub_topic.to_owned(),
            identity: Arc::new(grant.identity.clone()),
            exp: grant.exp,
            ack: lenient_bool(config.pointer("/broadcast/ack")),
            presence_key,
            presence_calls: Window::new(limits.presence_max_calls, limits.presence_window),
            private,
            may_write: None,
            bindings: Vec::new(),
        }
    }

    /// The grant the channel acts with now: its current identity and expiry.
    pub fn grant(&self) -> Grant {
        Grant {
            identity: (*self.identity).clone(),
            claims: Map::new(),
            exp: self.exp,
        }
    }
}

/// A config flag as realtime-js may send it: `true` or `"true"`.
pub(super) fn lenient_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// A `system` push on `topic` within the join `join_ref`.
pub(super) fn system(topic: &str, join_ref: Option<&str>, body: Value) -> Message {
    let mut m = Message::push(topic, "system", body);
    m.join_ref = join_ref.map(str::to_owned);
    m
}
