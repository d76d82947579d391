//! What every craftbase service shares: API keys and JWT verification, the roles a request may
//! run as, the database pools and the JSON error every service answers with.

pub mod error;
pub mod key_lease;
pub mod key_set;
pub mod keys;
pub mod pool;
pub mod role;
pub mod server;
pub mod shutdown;
pub mod standalone;

/// The platform roles and their grants, applied before any service's own SQL.
pub const ROLES_SQL: &str = include_str!("../sql/roles.sql");

/// Supabase's statement timeouts for the request roles (anon 3s, authenticated 8s, authenticator
/// 8s) and JIT off, set only where a role has none yet; applied right after [`ROLES_SQL`].
pub const ROLE_LIMITS_SQL: &str = include_str!("../sql/role_limits.sql");

/// Where the `authenticator` role's password is kept, so that every node on one database logs
/// in with the same one.
pub const AUTHENTICATOR_PASSWORD_SQL: &str = include_str!("../sql/authenticator_password.sql");

pub use error::ServiceError;
pub use keys::{ApiKeys, Claims, JwtError, JwtVerifier, KeySet, KeySetError};
pub use role::{RoleError, RoleSwitch};

use std::sync::Arc;

/// What a service needs to serve requests, built once at start-up and shared by reference.
#[derive(Clone)]
pub struct ServiceContext {
    /// Connections as `authenticator`, which switches to the request's role: REST requests and
    /// realtime's per-subscriber RLS checks run here.
    pub db: deadpool_postgres::Pool,
    /// Connections as the database owner: auth's private tables live here.
    pub admin: deadpool_postgres::Pool,
    /// libpq connection string of the owner, for the logical replication stream.
    pub admin_conninfo: String,
    /// Verifies the JWTs clients present.
    pub jwt: Arc<JwtVerifier>,
    /// The anon and service_role keys and the secret they are signed with.
    pub keys: Arc<ApiKeys>,
    /// The roles a token may name.
    pub roles: Arc<RoleSwitch>,
}
