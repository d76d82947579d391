//! Serving one service on its own, behind a load balancer that checks API keys.

use std::net::SocketAddr;

use axum::Router;

/// Builds the pool for `database_url` and the verifier for `jwt_secret`.
pub fn context(
    database_url: &str,
    jwt_secret: &str,
    pool_size: usize,
) -> anyhow::Result<crate::ServiceContext> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(crate::ServiceContext {
        db: crate::pool::build(config, pool_size),
        jwt: std::sync::Arc::new(crate::JwtVerifier::hs256(jwt_secret, None)),
        keys: std::sync::Arc::new(crate::ApiKeys::mint(jwt_secret, now)?),
    })
}

/// Serves `router` on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(router: Router, addr: SocketAddr) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(crate::shutdown::signal())
        .await?;
    Ok(())
}
