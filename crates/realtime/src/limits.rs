//! What one websocket may cost: frame and payload sizes, channels, joins, events and presence
//! calls, bindings per join, topic length, queued bytes and how long a write may wait. Read
//! from Supabase Realtime's environment names where it has one (`TENANT_MAX_*`,
//! `CLIENT_PRESENCE_*`); craftbase's own use `REALTIME_*`. Supabase counts most of these per
//! tenant; craftbase counts them per socket (the crate README lists where it is stricter).

use std::time::{Duration, Instant};

/// The limits of every socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A broadcast's or a presence track's payload, in bytes (`REALTIME_MAX_PAYLOAD_SIZE_IN_KB`,
    /// kB of 1,000 bytes as Supabase's `max_payload_size_in_kb`; default 256, Supabase's
    /// Free-plan value).
    pub max_payload_bytes: usize,
    /// Channels joined at once on one socket (`TENANT_MAX_CHANNELS_PER_CLIENT`, 100).
    pub max_channels: usize,
    /// Joins per second on one socket (`TENANT_MAX_JOINS_PER_SECOND`, 100).
    pub max_joins_per_second: u32,
    /// Other client messages per second on one socket (`TENANT_MAX_EVENTS_PER_SECOND`, 100).
    pub max_events_per_second: u32,
    /// Presence calls per channel per window (`CLIENT_PRESENCE_MAX_CALLS`, 5) ...
    pub presence_max_calls: u32,
    /// ... and that window (`CLIENT_PRESENCE_WINDOW_MS`, 30,000).
    pub presence_window: Duration,
    /// `postgres_changes` bindings of one join (`REALTIME_MAX_BINDINGS_PER_CHANNEL`, 100).
    pub max_bindings: usize,
    /// A topic's length in bytes (`REALTIME_MAX_TOPIC_BYTES`, 255: the binary frames' limit).
    pub max_topic_bytes: usize,
    /// Bytes queued for one socket before it is closed as too slow
    /// (`REALTIME_SOCKET_QUEUE_BYTES`, 8 MiB).
    pub queue_bytes: usize,
    /// How long one write to a socket may wait before the socket is dropped
    /// (`REALTIME_SEND_TIMEOUT_MS`, 10,000).
    pub send_timeout: Duration,
    /// Client events per second across the whole project: every socket's broadcasts and
    /// presence calls and REST broadcast messages, on every node in cluster mode
    /// (`REALTIME_TENANT_MAX_EVENTS_PER_SECOND`; unset: no project-wide limit). Counted by
    /// `tenant`.
    pub tenant_max_events_per_second: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 256 * 1000,
            max_channels: 100,
            max_joins_per_second: 100,
            max_events_per_second: 100,
            presence_max_calls: 5,
            presence_window: Duration::from_millis(30_000),
            max_bindings: 100,
            max_topic_bytes: 255,
            queue_bytes: 8 << 20,
            send_timeout: Duration::from_secs(10),
            tenant_max_events_per_second: None,
        }
    }
}

/// Room in a frame around its payload: refs, topic, event, metadata and the JSON around them.
const ENVELOPE_BYTES: usize = 16 * 1024;

impl Limits {
    /// The defaults, overridden by the environment; an unreadable or zero value keeps the
    /// default (and is logged).
    pub fn from_env() -> Limits {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As `from_env`, reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Limits {
        let d = Limits::default();
        let num = |name: &str, default: u64| -> u64 {
            match get(name).map(|v| v.trim().parse::<u64>()) {
                None => default,
                Some(Ok(n)) if n > 0 => n,
                Some(_) => {
                    tracing::warn!(variable = name, "not a positive integer; default kept");
                    default
                }
            }
        };
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let rate = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Limits {
            max_payload_bytes: size(num("REALTIME_MAX_PAYLOAD_SIZE_IN_KB", 256))
                .saturating_mul(1000),
            max_channels: size(num("TENANT_MAX_CHANNELS_PER_CLIENT", d.max_channels as u64)),
            max_joins_per_second: rate(num(
                "TENANT_MAX_JOINS_PER_SECOND",
                d.max_joins_per_second.into(),
            )),
            max_events_per_second: rate(num(
                "TENANT_MAX_EVENTS_PER_SECOND",
                d.max_events_per_second.into(),
            )),
            presence_max_calls: rate(num(
                "CLIENT_PRESENCE_MAX_CALLS",
                d.presence_max_calls.into(),
            )),
            presence_window: Duration::from_millis(num("CLIENT_PRESENCE_WINDOW_MS", 30_000)),
            max_bindings: size(num(
                "REALTIME_MAX_BINDINGS_PER_CHANNEL",
                d.max_bindings as u64,
            )),
            max_topic_bytes: size(num("REALTIME_MAX_TOPIC_BYTES", d.max_topic_bytes as u64)),
            queue_bytes: size(num("REALTIME_SOCKET_QUEUE_BYTES", d.queue_bytes as u64)),
            send_timeout: Duration::from_millis(num("REALTIME_SEND_TIMEOUT_MS", 10_000)),
            tenant_max_events_per_second: get("REALTIME_TENANT_MAX_EVENTS_PER_SECOND")
                .map(|_| rate(num("REALTIME_TENANT_MAX_EVENTS_PER_SECOND", 0)))
                .filter(|n| *n > 0),
        }
    }

    /// The largest websocket message (and frame) read: a payload at its limit and its envelope.
    /// A larger one closes the socket with 1009.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_payload_bytes.saturating_add(ENVELOPE_BYTES)
    }
}

/// A count of events in fixed windows: at most `max` per `window`.
#[derive(Debug, Clone)]
pub struct Window {
    max: u32,
    window: Duration,
    start: Option<Instant>,
    count: u32,
}

impl Window {
    pub fn new(max: u32, window: Duration) -> Window {
        Window {
            max,
            window,
            start: None,
            count: 0,
        }
    }

    /// Counts one event at `now`; false when it is over the limit (and is not counted).
    pub fn hit(&mut self, now: Instant) -> bool {
        match self.start {
            Some(s) if now.saturating_duration_since(s) < self.window => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        if self.count >= self.max {
            return false;
        }
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_override_defaults() {
        let env = |name: &str| match name {
            "TENANT_MAX_CHANNELS_PER_CLIENT" => Some("3".to_owned()),
            "REALTIME_MAX_PAYLOAD_SIZE_IN_KB" => Some("10".to_owned()),
            "CLIENT_PRESENCE_WINDOW_MS" => Some("1000".to_owned()),
            "TENANT_MAX_JOINS_PER_SECOND" => Some("zero".to_owned()),
            "TENANT_MAX_EVENTS_PER_SECOND" => Some("0".to_owned()),
            "REALTIME_TENANT_MAX_EVENTS_PER_SECOND" => Some("30".to_owned()),
            _ => None,
        };
        let l = Limits::from_lookup(env);
        assert_eq!(l.max_channels, 3);
        assert_eq!(l.max_payload_bytes, 10_000);
        assert_eq!(l.max_frame_bytes(), 10_000 + ENVELOPE_BYTES);
        assert_eq!(l.presence_window, Duration::from_secs(1));
        assert_eq!(l.max_joins_per_second, 100, "unreadable: default");
        assert_eq!(l.max_events_per_second, 100, "zero: default");
        assert_eq!(l.tenant_max_events_per_second, Some(30));
        let zero =
            |name: &str| (name == "REALTIME_TENANT_MAX_EVENTS_PER_SECOND").then(|| "0".to_owned());
        assert_eq!(
            Limits::from_lookup(zero).tenant_max_events_per_second,
            None,
            "zero: none"
        );
        assert_eq!(Limits::from_lookup(|_| None), Limits::default());
    }

    #[test]
    fn a_window_allows_max_then_refuses_until_it_ends() {
        let mut w = Window::new(2, Duration::from_secs(1));
        let t = Instant::now();
        assert!(w.hit(t));
        assert!(w.hit(t));
        assert!(!w.hit(t));
        assert!(!w.hit(t + Duration::from_millis(999)));
        assert!(w.hit(t + Duration::from_secs(1)));
    }
}
