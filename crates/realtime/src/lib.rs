//! The Supabase-Realtime-compatible service served at `/realtime/v1`: Phoenix channels carrying
//! `postgres_changes`, broadcast and presence.

pub mod changes;
pub mod hub;
pub mod limits;
pub mod partitions;
pub mod private;
pub mod protocol;
pub mod replay;
mod rest;
pub mod session;
mod socket;
pub mod stats;
pub mod token;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use craftbase_shared::ServiceContext;

use changes::catalog::Catalog;
use hub::Hub;
use limits::Limits;

/// The `supabase_realtime` publication and the `realtime` schema (private-channel messages).
pub const SCHEMA_SQL: &str = include_str!("../sql/realtime.sql");

/// The index broadcast replay reads through; applied after `SCHEMA_SQL`.
pub const REPLAY_SQL: &str = include_str!("../sql/replay.sql");

/// Broadcast from the database: `realtime.messages` partitioned by day, `realtime.send`,
/// `realtime.send_binary`, `realtime.broadcast_changes` and their publication.
pub const BROADCAST_SQL: &str = include_str!("../sql/broadcast_from_database.sql");

/// The service's shared state: the context, who listens, and the catalog cache.
pub struct Realtime {
    pub ctx: ServiceContext,
    pub hub: Hub,
    pub catalog: Catalog,
    /// What each socket may cost.
    pub limits: Limits,
    streaming: AtomicBool,
    /// End LSN of the last transaction delivered: after a reconnect the slot may replay
    /// transactions whose acknowledgement had not reached the server, which are skipped.
    delivered_lsn: AtomicU64,
}

impl Realtime {
    /// State for `ctx` with limits from the environment, without starting replication (tests
    /// drive sessions directly).
    pub fn new(ctx: ServiceContext) -> Arc<Realtime> {
        Realtime::with_limits(ctx, Limits::from_env())
    }

    /// State for `ctx` with these limits.
    pub fn with_limits(ctx: ServiceContext, limits: Limits) -> Arc<Realtime> {
        Arc::new(Realtime {
            catalog: Catalog::new(ctx.admin.clone()),
            limits,
            ctx,
            hub: Hub::default(),
            streaming: AtomicBool::new(false),
            delivered_lsn: AtomicU64::new(0),
        })
    }

    /// Whether the replication stream is connected now (it has connected and not failed since).
    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    fn delivered(&self) -> u64 {
        self.delivered_lsn.load(Ordering::Relaxed)
    }

    fn mark_delivered(&self, lsn: u64) {
        self.delivered_lsn.fetch_max(lsn, Ordering::Relaxed);
    }

    fn replication_up(&self) {
        self.streaming.store(true, Ordering::Relaxed);
        metrics::gauge!(stats::REPLICATION_CONNECTED).set(1.0);
    }

    fn replication_down(&self) {
        self.streaming.store(false, Ordering::Relaxed);
        metrics::gauge!(stats::REPLICATION_CONNECTED).set(0.0);
    }
}

/// The realtime routes, with the `/realtime/v1` prefix already stripped. Starts the replication
/// task, which retries on its own when the database is unavailable.
pub fn router(ctx: ServiceContext) -> Router {
    serve(Realtime::new(ctx))
}

/// The routes over `rt`, after starting its replication task: for a caller that keeps the
/// state (craftbase's `/ready` and `/metrics` read it).
pub fn serve(rt: Arc<Realtime>) -> Router {
    tokio::spawn(changes::stream::run(rt.clone()));
    tokio::spawn(partitions::maintain(rt.ctx.admin.clone()));
    routes(rt)
}

/// The routes over existing state.
pub fn routes(rt: Arc<Realtime>) -> Router {
    Router::new()
        .route("/websocket", get(socket::upgrade))
        .route("/api/broadcast", post(rest::batch))
        .route("/api/broadcast/{topic}/events/{event}", post(rest::single))
        .with_state(rt)
}
