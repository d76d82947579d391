//! The storage service alone, configured with storage-api's variable names.

use clap::Parser;

/// Supabase-Storage-compatible service.
#[derive(Parser)]
struct Args {
    /// Database holding the `storage` schema.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// HS256 secret tokens (and signed URLs) are signed with.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Directory of the file backend when `FILE_STORAGE_BACKEND_PATH` is unset.
    #[arg(long, default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// Address to listen on.
    #[arg(long, env = "SERVER_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 5000)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    craftbase_shared::standalone::init_logging();
    let settings = craftbase_storage::Settings::from_env()?;
    let store = settings.open(&args.data_dir)?;
    let ctx =
        craftbase_shared::standalone::context(&args.database_url, &args.jwt_secret, 10).await?;
    let app = craftbase_storage::router(craftbase_storage::Storage::new(ctx, store, settings));
    craftbase_shared::standalone::serve(app, (args.host, args.port).into()).await
}
