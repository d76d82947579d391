//! One PostgreSQL cluster, initialised on first start and run as a child process.

use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process;

/// How long a start may take before craftbase gives up (initdb is separate).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown may take before PostgreSQL is told to quit immediately.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("PostgreSQL's server binaries (postgres, initdb, pg_ctl) were not found in `pg_config --bindir`, PATH or /usr/lib/postgresql/*/bin. Install them, e.g. `apt-get install postgresql` (Debian/Ubuntu), `dnf install postgresql-server` (Fedora) or `brew install postgresql@15` (macOS), or set DATABASE_URL to use a running server")]
    NoBinaries,
    #[error("running as root, PostgreSQL must run as the `postgres` user, and there is none: create it (`useradd --system postgres`) or run craftbase as an ordinary user")]
    NoPostgresUser,
    #[error("the postgres user cannot reach {0}: a parent directory is not searchable by others; choose a --data-dir under /tmp or /var/lib, or run craftbase as an ordinary user")]
    Unreachable(PathBuf),
    #[error("{0} exists but is not a PostgreSQL data directory and is not empty")]
    NotADataDirectory(PathBuf),
    #[error("initdb failed: {0}")]
    Initdb(String),
    #[error("PostgreSQL did not start: {0}")]
    Start(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

/// Where and how to run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// PostgreSQL's `bin` directory.
    pub bindir: PathBuf,
    /// Directory holding `pgdata/`, the socket directory `run/` and `postgres.log`.
    pub root: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Password of the `postgres` superuser for TCP connections (set at initdb).
    pub superuser_password: String,
    /// Trade durability for speed (fsync off): for test clusters only.
    pub throwaway: bool,
    /// More `name=value` server settings, applied last so they win.
    pub settings: Vec<String>,
}

impl ClusterSpec {
    pub fn pgdata(&self) -> PathBuf {
        self.root.join("pgdata")
    }
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }
}

/// A running cluster. Call [`Cluster::stop`] to shut it down; if the spawning thread dies first,
/// PostgreSQL gets SIGINT (fast shutdown) from the kernel.
pub struct Cluster {
    spec: ClusterSpec,
    child: Child,
}

impl Cluster {
    /// Initialises the cluster if needed (telling `progress`), starts it, and waits until it
    /// accepts connections.
    pub async fn start(
        spec: ClusterSpec,
        mut progress: impl FnMut(&str),
    ) -> Result<Cluster, ClusterError> {
        let owner = Owner::for_this_process()?;
        prepare_dirs(&spec, &owner)?;
        if !spec.pgdata().join("PG_VERSION").exists() {
            progress("initialising PostgreSQL cluster");
            initdb(&spec, &owner)?;
        }
        wait_for_previous_postmaster(&spec.pgdata());
        progress("starting PostgreSQL");
        let child = spawn_postgres(&spec, &owner)?;
        let mut cluster = Cluster { spec, child };
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Connection settings over the Unix socket (trusted locally; the socket directory is
    /// private to the cluster's owner).
    pub fn socket_config(&self, user: &str, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.spec.socket_dir())
            .port(self.spec.port)
            .user(user)
            .dbname(dbname)
            .application_name("craftbase");
        config
    }

    /// A URL the superuser can connect with over TCP.
    pub fn superuser_url(&self, dbname: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{}",
            self.spec.superuser_password, self.spec.port, dbname
        )
    }

    /// Starts PostgreSQL again after it exited on its own (a crash, the OOM killer, `pg_ctl
    /// stop`), once the old postmaster is gone. Like [`Cluster::start`], call it from the thread
    /// PostgreSQL should not outlive. The caller waits for it to accept connections.
    pub fn respawn(&mut self) -> Result<(), ClusterError> {
        let owner = Owner::for_this_process()?;
        let _ = self.child.try_wait();
        wait_for_previous_postmaster(&self.spec.pgdata());
        self.child = spawn_postgres(&self.spec, &owner)?;
        Ok(())
    }

    /// The end of PostgreSQL's log, for errors.
    pub fn log_tail(&self) -> String {
        log_tail(&self.spec.log_file())
    }

    /// True once PostgreSQL has exited on its own.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Fast shutdown; after [`STOP_TIMEOUT`], immediate shutdown. Blocks until PostgreSQL is gone.
    pub fn stop(&mut self) {
        if self.has_exited() {
            return;
        }
        process::signal(self.child.id(), libc::SIGINT);
        if wait_exit(&mut self.child, STOP_TIMEOUT) {
            return;
        }
        tracing::warn!("postgres did not stop in time; sending SIGQUIT");
        process::signal(self.child.id(), libc::SIGQUIT);
        if !wait_exit(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn wait_ready(&mut self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let config = self.socket_config("postgres", "postgres");
        loop {
            if self.has_exited() {
                return Err(ClusterError::Start(format!(
                    "postgres exited; its log ({}) ends with:\n{}",
                    self.spec.log_file().display(),
                    log_tail(&self.spec.log_file())
                )));
            }
            match config.connect(tokio_postgres::NoTls).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    self.stop();
                    return Err(ClusterError::Start(format!(
                        "not accepting connections after {READY_TIMEOUT:?}: {e}"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

/// Who runs PostgreSQL: this process's user, or `postgres` when we are root.
struct Owner {
    ids: Option<(u32, u32)>,
}

impl Owner {
    fn for_this_process() -> Result<Self, ClusterError> {
        if !process::is_root() {
            return Ok(Owner { ids: None });
        }
        let ids = process::postgres_account().ok_or(ClusterError::NoPostgresUser)?;
        Ok(Owner { ids: Some(ids) })
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Makes `path` belong to the PostgreSQL user, private to it.
    fn own(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.ids {
            chown(path, Some(uid), Some(gid)).map_err(io(format!("chown {}", path.display())))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", path.display())))
    }
}

fn prepare_dirs(spec: &ClusterSpec, owner: &Owner) -> Result<(), ClusterError> {
    for dir in [spec.root.clone(), spec.pgdata(), spec.socket_dir()] {
        fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        owner.own(&dir)?;
    }
    let pgdata = spec.pgdata();
    let initialised = pgdata.join("PG_VERSION").exists();
    let empty = fs::read_dir(&pgdata)
        .map_err(io(format!("read {}", pgdata.display())))?
        .next()
        .is_none();
    if !initialised && !empty {
        return Err(ClusterError::NotADataDirectory(pgdata));
    }
    if owner.ids.is_some() && !reachable_by_postgres(&spec.root) {
        return Err(ClusterError::Unreachable(spec.root.clone()));
    }
    Ok(())
}

/// True unless we run as root and some ancestor of `dir` is not searchable by others, in which
/// case the `postgres` user could not open files inside it.
pub fn reachable_by_postgres(dir: &Path) -> bool {
    if !process::is_root() {
        return true;
    }
    let Ok(dir) = fs::canonicalize(dir) else {
        return false;
    };
    dir.ancestors()
        .skip(1)
        .all(|d| fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
}

fn initdb(spec: &ClusterSpec, owner: &Owner) -> Result<(), ClusterError> {
    let pwfile = spec.root.join("initdb.pw");
    fs::write(&pwfile, format!("{}\n", spec.superuser_password))
        .map_err(io("write the initdb password file"))?;
    owner.own(&pwfile)?;
    let output = owner
        .command(spec.bindir.join("initdb"))
        .arg("-D")
        .arg(spec.pgdata())
        .args(["-U", "postgres", "-E", "UTF8", "--locale=C"])
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .output()
        .map_err(io("run initdb"));
    let _ = fs::remove_file(&pwfile);
    let output = output?;
    if !output.status.success() {
        // initdb leaves a half-made directory behind; clear it so the next start begins afresh.
        let _ = fs::remove_dir_all(spec.pgdata());
        return Err(ClusterError::Initdb(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

/// After a craftbase was killed, its PostgreSQL is still shutting down (it got SIGINT from the
/// kernel). Wait for it, then make sure it is gone; PostgreSQL itself clears a stale
/// postmaster.pid whose process no longer exists.
fn wait_for_previous_postmaster(pgdata: &Path) {
    let Some(pid) = fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
    else {
        return;
    };
    let is_postgres = |pid: u32| {
        process::alive(pid)
            && fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("postgres"))
                .unwrap_or(true)
    };
    if !is_postgres(pid) {
        return;
    }
    tracing::info!(pid, "waiting for the previous PostgreSQL to stop");
    for (signal, wait) in [
        (None, Duration::from_secs(10)),
        (Some(libc::SIGINT), STOP_TIMEOUT),
        (Some(libc::SIGQUIT), Duration::from_secs(10)),
    ] {
        if let Some(signal) = signal {
            process::signal(pid, signal);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if !is_postgres(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn_postgres(spec: &ClusterSpec, owner: &Owner) -> Result<Child, ClusterError> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.log_file())
        .map_err(io(format!("open {}", spec.log_file().display())))?;
    let log_err = log.try_clone().map_err(io("duplicate the log handle"))?;
    let mut cmd = owner.command(spec.bindir.join("postgres"));
    cmd.arg("-D")
        .arg(spec.pgdata())
        .arg("-k")
        .arg(spec.socket_dir())
        .args(["-p", &spec.port.to_string(), "-h", "127.0.0.1"])
        .args(["-c", "wal_level=logical"])
        .args(["-c", "max_wal_senders=10", "-c", "max_replication_slots=10"])
        .args(["-c", "unix_socket_permissions=0700"])
        .args(["-c", "max_connections=200"]);
    if spec.throwaway {
        cmd.args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off"]);
    }
    for setting in &spec.settings {
        cmd.arg("-c").arg(setting);
    }
    // Its own process group: a Ctrl-C on the terminal reaches craftbase, which then stops
    // PostgreSQL in order, after the API has stopped taking requests.
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    process::die_with_parent(&mut cmd, libc::SIGINT);
    cmd.spawn().map_err(io("spawn postgres"))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
