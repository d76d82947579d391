//! The PostgREST-compatible REST gateway served at `/rest/v1`.
//!
//! Each request becomes one parameterised SQL statement run in a transaction as the JWT's role,
//! so that PostgreSQL's row-level security decides what it may see and change. The flow of a
//! request reads top to bottom in `handler`: authenticate → parse → plan → execute → respond.

mod auth;
pub mod config;
mod error;
mod execute;
mod handler;
mod plan;
mod preferences;
pub mod query;
pub mod replica;
mod response;
mod role_claim;
pub mod schema_cache;
mod sql;
mod suggestion;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use craftbase_shared::ServiceContext;

pub use config::{GatewayConfig, GatewaySettings};

/// The event trigger that reloads the schema cache after DDL, applied as a migration.
pub const SCHEMA_SQL: &str = include_str!("../sql/schema_reload.sql");
pub use error::ApiError;
use schema_cache::SchemaCacheHandle;

/// What every request shares.
pub struct Gateway {
    ctx: ServiceContext,
    config: GatewayConfig,
    cache: SchemaCacheHandle,
    tokens: auth::TokenCache,
}

/// The REST routes, with the `/rest/v1` prefix already stripped; settings from the environment.
pub fn router(ctx: ServiceContext) -> Router {
    let config =
        GatewayConfig::from_env().unwrap_or_else(|e| panic!("invalid gateway setting: {e}"));
    router_with(ctx, config)
}

/// The REST routes with explicit settings. Starts the schema cache's loader, so it must be
/// called inside a Tokio runtime.
pub fn router_with(ctx: ServiceContext, config: GatewayConfig) -> Router {
    // The listener needs its own connection; the owner's conninfo reaches the same database.
    let listen = ctx.admin_conninfo.parse::<tokio_postgres::Config>().ok();
    let cache = schema_cache::spawn(
        ctx.db.clone(),
        listen,
        config.schemas.clone(),
        config.extra_search_path.clone(),
    );
    let gateway = Arc::new(Gateway {
        ctx,
        config,
        cache,
        tokens: auth::TokenCache::default(),
    });
    Router::new()
        .fallback(handler::handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(gateway)
}
