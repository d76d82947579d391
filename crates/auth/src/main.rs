//! The auth service alone, configured with GoTrue's variable names.

use clap::Parser;

/// GoTrue-compatible auth service.
#[derive(Parser)]
struct Args {
    /// Database holding the `auth` schema (GoTrue also reads `DATABASE_URL`).
    #[arg(long, env = "GOTRUE_DB_DATABASE_URL")]
    database_url: Option<String>,
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
    let database_url = args
        .database_url
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .ok_or_else(|| anyhow::anyhow!("set GOTRUE_DB_DATABASE_URL or DATABASE_URL"))?;
    let mut ctx =
        craftbase_shared::standalone::context(&database_url, &args.jwt_secret, 10).await?;
    // Tokens signed with configured asymmetric keys verify here too.
    if let Some(keys) = std::env::var("GOTRUE_JWT_KEYS")
        .ok()
        .filter(|k| !k.is_empty())
    {
        let verifier =
            craftbase_shared::JwtVerifier::hs256(&args.jwt_secret, None).with_jwks(&keys)?;
        ctx.jwt = std::sync::Arc::new(verifier);
    }
    let mut settings = craftbase_auth::Settings::from_env().map_err(|e| {
        anyhow::anyhow!("invalid auth settings in the GOTRUE_* environment variables: {e}")
    })?;
    settings.behind_gateway = true; // GoTrue's place: behind a gateway
    if !settings.peer_is_client() && settings.trusted_proxy_hops() == 0 {
        tracing::warn!(
            "GOTRUE_RATE_LIMIT_HEADER is not set: per-address rate limits do not apply (as in GoTrue); \
             set it to the header your gateway writes, or CRAFTBASE_AUTH_TRUSTED_PROXIES=0 to count the peer"
        );
    }
    let app = craftbase_auth::router_with(ctx, settings);
    craftbase_shared::standalone::serve(app, (args.host, args.port).into()).await
}
