//! The GoTrue-compatible auth service served at `/auth/v1`: users, sessions, tokens, email flows.

use axum::Router;
use craftbase_shared::{ServiceContext, ServiceError};

/// The `auth` schema GoTrue has (users, identities, sessions, refresh tokens) and the
/// `auth.uid()` family of functions RLS policies call.
pub const SCHEMA_SQL: &str = include_str!("../sql/auth_schema.sql");

/// The auth routes, with the `/auth/v1` prefix already stripped.
pub fn router(ctx: ServiceContext) -> Router {
    Router::new()
        .fallback(|| async {
            ServiceError::NotImplemented {
                service: "auth (/auth/v1)",
            }
        })
        .with_state(ctx)
}
