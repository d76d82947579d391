//! The auth service alone, configured with GoTrue's variable names.

use clap::Parser;

/// GoTrue-compatible auth service.
#[derive(Parser)]
struct Args {
    /// Database holding the `auth` schema.
    #[arg(long, env = "GOTRUE_DB_DATABASE_URL")]
    database_url: String,
    /// HS256 secret tokens are signed with.
    #[arg(long, env = "GOTRUE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Address to listen on.
    #[arg(long, env = "GOTRUE_API_HOST", default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 9999)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    craftbase_shared::standalone::init_logging();
    let mut ctx =
        craftbase_shared::standalone::context(&args.database_url, &args.jwt_secret, 10).await?;
    // Tokens signed with configured asymmetric keys verify here too.
    if let Some(keys) = std::env::var("GOTRUE_JWT_KEYS")
        .ok()
        .filter(|k| !k.is_empty())
    {
        let verifier =
            craftbase_shared::JwtVerifier::hs256(&args.jwt_secret, None).with_jwks(&keys)?;
        ctx.jwt = std::sync::Arc::new(verifier);
    }
    craftbase_shared::standalone::serve(craftbase_auth::router(ctx), (args.host, args.port).into())
        .await
}
