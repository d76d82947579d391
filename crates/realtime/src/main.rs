//! The realtime service alone, configured with Supabase Realtime's variable names.

use clap::Parser;

/// Supabase-Realtime-compatible service.
#[derive(Parser)]
struct Args {
    /// Database to replicate from (its role needs REPLICATION).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// HS256 secret client tokens are signed with.
    #[arg(long, env = "API_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 4000)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    craftbase_shared::standalone::init_logging();
    let ctx =
        craftbase_shared::standalone::context(&args.database_url, &args.jwt_secret, 10).await?;
    craftbase_shared::standalone::serve(
        craftbase_realtime::router(ctx),
        (args.host, args.port).into(),
    )
    .await
}
