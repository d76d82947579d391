//! The Supabase-Realtime-compatible service served at `/realtime/v1`: Phoenix channels carrying
//! `postgres_changes`, broadcast and presence.

use axum::Router;
use craftbase_shared::{ServiceContext, ServiceError};

/// The `supabase_realtime` publication and the `realtime` schema (private-channel messages).
pub const SCHEMA_SQL: &str = include_str!("../sql/realtime.sql");

/// The realtime routes, with the `/realtime/v1` prefix already stripped.
pub fn router(ctx: ServiceContext) -> Router {
    Router::new()
        .fallback(|| async {
            ServiceError::NotImplemented {
                service: "realtime (/realtime/v1)",
            }
        })
        .with_state(ctx)
}
