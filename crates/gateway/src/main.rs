//! The REST gateway alone, configured with PostgREST's variable names.

use clap::Parser;

/// mimalloc: many small allocations per request; measurably cheaper than the system allocator
/// under concurrency (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// PostgREST-compatible REST gateway.
#[derive(Parser)]
struct Args {
    /// Database to serve, connecting as the authenticator role.
    #[arg(long, env = "PGRST_DB_URI")]
    db_uri: String,
    /// HS256 secret the JWTs are signed with.
    #[arg(long, env = "PGRST_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Address to listen on.
    #[arg(long, env = "PGRST_SERVER_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PGRST_SERVER_PORT", default_value_t = 3000)]
    port: u16,
    /// Connections in the pool.
    #[arg(long, env = "PGRST_DB_POOL", default_value_t = 10)]
    pool: usize,
    #[command(flatten)]
    settings: craftbase_gateway::config::GatewaySettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    craftbase_shared::standalone::init_logging();
    let ctx =
        craftbase_shared::standalone::context(&args.db_uri, &args.jwt_secret, args.pool).await?;
    craftbase_shared::standalone::serve(
        craftbase_gateway::router_with(
            ctx,
            craftbase_gateway::GatewayConfig::from_settings(args.settings)
                .map_err(anyhow::Error::msg)?,
        ),
        (args.host, args.port).into(),
    )
    .await
}
