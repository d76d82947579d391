//! `craftbase start`: the database, the migrations, then the API, and the reverse on shutdown.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use craftbase_cluster::{Cluster, ClusterSpec};
use craftbase_shared::{JwtVerifier, ServiceContext};

use crate::config::StartArgs;
use crate::datadir::{DataDir, Endpoints, Secrets};
use crate::{edge, migrations};

/// Where the database is: an embedded cluster craftbase runs, or a server it was pointed at.
#[derive(Clone)]
enum Database {
    Embedded(Arc<Mutex<Cluster>>),
    External,
}

/// Runs craftbase until Ctrl-C or SIGTERM.
///
/// The cluster is started from the calling thread, which must be the main thread: PostgreSQL is
/// told to shut down when the thread that spawned it dies.
pub async fn run(args: StartArgs) -> anyhow::Result<()> {
    let progress = Progress::new();
    let data_dir = DataDir::open(&args.data_dir)
        .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?;
    let secrets = data_dir.secrets(args.jwt_secret(), unix_now())?;
    // Bind first, so a busy port fails before anything starts.
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;

    let (database, superuser, service_config, db_url) = match &args.database_url {
        Some(url) => connect_external(url).await?,
        None => start_embedded(&args, &data_dir, &secrets, &progress).await?,
    };
    if let Err(e) = migrate(superuser, &args, &progress).await {
        database.stop();
        return Err(e);
    }

    let ctx = ServiceContext {
        db: craftbase_shared::pool::build(service_config, args.pool_size),
        jwt: Arc::new(JwtVerifier::hs256(&secrets.keys.jwt_secret, None)),
        keys: Arc::new(secrets.keys.clone()),
    };
    let api_url = format!("http://{}", listener.local_addr()?);
    data_dir.set_endpoints(&Endpoints {
        api_url: api_url.clone(),
        db_url: db_url.clone(),
    })?;
    let ws_url = api_url.replacen("http", "ws", 1);
    println!("craftbase is running.\n");
    for (label, value) in [
        ("API URL", api_url.as_str()),
        ("REST URL", &format!("{api_url}/rest/v1")),
        ("Realtime URL", &format!("{ws_url}/realtime/v1")),
        ("DB URL", &db_url),
        ("anon key", &secrets.keys.anon_key),
        ("service_role key", &secrets.keys.service_role_key),
    ] {
        println!("{label:>16}: {value}");
    }
    let served = axum::serve(listener, edge::app(ctx))
        .with_graceful_shutdown(stop_signal(database.clone()))
        .await;
    database.stop();
    served.context("the API server failed")
}

impl Database {
    fn stop(&self) {
        if let Database::Embedded(cluster) = self {
            tracing::info!("stopping PostgreSQL");
            let cluster = cluster.clone();
            tokio::task::block_in_place(move || {
                cluster.lock().unwrap_or_else(|e| e.into_inner()).stop()
            });
        }
    }

    /// Resolves if the embedded PostgreSQL exits on its own.
    async fn exited(&self) {
        let Database::Embedded(cluster) = self else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if cluster
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .has_exited()
            {
                return;
            }
        }
    }
}

async fn stop_signal(database: Database) {
    tokio::select! {
        _ = craftbase_shared::shutdown::signal() => {}
        _ = database.exited() => tracing::error!("PostgreSQL exited unexpectedly; shutting down"),
    }
}

type Connections = (
    Database,
    tokio_postgres::Config,
    tokio_postgres::Config,
    String,
);

async fn start_embedded(
    args: &StartArgs,
    data_dir: &DataDir,
    secrets: &Secrets,
    progress: &Progress,
) -> anyhow::Result<Connections> {
    let spec = ClusterSpec {
        bindir: craftbase_cluster::find_bindir()?,
        root: data_dir.cluster_root(),
        port: args.db_port,
        superuser_password: secrets.db_password.clone(),
        throwaway: false,
        settings: Vec::new(),
    };
    let cluster = Cluster::start(spec, |step| progress.step(step)).await?;
    let superuser = cluster.socket_config("postgres", "postgres");
    let service = cluster.socket_config("authenticator", "postgres");
    let url = cluster.superuser_url("postgres");
    Ok((
        Database::Embedded(Arc::new(Mutex::new(cluster))),
        superuser,
        service,
        url,
    ))
}

async fn connect_external(url: &str) -> anyhow::Result<Connections> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    config.connect_timeout(Duration::from_secs(10));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot connect to DATABASE_URL")?;
    tokio::spawn(connection);
    let problems = craftbase_cluster::check_server(&client).await?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::bail!(
            "the server at DATABASE_URL cannot run craftbase:\n{}",
            list.join("\n")
        );
    }
    Ok((Database::External, config.clone(), config, url.to_owned()))
}

async fn migrate(
    superuser: tokio_postgres::Config,
    args: &StartArgs,
    progress: &Progress,
) -> anyhow::Result<()> {
    let (mut client, connection) = superuser.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let mut all = migrations::platform_and_app();
    all.extend(migrations::project(&args.project_dir)?);
    let applied = craftbase_cluster::apply(&mut client, &all, |name| {
        progress.step(&format!("applying migration {name}"))
    })
    .await?;
    tracing::info!(applied, total = all.len(), "migrations up to date");
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// Start-up steps, shown on a terminal and logged otherwise.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn step(&self, step: &str) {
        if self.terminal {
            eprintln!("  • {step}…");
        } else {
            tracing::info!("{step}");
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
