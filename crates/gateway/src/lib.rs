//! The PostgREST-compatible REST gateway served at `/rest/v1`.
//!
//! Each request becomes one parameterised SQL statement run in a transaction as the JWT's role,
//! so that PostgreSQL's row-level security decides what it may see and change.

use axum::Router;
use craftbase_shared::{ServiceContext, ServiceError};

/// The REST routes, with the `/rest/v1` prefix already stripped.
pub fn router(ctx: ServiceContext) -> Router {
    Router::new()
        .fallback(|| async {
            ServiceError::NotImplemented {
                service: "the REST gateway (/rest/v1)",
            }
        })
        .with_state(ctx)
}
