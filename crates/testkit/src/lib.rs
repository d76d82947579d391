//! The Rust test harness: one throwaway PostgreSQL cluster per test process (`wal_level=logical`,
//! `fsync=off`), migrated once into a template database; each test gets its own database copied
//! from that template, so tests never see each other's rows.
#![allow(unsafe_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};

use craftbase_cluster::{Cluster, ClusterSpec, Migration};

mod nats;
pub use nats::NatsServer;

const TEMPLATE: &str = "craftbase_template";

/// Where the shared cluster listens.
#[derive(Clone, Debug)]
struct Shared {
    socket_dir: PathBuf,
    port: u16,
    password: String,
}

/// The running cluster, stopped by the exit handler.
static CLUSTER: Mutex<Option<(Cluster, tempfile::TempDir)>> = Mutex::new(None);
static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A test's own database, migrated like a fresh craftbase.
pub struct TestDb {
    pub name: String,
    shared: Shared,
}

impl TestDb {
    /// Creates a database for one test. The first call starts the cluster and migrates the
    /// template with `migrations()`.
    pub async fn new(migrations: fn() -> Vec<Migration>) -> TestDb {
        let shared = SHARED
            .get_or_init(|| start_cluster(migrations))
            .clone()
            .unwrap_or_else(|e| panic!("test cluster did not start: {e}"));
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&config(&shared, "postgres", "postgres")).await;
        // Copies from one template may run at once only when nobody is connected to it;
        // retry the rare "being accessed by other users".
        for attempt in 0.. {
            match admin
                .batch_execute(&format!("create database \"{name}\" template {TEMPLATE}"))
                .await
            {
                Ok(()) => break,
                Err(e) if attempt < 50 && e.code().map(|c| c.code()) == Some("55006") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Err(e) => panic!("create test database: {e}"),
            }
        }
        TestDb { name, shared }
    }

    /// Connection settings for `user` over the cluster's socket.
    pub fn config(&self, user: &str) -> tokio_postgres::Config {
        config(&self.shared, user, &self.name)
    }

    /// A connected client as the superuser.
    pub async fn superuser(&self) -> tokio_postgres::Client {
        connect(&self.config("postgres")).await
    }

    /// Adds confirmed `authenticated` users (id, email) to `auth.users`, for policies that
    /// reference them.
    pub async fn add_users(&self, users: &[(&str, &str)]) {
        let admin = self.superuser().await;
        for (id, email) in users {
            admin
                .execute(
                    "insert into auth.users (id, aud, role, email, created_at, updated_at)
                     values ($1::text::uuid, 'authenticated', 'authenticated', $2, now(), now())",
                    &[id, email],
                )
                .await
                .unwrap_or_else(|e| panic!("cannot add user {email}: {e}"));
        }
    }

    /// A TCP URL for the superuser, as a user of `DATABASE_URL` would give it.
    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{}",
            self.shared.password, self.shared.port, self.name
        )
    }
}

fn config(shared: &Shared, user: &str, dbname: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(&shared.socket_dir)
        .port(shared.port)
        .user(user)
        .dbname(dbname);
    config
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test cluster: {e}"));
    tokio::spawn(connection);
    client
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// A temporary directory the `postgres` user can reach when tests run as root.
pub fn reachable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("craftbase-test-")
        .tempdir()
        .expect("create a temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temp dir");
    dir
}

/// Starts the cluster on a thread that lives as long as the process: PostgreSQL is told to stop
/// when the thread that spawned it dies, so that thread must not be a test's.
fn start_cluster(migrations: fn() -> Vec<Migration>) -> Result<Shared, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("testkit-cluster".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a runtime");
            let started = runtime.block_on(start_and_migrate(migrations()));
            let _ = tx.send(started);
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    let shared = rx.recv().map_err(|e| e.to_string())??;
    // SAFETY: registering a plain extern "C" function with atexit has no preconditions.
    unsafe { libc::atexit(stop_cluster) };
    Ok(shared)
}

async fn start_and_migrate(migrations: Vec<Migration>) -> Result<Shared, String> {
    let dir = reachable_tempdir();
    let spec = ClusterSpec {
        bindir: craftbase_cluster::find_bindir().map_err(|e| e.to_string())?,
        root: dir.path().join("cluster"),
        port: free_port(),
        superuser_password: "test".into(),
        throwaway: true,
        settings: Vec::new(),
    };
    let cluster = Cluster::start(spec.clone(), |_| {})
        .await
        .map_err(|e| e.to_string())?;
    let shared = Shared {
        socket_dir: spec.socket_dir(),
        port: spec.port,
        password: spec.superuser_password.clone(),
    };
    let admin = connect(&config(&shared, "postgres", "postgres")).await;
    admin
        .batch_execute(&format!("create database {TEMPLATE}"))
        .await
        .map_err(|e| e.to_string())?;
    // Every connection to the template must be closed before databases can be copied from it.
    let (mut template, connection) = config(&shared, "postgres", TEMPLATE)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    craftbase_cluster::apply(&mut template, &migrations, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    drop(template);
    let _ = connection.await;
    *CLUSTER.lock().unwrap_or_else(|e| e.into_inner()) = Some((cluster, dir));
    Ok(shared)
}

extern "C" fn stop_cluster() {
    if let Some((mut cluster, dir)) = CLUSTER.lock().unwrap_or_else(|e| e.into_inner()).take() {
        cluster.stop();
        drop(dir);
    }
}
