//! The `craftbase` command.

use clap::Parser;
use craftbase::config::{Cli, Command, StatusArgs};
use craftbase::datadir::DataDir;

/// mimalloc: many small allocations per request; measurably cheaper than the system allocator
/// under concurrency (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    craftbase_shared::standalone::init_logging();
    let result = match Cli::parse().command {
        Command::Start(args) => craftbase::start::run(args).await,
        Command::Status(args) => status(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let dir = DataDir::existing(&args.data_dir)?;
    let secrets = dir.stored_secrets()?;
    let endpoints = dir.endpoints()?.ok_or_else(|| {
        anyhow::anyhow!(
            "craftbase has not served from {} yet",
            args.data_dir.display()
        )
    })?;
    let status = serde_json::json!({
        "api_url": endpoints.api_url,
        "db_url": endpoints.db_url,
        "anon_key": secrets.keys.anon_key,
        "service_role_key": secrets.keys.service_role_key,
        "jwt_secret": secrets.keys.jwt_secret,
    });
    if args.json {
        println!("{status}");
    } else {
        for (k, v) in status.as_object().into_iter().flatten() {
            println!("{k:>16}: {}", v.as_str().unwrap_or_default());
        }
    }
    Ok(())
}
