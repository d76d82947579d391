//! The services `craftbase start` serves, each with its own pools: built by `start`, routed by
//! `edge`, watched by `observe`.

use std::sync::Arc;

use craftbase_shared::ServiceContext;

use crate::api_keys::ring::KeyRing;

/// Each service's context. They share the keys and roles but not their pools: a flood of
/// private-channel joins or sign-ins cannot take the connections REST (or the other) needs.
pub struct Services {
    /// REST and /health: `db` as authenticator; `admin` is not used.
    pub rest: ServiceContext,
    /// Auth: its tables through `admin`.
    pub auth: ServiceContext,
    /// Realtime: private-channel checks, the catalog and replay through `admin`, change
    /// authorization through `db`.
    pub realtime: ServiceContext,
    /// Storage: catalogue rows through `db` as the caller, owner reads through `admin`; the
    /// bytes in its object store.
    pub storage: craftbase_storage::Storage,
    /// The new API keys the edge accepts.
    pub api_keys: Arc<KeyRing>,
    /// The standby REST reads go to while it keeps up (`--database-read-url`).
    pub read_replica: Option<(
        Arc<craftbase_gateway::replica::ReadReplica>,
        deadpool_postgres::Pool,
    )>,
}

impl Services {
    /// Every pool, to close them before PostgreSQL stops.
    pub(crate) fn pools(&self) -> Vec<deadpool_postgres::Pool> {
        [&self.rest, &self.auth, &self.realtime, &self.storage.ctx]
            .iter()
            .flat_map(|ctx| [ctx.db.clone(), ctx.admin.clone()])
            .chain(self.read_replica.iter().map(|(_, pool)| pool.clone()))
            .collect()
    }
}
