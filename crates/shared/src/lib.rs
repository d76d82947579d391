//! What every craftbase service shares: API keys and JWT verification, the database pool and the
//! JSON error every service answers with.

pub mod error;
pub mod keys;
pub mod pool;
pub mod shutdown;
pub mod standalone;

pub use error::ServiceError;
/// The platform roles and their grants, applied before any service's own SQL.
pub const ROLES_SQL: &str = include_str!("../sql/roles.sql");

pub use keys::{ApiKeys, Claims, JwtError, JwtVerifier};

/// What a service needs to serve requests, built once at start-up and shared by reference.
#[derive(Clone)]
pub struct ServiceContext {
    /// Pool of connections as the `authenticator` role (or `DATABASE_URL`'s role).
    pub db: deadpool_postgres::Pool,
    /// Verifies the JWTs clients present.
    pub jwt: std::sync::Arc<JwtVerifier>,
    /// The anon and service_role keys and the secret they are signed with.
    pub keys: std::sync::Arc<ApiKeys>,
}
