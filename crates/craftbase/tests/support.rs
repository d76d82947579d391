//! Running the real `craftbase` binary from tests.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

pub use craftbase_testkit::{free_port, reachable_tempdir};

/// A `craftbase start` child process.
pub struct Craftbase {
    pub child: Child,
    pub api_port: u16,
    pub db_port: u16,
    pub data_dir: PathBuf,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
}

/// What `craftbase status --json` prints.
#[derive(Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Status {
    pub api_url: String,
    pub db_url: String,
    #[serde(default)]
    pub publishable_key: String,
    #[serde(default)]
    pub secret_key: String,
    pub anon_key: String,
    pub service_role_key: String,
    pub jwt_secret: String,
}

/// The Tool Connect Craft example project, for tests that need its tables.
pub fn example() -> PathBuf {
    craftbase::migrations::example_dir()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_craftbase")
}

impl Craftbase {
    /// Spawns `craftbase start` on fresh ports without waiting for it.
    pub fn spawn(data_dir: &Path, project_dir: &Path, envs: &[(&str, &str)]) -> Craftbase {
        Self::spawn_on(data_dir, project_dir, envs, free_port(), free_port())
    }

    pub fn spawn_on(
        data_dir: &Path,
        project_dir: &Path,
        envs: &[(&str, &str)],
        api_port: u16,
        db_port: u16,
    ) -> Craftbase {
        let stderr_path = data_dir.with_extension(format!("stderr-{api_port}.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("create the stderr log");
        // A file, as under a service manager: stdout is not a terminal.
        let stdout_path = data_dir.with_extension(format!("stdout-{api_port}.log"));
        let stdout = std::fs::File::create(&stdout_path).expect("create the stdout log");
        let child = Command::new(binary())
            .arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--project-dir")
            .arg(project_dir)
            .args([
                "--port",
                &api_port.to_string(),
                "--db-port",
                &db_port.to_string(),
            ])
            .env_remove("DATABASE_URL")
            .env_remove("JWT_SECRET")
            .envs(envs.iter().copied())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn craftbase");
        Craftbase {
            child,
            api_port,
            db_port,
            data_dir: data_dir.to_owned(),
            stderr_path,
            stdout_path,
        }
    }

    /// Starts craftbase and waits until `/health` answers 200.
    pub async fn start(data_dir: &Path, project_dir: &Path) -> Craftbase {
        let mut cb = Self::spawn(data_dir, project_dir, &[]);
        cb.wait_healthy().await;
        cb
    }

    /// Restarts on the same ports.
    pub async fn start_again(&self, project_dir: &Path) -> Craftbase {
        let mut cb = Self::spawn_on(
            &self.data_dir,
            project_dir,
            &[],
            self.api_port,
            self.db_port,
        );
        cb.wait_healthy().await;
        cb
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("craftbase exited with {status}:\n{}", self.stderr());
            }
            if let Ok(resp) = client.get(self.url("/health")).send().await {
                if resp.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("craftbase did not become healthy:\n{}", self.stderr());
    }

    pub fn status(&self) -> Status {
        let out = Command::new(binary())
            .args(["status", "--json", "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .expect("run craftbase status");
        assert!(out.status.success(), "status failed: {out:?}");
        serde_json::from_slice(&out.stdout).expect("status prints JSON")
    }

    /// The pid PostgreSQL recorded in its postmaster.pid.
    pub fn postmaster_pid(&self) -> u32 {
        let pidfile = self.data_dir.join("postgres/pgdata/postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).expect("read postmaster.pid");
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Sends `signal` and waits for craftbase to exit.
    pub fn signal_and_wait(&mut self, signal: i32) -> ExitStatus {
        send(self.child.id(), signal);
        self.wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("craftbase did not exit:\n{}", self.stderr()))
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Drop for Craftbase {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            send(self.child.id(), libc::SIGTERM);
            let _ = self.wait_exit(Duration::from_secs(60));
        }
    }
}

#[allow(unsafe_code)]
pub fn send(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// True while a process with this pid exists (zombies included).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `timeout` for the process to be gone.
pub fn gone_within(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !process_exists(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Connects over TCP with a URL, as an outside tool would.
pub async fn connect_url(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}
