//! `craftbase start`: the database, the migrations, then the API, and the reverse on shutdown.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use craftbase_cluster::{Cluster, ClusterSpec};
use craftbase_shared::{JwtVerifier, RoleSwitch, ServiceContext};

use crate::api_keys::ring::KeyRing;
use crate::api_keys::{primary, KeyKind};
use crate::config::StartArgs;
use crate::datadir::{DataDir, Endpoints, Secrets};
use crate::services::Services;
use crate::{edge, migrations, observe};

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
    // The services' settings first: a bad value stops start-up before anything runs.
    let mut settings = edge::ServiceSettings::from_env()?;
    let data_dir = DataDir::open(&args.data_dir)
        .with_context(|| format!("cannot use data directory {}", args.data_dir.display()))?;
    let secrets = data_dir.secrets(args.jwt_secret(), crate::datadir::unix_now())?;
    // SAML on without GOTRUE_SAML_PRIVATE_KEY: the data directory's own SP key.
    if settings.auth.saml.saml_enabled && settings.auth.saml.saml_private_key.is_none() {
        settings.auth.saml.saml_private_key = Some(data_dir.saml_private_key()?);
    }
    // Bind first, so a busy port fails before anything starts.
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;

    let connections = match &args.database_url {
        Some(url) => connect_external(url, args.db_major_version).await?,
        None => start_embedded(&args, &data_dir, &secrets, &progress).await?,
    };
    let database = connections.database.clone();
    let db_url = connections.url.clone();
    if let Err(e) = migrate(connections.owner.clone(), &args, &progress).await {
        database.stop();
        return Err(e);
    }

    let ring = Arc::new(KeyRing::new(
        data_dir.secrets_path(),
        &secrets.keys.jwt_secret,
        &secrets.api_keys,
    ));
    let jwt = Arc::new(JwtVerifier::hs256(&secrets.keys.jwt_secret, None));
    // Asymmetric keys (GOTRUE_JWT_KEYS, then the data directory's) are accepted everywhere,
    // and followed as `craftbase signing-keys` rotates them.
    let signing = crate::signing_keys::watch::SigningKeyWatch::new(
        data_dir.secrets_path(),
        std::env::var("GOTRUE_JWT_KEYS").ok(),
        crate::signing_keys::JwtAlgorithm::from_env()?,
        jwt.clone(),
        &secrets.signing_keys,
    );
    let signing = match signing {
        Ok(signing) => Arc::new(signing),
        Err(e) => {
            database.stop();
            return Err(e);
        }
    };
    crate::secrets_watch::watch(vec![ring.clone(), signing]);
    let storage = settings.storage.clone();
    let services = match services(&connections, &secrets, &args, ring, jwt, storage).await {
        Ok(services) => services,
        Err(e) => {
            database.stop();
            return Err(e);
        }
    };
    if settings.switches.storage_enabled {
        // Hourly: bytes a crash left without a row.
        craftbase_storage::sweep::spawn(services.storage.clone());
    }
    settings.gateway.read_replica = services.read_replica.as_ref().map(|(r, _)| r.clone());
    let api_url = format!("http://{}", listener.local_addr()?);
    // Mailed links and OAuth callbacks point at craftbase's own address (an unspecified
    // bind address as loopback), never at a request's `Host`.
    settings
        .auth
        .api_external_url
        .get_or_insert_with(|| external_auth_url(listener.local_addr()));
    data_dir.set_endpoints(&Endpoints {
        api_url: api_url.clone(),
        db_url: db_url.clone(),
    })?;
    let cluster = match crate::scaleout::join(&args.nats, &api_url).await {
        Ok(cluster) => cluster,
        Err(e) => {
            database.stop();
            return Err(e);
        }
    };
    announce(&api_url, &db_url, &secrets, &args.data_dir);
    let pools = services.pools();
    // Served only now, after the migrations above.
    let observer = observe::Observer::new(
        &services,
        true,
        settings.switches.realtime_enabled,
        cluster.as_ref().map(|c| c.node.clone()),
    );
    if let Some(addr) = args.observe.metrics_addr {
        if let Err(e) = observer.listen(addr).await {
            database.stop();
            return Err(e);
        }
    }
    let served = craftbase_shared::server::serve(
        listener,
        edge::app(services, settings, &observer),
        args.http.limits(),
        craftbase_shared::shutdown::signal(),
    );
    // Polled here, on the main thread, so that a restarted PostgreSQL is its child too.
    let result = tokio::select! {
        () = served => Ok(()),
        failed = database.supervise() => Err(failed),
    };
    if let Some(cluster) = cluster {
        cluster.leave().await;
    }
    // Idle connections end cleanly before PostgreSQL stops, rather than being cut off by it.
    for pool in pools {
        pool.close();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    database.stop();
    result
}

/// `http://<address>/auth/v1` for the address craftbase listens on; `0.0.0.0` and `::` become
/// loopback, where `supabase start` points `API_EXTERNAL_URL`.
fn external_auth_url(addr: std::io::Result<std::net::SocketAddr>) -> String {
    let addr = addr.unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 54321)));
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!(
        "http://{}/auth/v1",
        std::net::SocketAddr::new(ip, addr.port())
    )
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

    /// Keeps the embedded PostgreSQL running: when it exits on its own, it is started again,
    /// and the pools and the replication stream reconnect by themselves. Resolves only when it
    /// cannot be started again. Poll it on the main thread (it is, from [`run`]): PostgreSQL is
    /// told to stop when the thread that spawned it dies.
    async fn supervise(&self) -> anyhow::Error {
        let Database::Embedded(cluster) = self else {
            return std::future::pending().await;
        };
        let lock = || cluster.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if !lock().has_exited() {
                continue;
            }
            tracing::error!("PostgreSQL exited unexpectedly; starting it again");
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let respawned = lock().respawn();
                match respawned {
                    Ok(()) if self.ready(Duration::from_secs(60)).await => {
                        tracing::info!("PostgreSQL is running again");
                        break;
                    }
                    Ok(()) => tracing::warn!(attempt, "PostgreSQL did not come back"),
                    Err(e) => tracing::warn!(attempt, error = %e, "cannot start PostgreSQL"),
                }
                if attempt == RESTART_ATTEMPTS {
                    return anyhow::anyhow!(
                        "PostgreSQL exited and could not be started again; its log ends with:\n{}",
                        lock().log_tail()
                    );
                }
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        }
    }

    /// Waits until the embedded PostgreSQL accepts connections; false if it exits or `limit`
    /// passes first.
    async fn ready(&self, limit: Duration) -> bool {
        let Database::Embedded(cluster) = self else {
            return true;
        };
        let lock = || cluster.lock().unwrap_or_else(|e| e.into_inner());
        let config = lock().socket_config("postgres", "postgres");
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if lock().has_exited() {
                return false;
            }
            if config.connect(tokio_postgres::NoTls).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// How many times in a row craftbase tries to start its PostgreSQL again before giving up.
const RESTART_ATTEMPTS: u32 = 5;

/// How to reach the database, once it is up.
struct Connections {
    database: Database,
    /// The owner (a superuser): migrations, auth's tables, replication.
    owner: tokio_postgres::Config,
    /// `authenticator`, which requests switch roles from. `None` until its password is set on
    /// a server craftbase does not run.
    authenticator: Option<tokio_postgres::Config>,
    /// A URL a superuser can connect with, for `craftbase status`.
    url: String,
}

/// Pools for both roles, per service, and the roles a token may name.
async fn services(
    connections: &Connections,
    secrets: &Secrets,
    args: &StartArgs,
    api_keys: Arc<KeyRing>,
    jwt: Arc<JwtVerifier>,
    storage: craftbase_storage::Settings,
) -> anyhow::Result<Services> {
    let authenticator = match &connections.authenticator {
        Some(config) => config.clone(),
        None => authenticator_with_password(&connections.owner, &secrets.db_password).await?,
    };
    let pool = craftbase_shared::pool::build;
    let db = pool(authenticator.clone(), args.pool_size.into());
    let roles = {
        let client = db
            .get()
            .await
            .context("cannot connect as the authenticator role")?;
        RoleSwitch::load(&client).await?
    };
    let auth_owner = pool(connections.owner.clone(), args.auth_pool_size.into());
    let rest = ServiceContext {
        db,
        // REST never uses the owner's pool; auth's is named so no connection is opened for it.
        admin: auth_owner.clone(),
        admin_conninfo: craftbase_shared::pool::conninfo(&connections.owner),
        jwt,
        keys: Arc::new(secrets.keys.clone()),
        roles: Arc::new(roles),
    };
    let realtime_size = args.realtime_pool_size.into();
    let store = storage
        .open(&args.data_dir)
        .context("cannot open storage's object store")?;
    let storage = craftbase_storage::Storage::new(
        ServiceContext {
            db: pool(authenticator.clone(), STORAGE_POOL_SIZE),
            admin: pool(connections.owner.clone(), STORAGE_POOL_SIZE),
            ..rest.clone()
        },
        store,
        storage,
    );
    let read_replica = read_replica(args, &authenticator, &rest.db)?;
    Ok(Services {
        storage,
        auth: ServiceContext {
            admin: auth_owner,
            ..rest.clone()
        },
        realtime: ServiceContext {
            db: pool(authenticator, realtime_size),
            admin: pool(connections.owner.clone(), realtime_size),
            ..rest.clone()
        },
        read_replica,
        rest,
        api_keys,
    })
}

/// The standby of `--database-read-url`, reached as `authenticator` (whose password the
/// primary replicated to it), watched against the primary `db`.
fn read_replica(
    args: &StartArgs,
    authenticator: &tokio_postgres::Config,
    db: &deadpool_postgres::Pool,
) -> anyhow::Result<
    Option<(
        Arc<craftbase_gateway::replica::ReadReplica>,
        deadpool_postgres::Pool,
    )>,
> {
    let Some(url) = &args.database_read_url else {
        return Ok(None);
    };
    anyhow::ensure!(
        args.database_url.is_some(),
        "--database-read-url needs DATABASE_URL: a standby of the embedded PostgreSQL is not supported"
    );
    let mut config: tokio_postgres::Config = url
        .parse()
        .context("CRAFTBASE_DATABASE_READ_URL is not a valid PostgreSQL URL")?;
    config.user("authenticator");
    if let Some(password) = authenticator.get_password() {
        config.password(password);
    }
    config.connect_timeout(Duration::from_secs(10));
    let pool = craftbase_shared::pool::build(config, args.pool_size.into());
    let replica = craftbase_gateway::replica::ReadReplica::start(
        pool.clone(),
        db.clone(),
        args.database_read_max_lag,
    );
    tracing::info!(
        max_lag_ms = args.database_read_max_lag.as_millis() as u64,
        "REST reads go to the read replica while it keeps up"
    );
    Ok(Some((replica, pool)))
}

/// Connections storage opens per role: uploads hold one only while checking and writing a row.
const STORAGE_POOL_SIZE: usize = 10;

/// On a server craftbase does not run, `authenticator` logs in over the network like the owner
/// does: give it the password the first node on this database generated (kept in
/// `craftbase.authenticator_password`), this data directory's when it is the first.
async fn authenticator_with_password(
    owner: &tokio_postgres::Config,
    password: &str,
) -> anyhow::Result<tokio_postgres::Config> {
    let (client, connection) = owner.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    // The first node on this database keeps its password; every other node adopts it, so that
    // nodes of a cluster do not change it under each other's pools.
    client
        .execute(
            "insert into craftbase.authenticator_password (password) values ($1)
             on conflict do nothing",
            &[&password],
        )
        .await?;
    let password: String = client
        .query_one("select password from craftbase.authenticator_password", &[])
        .await?
        .get(0);
    // ALTER ROLE takes no parameters; format() quotes the password as a literal server-side.
    let statement: String = client
        .query_one(
            "select format('alter role authenticator with login password %L', $1::text)",
            &[&password],
        )
        .await?
        .get(0);
    client.batch_execute(&statement).await?;
    drop(client);
    let _ = connection.await;
    let mut config = owner.clone();
    config.user("authenticator").password(password);
    Ok(config)
}

async fn start_embedded(
    args: &StartArgs,
    data_dir: &DataDir,
    secrets: &Secrets,
    progress: &Progress,
) -> anyhow::Result<Connections> {
    let bindir = crate::db_version::bindir(args.db_major_version)?;
    let found = crate::db_version::of_binaries(&bindir)?;
    crate::db_version::check(args.db_major_version, found, &bindir.display().to_string())?;
    let spec = ClusterSpec {
        bindir,
        root: data_dir.cluster_root(),
        port: args.db_port,
        superuser_password: secrets.db_password.clone(),
        throwaway: false,
        settings: Vec::new(),
    };
    let cluster = Cluster::start(spec, |step| progress.step(step)).await?;
    Ok(Connections {
        owner: cluster.socket_config("postgres", "postgres"),
        authenticator: Some(cluster.socket_config("authenticator", "postgres")),
        url: cluster.superuser_url("postgres"),
        database: Database::Embedded(Arc::new(Mutex::new(cluster))),
    })
}

async fn connect_external(url: &str, major: Option<u32>) -> anyhow::Result<Connections> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    config.connect_timeout(Duration::from_secs(10));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("cannot connect to DATABASE_URL")?;
    tokio::spawn(connection);
    let found = crate::db_version::of_server(&client).await?;
    crate::db_version::check(major, found, "the server at DATABASE_URL")?;
    let problems = craftbase_cluster::check_server(&client).await?;
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::bail!(
            "the server at DATABASE_URL cannot run craftbase:\n{}",
            list.join("\n")
        );
    }
    Ok(Connections {
        database: Database::External,
        owner: config,
        authenticator: None,
        url: url.to_owned(),
    })
}

async fn migrate(
    superuser: tokio_postgres::Config,
    args: &StartArgs,
    progress: &Progress,
) -> anyhow::Result<()> {
    let (mut client, connection) = superuser.connect(tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let mut all = migrations::platform();
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

/// Tells where the API is. The keys and the database URL (which carries the superuser's
/// password) go to an interactive terminal only: when stdout is a pipe, a file or a journal,
/// it says where `craftbase status --json` reads them instead, so they never land in a log.
fn announce(api_url: &str, db_url: &str, secrets: &Secrets, data_dir: &std::path::Path) {
    let ws_url = api_url.replacen("http", "ws", 1);
    let mut lines = vec![
        ("API URL", api_url.to_owned()),
        ("REST URL", format!("{api_url}/rest/v1")),
        ("Realtime URL", format!("{ws_url}/realtime/v1")),
    ];
    if std::io::stdout().is_terminal() {
        lines.extend([
            ("DB URL", db_url.to_owned()),
            (
                "Publishable key",
                primary(&secrets.api_keys, KeyKind::Publishable)
                    .unwrap_or("(none: craftbase keys new --publishable)")
                    .to_owned(),
            ),
            (
                "Secret key",
                primary(&secrets.api_keys, KeyKind::Secret)
                    .unwrap_or("(none: craftbase keys new --secret)")
                    .to_owned(),
            ),
            ("anon key", secrets.keys.anon_key.clone()),
            ("service_role key", secrets.keys.service_role_key.clone()),
        ]);
    } else {
        lines.push((
            "keys",
            format!("craftbase status --json --data-dir {}", data_dir.display()),
        ));
    }
    println!("craftbase is running.\n");
    for (label, value) in lines {
        println!("{label:>16}: {value}");
    }
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

#[cfg(test)]
mod tests {
    use super::external_auth_url;

    #[test]
    fn the_external_auth_url_is_craftbases_own_address() {
        let at = |s: &str| Ok(s.parse().unwrap());
        assert_eq!(
            external_auth_url(at("127.0.0.1:54321")),
            "http://127.0.0.1:54321/auth/v1"
        );
        assert_eq!(
            external_auth_url(at("0.0.0.0:8000")),
            "http://127.0.0.1:8000/auth/v1"
        );
        assert_eq!(
            external_auth_url(at("[::]:8000")),
            "http://[::1]:8000/auth/v1"
        );
        assert_eq!(
            external_auth_url(at("192.0.2.7:80")),
            "http://192.0.2.7:80/auth/v1"
        );
    }
}
