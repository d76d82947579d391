//! The connection pools every service uses.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::config::Host;

/// How long `get()` waits for a free connection before it fails with a wait timeout, so that a
/// full pool answers an error (the gateway's 504 PGRST003) instead of hanging. PostgREST's
/// `PGRST_DB_POOL_ACQUISITION_TIMEOUT` default; the gateway passes its own setting per request.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to PostgreSQL, or checking a connection on its way out of the pool, may
/// take before `get()` fails instead of hanging on an unresponsive server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a pool over `config` holding at most `max_size` connections, whose `get()` waits at
/// most [`WAIT_TIMEOUT`].
///
/// Connections are recycled with the fast check: a request transaction always ends in COMMIT or
/// ROLLBACK, so no session state leaks between requests.
pub fn build(config: tokio_postgres::Config, max_size: usize) -> Pool {
    build_with_wait(config, max_size, WAIT_TIMEOUT)
}

/// [`build`] with another wait timeout, e.g. a service's own acquisition timeout setting.
pub fn build_with_wait(config: tokio_postgres::Config, max_size: usize, wait: Duration) -> Pool {
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .timeouts(Timeouts {
            wait: Some(wait),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        })
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .expect("a pool with a runtime and no hooks always builds")
}

/// The same settings as a libpq connection string (`host=... port=... user=...`), for libraries
/// built on libpq such as the replication stream.
pub fn conninfo(config: &tokio_postgres::Config) -> String {
    let mut parts = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        let host = match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        };
        parts.push(("host", host));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(("port", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        parts.push(("user", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        parts.push(("password", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(("dbname", dbname.to_owned()));
    }
    parts
        .into_iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn conninfo_quotes_values() {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path("/tmp/run")
            .port(5432)
            .user("postgres")
            .password("it's")
            .dbname("db");
        assert_eq!(
            super::conninfo(&config),
            r"host='/tmp/run' port='5432' user='postgres' password='it\'s' dbname='db'"
        );
    }
}
