//! The Supabase-Realtime-compatible service served at `/realtime/v1`: Phoenix channels carrying
//! `postgres_changes`, broadcast and presence.

pub mod changes;
pub mod cluster;
pub mod hub;
pub mod identity;
pub mod limits;
mod memory;
mod mutex;
pub mod node;
pub mod outlet;
pub mod partitions;
pub mod peer;
pub mod preview;
pub mod private;
pub mod protocol;
pub mod replay;
mod rest;
pub mod service;
pub mod session;
mod socket;
pub mod stats;
pub mod tenant;
pub mod token;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use craftbase_shared::ServiceContext;

pub use service::Realtime;

/// The `supabase_realtime` publication and the `realtime` schema (private-channel messages).
pub const SCHEMA_SQL: &str = include_str!("../sql/realtime.sql");

/// The index broadcast replay reads through; applied after `SCHEMA_SQL`.
pub const REPLAY_SQL: &str = include_str!("../sql/replay.sql");

/// Broadcast from the database: `realtime.messages` partitioned by day, `realtime.send`,
/// `realtime.send_binary`, `realtime.broadcast_changes` and their publication.
pub const BROADCAST_SQL: &str = include_str!("../sql/broadcast_from_database.sql");

/// The per-message check of stored private broadcasts (`changes::broadcast`); applied after
/// `BROADCAST_SQL`.
pub const BROADCAST_AUTHORIZATION_SQL: &str = include_str!("../sql/broadcast_authorization.sql");

/// The realtime routes, with the `/realtime/v1` prefix already stripped. Starts the replication
/// task, which retries on its own when the database is unavailable.
pub fn router(ctx: ServiceContext) -> Router {
    serve(Realtime::new(ctx))
}

/// The routes over `rt`, after starting its replication task: for a caller that keeps the
/// state (craftbase's `/ready` and `/metrics` read it).
pub fn serve(rt: Arc<Realtime>) -> Router {
    if rt.cluster.is_some() {
        cluster::spawn(&rt);
    } else {
        tokio::spawn(changes::stream::run(rt.clone()));
    }
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
