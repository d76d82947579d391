//! Serving one service on its own, behind a load balancer that checks API keys.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;

use crate::server::HttpLimits;
use crate::{ApiKeys, JwtVerifier, RoleSwitch, ServiceContext};

/// Builds a service's context from one database URL: requests and owner work share it.
pub async fn context(
    database_url: &str,
    jwt_secret: &str,
    pool_size: usize,
) -> anyhow::Result<ServiceContext> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let db = crate::pool::build(config.clone(), pool_size);
    let roles = RoleSwitch::load(&**db.get().await?).await?;
    Ok(ServiceContext {
        admin: db.clone(),
        db,
        admin_conninfo: crate::pool::conninfo(&config),
        jwt: Arc::new(JwtVerifier::hs256(jwt_secret, None)),
        keys: Arc::new(ApiKeys::mint(jwt_secret, now)?),
        roles: Arc::new(roles),
    })
}

/// How log lines are written: human-readable text, or one JSON object per line for a log
/// collector (`CRAFTBASE_LOG_FORMAT=json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (text or json)")),
        }
    }
}

impl LogFormat {
    /// `CRAFTBASE_LOG_FORMAT`, text when unset or unknown.
    pub fn from_env() -> LogFormat {
        std::env::var("CRAFTBASE_LOG_FORMAT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

/// Logs to stderr in the format `CRAFTBASE_LOG_FORMAT` names; see [`init_logging_as`].
pub fn init_logging() {
    init_logging_as(LogFormat::from_env());
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, without PostgreSQL notices and
/// per-message replication logs). Events carry only what the code puts in them: request spans
/// name the path without its query string, and no event carries a key, token or password.
pub fn init_logging_as(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tokio_postgres=warn,pg_walstream=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Serves `router` on `addr` until Ctrl-C or SIGTERM, with [`HttpLimits::from_env`].
pub async fn serve(router: Router, addr: SocketAddr) -> anyhow::Result<()> {
    let limits = HttpLimits::from_env()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    crate::server::serve(listener, router, limits, crate::shutdown::signal()).await;
    Ok(())
}
