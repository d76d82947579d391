//! What realtime reports to the `metrics` facade (rendered by `craftbase` at `/metrics`; a
//! no-op in the standalone binary, which installs no recorder). Counted per delivery round,
//! not per message, so a broadcast to many sockets costs one update.

/// Open websockets.
pub const SOCKETS: &str = "craftbase_realtime_sockets";
/// Messages queued to sockets, by `kind`: postgres_changes, broadcast, presence.
pub const DELIVERIES: &str = "craftbase_realtime_deliveries_total";
/// 1 while the replication stream is connected, 0 otherwise.
pub const REPLICATION_CONNECTED: &str = "craftbase_realtime_replication_connected";

/// What a delivery carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    PostgresChanges,
    Broadcast,
    /// `presence_state` after a join and every `presence_diff`.
    Presence,
}

impl Delivery {
    pub fn label(self) -> &'static str {
        match self {
            Delivery::PostgresChanges => "postgres_changes",
            Delivery::Broadcast => "broadcast",
            Delivery::Presence => "presence",
        }
    }
}

/// `count` messages of `kind` were queued to sockets.
pub fn delivered(kind: Delivery, count: usize) {
    if count > 0 {
        metrics::counter!(DELIVERIES, "kind" => kind.label()).increment(count as u64);
    }
}

/// Counts a websocket as open for as long as it lives.
pub struct OpenSocket(());

impl OpenSocket {
    pub fn new() -> OpenSocket {
        metrics::gauge!(SOCKETS).increment(1.0);
        OpenSocket(())
    }
}

impl Default for OpenSocket {
    fn default() -> Self {
        OpenSocket::new()
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!(SOCKETS).decrement(1.0);
    }
}
