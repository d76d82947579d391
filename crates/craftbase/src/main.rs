//! The `craftbase` command.

use clap::Parser;

use craftbase::api_keys::{primary, KeyKind};
use craftbase::config::{
    Cli, Command, DbCommand, GenCommand, MigrationCommand, StatusArgs, TypesLang,
};
use craftbase::datadir::DataDir;

/// mimalloc: many small allocations per request; measurably cheaper than the system allocator
/// under concurrency (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // The log format first (a bad command line is reported by `effective::load` below), so that
    // reading config.toml can already warn in it.
    let format = Cli::try_parse()
        .ok()
        .and_then(|cli| cli.log_format.parse().ok())
        .unwrap_or_default();
    craftbase_shared::standalone::init_logging_as(format);
    // The project's config.toml goes under the environment here, while this is the only thread.
    let loaded = match craftbase::effective::load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(return_idle_pages)
        .build()
        .expect("cannot start the tokio runtime");
    runtime.block_on(run(loaded));
}

/// mimalloc keeps the pages a thread freed until that thread allocates again, so after a burst
/// (a flood of websockets, say) idle workers would hold them for good: RSS settled ~25 MiB above
/// what it needed. A worker going idle returns them, at most once a second per thread.
fn return_idle_pages() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    LAST.with(|last| {
        let now = Instant::now();
        if last.get().is_some_and(|t| now - t < Duration::from_secs(1)) {
            return;
        }
        last.set(Some(now));
        // SAFETY: mi_collect only walks this thread's own mimalloc heap; it takes no pointers.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_collect(false)
        };
    });
}

async fn run(loaded: craftbase::effective::Loaded) {
    let result = match &loaded.cli.command {
        Command::Start(args) => craftbase::start::run(args.clone()).await,
        Command::Status(args) => status(args),
        Command::Config(args) => craftbase::effective::print(args, &loaded),
        Command::Init(args) => {
            craftbase::project::init(&args.project_dir, args.force).map(|files| {
                for file in files {
                    println!("created {}", file.display());
                }
            })
        }
        Command::Migration(MigrationCommand::New { name, project_dir }) => {
            craftbase::project::new_migration(project_dir, name, chrono::Utc::now())
                .map(|path| println!("created {}", path.display()))
        }
        Command::Db(DbCommand::Reset(args)) => {
            craftbase::reset::run(&args.data_dir, &args.project_dir, args.db_port).await
        }
        Command::Gen {
            command:
                GenCommand::Types {
                    lang: TypesLang::Typescript(args),
                },
        } => {
            let source =
                craftbase::connection::Source::from_args(args.db_url.as_ref(), &args.data_dir);
            craftbase::typegen::run(source, args.schemas.clone()).await
        }
        Command::Backup(args) => craftbase::dump::backup::run(args.clone()).await,
        Command::Restore(args) => craftbase::dump::restore::run(args.clone()).await,
        Command::Keys(command) => craftbase::api_keys::command::run(command),
        Command::SigningKeys(command) => craftbase::signing_keys::command::run(command),
        Command::Policy(command) => match craftbase::policy::run(command).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
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
    let key = |kind| primary(&secrets.api_keys, kind).unwrap_or_default();
    let status = serde_json::json!({
        "api_url": endpoints.api_url,
        "db_url": endpoints.db_url,
        "publishable_key": key(KeyKind::Publishable),
        "secret_key": key(KeyKind::Secret),
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
