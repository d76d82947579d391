//! The connection pool every service uses.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

/// Builds a pool over `config` holding at most `max_size` connections.
///
/// Connections are recycled with the fast check: a request transaction always ends in COMMIT or
/// ROLLBACK, so no session state leaks between requests.
pub fn build(config: tokio_postgres::Config, max_size: usize) -> Pool {
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .expect("a pool with a runtime and no hooks always builds")
}
