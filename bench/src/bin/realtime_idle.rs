//! Realtime over real websockets: the server's memory per idle connection with 10,000
//! connections, and commit-to-client latency over TCP for 1, 100 and 1,000 subscribers.
//!
//! The process serves the realtime routes (`craftbase_realtime::routes`, with the replication
//! stream running) on 127.0.0.1 over a throwaway testkit database, and runs the websocket clients
//! in a child process (this same binary with `BENCH_ROLE=client`), so the server's RSS
//! (`VmRSS` of /proc/self/status) grows by the server's share only. The child opens one socket
//! per join request it reads on stdin (minimal hand-written RFC 6455 client, sources spread over
//! 127.0.0.1–4), joins, heartbeats every 25 s, and reports `READY` and, on `report`, the
//! latencies it saw.
//!
//! `BENCH_SCENARIO=sustained` holds 1,000 subscribers under a steady insert rate for minutes and
//! samples the server's RSS and the slot's retained WAL every 10 s, to show both stay flat.
//!
//! `ulimit -n 20000; BENCH_CONNECTIONS=10000 target/release/realtime_idle` (see BENCHMARKS.md).

#[path = "realtime/setup.rs"]
mod setup;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use craftbase_shared::keys::sign;
use craftbase_testkit::TestDb;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use setup::{now_micros, SECRET};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("client") {
        client_main().await;
    } else {
        server_main().await;
    }
}

// ---- server ----------------------------------------------------------------------------

struct Server {
    _db: TestDb,
    sql: tokio_postgres::Client,
    addr: SocketAddr,
    anon: String,
    jobs: Vec<(String, String)>,
}

async fn serve(users: usize) -> Server {
    let keys = setup::keys();
    let anon = keys.anon_key.clone();
    let setup::Started { db, rt, sql, jobs } = setup::start(users, keys).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = craftbase_realtime::routes(rt);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        _db: db,
        sql,
        addr,
        anon,
        jobs,
    }
}

/// The client child process and its pipes.
struct Clients {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Clients {
    fn spawn(s: &Server) -> Clients {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .env("BENCH_ROLE", "client")
            .env("BENCH_ADDR", s.addr.to_string())
            .env("BENCH_APIKEY", &s.anon)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Clients {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }

    /// The child's next line starting with `prefix` (others are echoed).
    async fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .stdout
                .next_line()
                .await
                .unwrap()
                .expect("client process ended");
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
            println!("client: {line}");
        }
    }

    async fn end(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

async fn idle_memory(connections: usize) {
    let s = serve(1).await;
    // Settle the runtime's own allocations with one connection opened and closed.
    let mut warm = Clients::spawn(&s);
    warm.send(&idle_join(0)).await;
    warm.send("go").await;
    warm.expect("READY").await;
    warm.end().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let before = rss_kib();
    let mut c = Clients::spawn(&s);
    for i in 0..connections {
        c.send(&idle_join(i)).await;
    }
    c.send("go").await;
    let started = std::time::Instant::now();
    let ready = c.expect("READY").await;
    let open_secs = started.elapsed().as_secs_f64();
    // Let every socket's join and first heartbeat settle, then a heartbeat round (25 s) pass.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = rss_kib();
    let alive = c.expect_after("alive").await;
    println!(
        "idle connections: {ready} joined in {open_secs:.1} s, {alive} still open after 30 s; \
         server RSS {before} KiB -> {after} KiB: {:.1} KiB per connection",
        (after as f64 - before as f64) / connections as f64
    );
    c.end().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("after the clients closed: server RSS {} KiB", rss_kib());
}

impl Clients {
    /// Joins `subscribers` sockets to the app's `events-changes` channel, round-robin over the
    /// users, and waits until every one is subscribed.
    async fn join_events(&mut self, s: &Server, subscribers: usize) {
        for i in 0..subscribers {
            let (user, _) = &s.jobs[i % s.jobs.len()];
            let token = sign(
                SECRET,
                &json!({"sub": user, "role": "authenticated", "aud": "authenticated",
                        "exp": now_micros() / 1_000_000 + 24 * 3600}),
            )
            .unwrap();
            self.send(
                &json!({"topic": "realtime:events-changes",
                        "payload": {"config": {"postgres_changes": [
                            {"event": "INSERT", "schema": "public", "table": "pipeline_events"}]},
                            "access_token": token},
                        "wait_system": true})
                .to_string(),
            )
            .await;
        }
        self.send("go").await;
        self.expect("READY").await;
    }

    async fn expect_after(&mut self, command: &str) -> String {
        self.send(command).await;
        self.expect(&command.to_uppercase()).await
    }
}

fn idle_join(i: usize) -> String {
    json!({"topic": format!("realtime:idle-{}", i % 100),
           "payload": {"config": {"broadcast": {"self": false, "ack": false},
                                  "presence": {"key": ""}, "postgres_changes": []}},
           "wait_system": false})
    .to_string()
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn latency(subscribers: usize, users: usize) {
    let groups = subscribers.min(users);
    let s = serve(groups).await;
    let mut c = Clients::spawn(&s);
    c.join_events(&s, subscribers).await;
    // 200 single-event transactions at 50 per second, round-robin over the users' jobs.
    let events = 200;
    let job_ids: Vec<String> = s.jobs.iter().map(|(_, j)| j.clone()).collect();
    for k in 0..events {
        s.sql
            .execute(
                "insert into public.pipeline_events (job_id, message, data)
                 values ($1::text::uuid, 'bench', jsonb_build_object('t', $2::bigint))",
                &[&job_ids[k % job_ids.len()], &now_micros()],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected: usize = (0..events)
        .map(|e| {
            (0..subscribers)
                .filter(|s| s % groups == e % groups)
                .count()
        })
        .sum();
    // Wait until all arrived (or 30 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got: Vec<i64>;
    loop {
        let line = c.expect_after("report").await;
        got = serde_json::from_str(&line).unwrap();
        if got.len() >= expected || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    got.sort_unstable();
    println!(
        "| {subscribers} | {groups} | {:.1} | {:.1} | {} of {expected} |",
        percentile(&got, 0.5),
        percentile(&got, 0.99),
        got.len()
    );
    c.end().await;
}

/// Sustained load: `rate` single-row INSERTs per second (in 100 ms batches) for `seconds`,
/// every subscriber on the unfiltered RLS channel. Every 10 s it prints the server's RSS, the
/// WAL the slot retains (server position minus `confirmed_flush_lsn`, and minus `restart_lsn`)
/// and the deliveries of that window, then compares the first and the last minute.
async fn sustained(subscribers: usize, users: usize, rate: usize, seconds: usize) {
    let groups = subscribers.min(users);
    let s = serve(groups).await;
    let mut c = Clients::spawn(&s);
    c.join_events(&s, subscribers).await;
    let job_ids: Vec<String> = s.jobs.iter().map(|(_, j)| j.clone()).collect();
    let per_tick = (rate / 10).max(1) as i64;
    let started = std::time::Instant::now();
    let end = started + Duration::from_secs(seconds as u64);
    println!(
        "sustained: {subscribers} subscribers of {groups} users, {rate} inserts/s for {seconds} s"
    );
    println!("| t s | rows written | server RSS MiB | slot lag (confirmed) KiB | slot lag (restart) KiB | delivered in window | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let writer = async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut written = 0i64;
        while std::time::Instant::now() < end {
            tick.tick().await;
            s.sql
                .execute(
                    "insert into public.pipeline_events (job_id, message, data)
                     select ($1::text[])[1 + (($3::bigint + g) % array_length($1::text[], 1))]::uuid,
                            'bench', jsonb_build_object('t', $2::bigint)
                     from generate_series(0, $4::bigint - 1) g",
                    &[&job_ids, &now_micros(), &written, &per_tick],
                )
                .await
                .unwrap();
            written += per_tick;
        }
        written
    };
    let sampler = async {
        let mut samples: Vec<(u64, f64)> = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            let t = started.elapsed().as_secs();
            let lag = s
                .sql
                .query_one(
                    "select (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint,
                            (pg_current_wal_lsn() - restart_lsn)::bigint,
                            (select count(*) from public.pipeline_events where message = 'bench')
                     from pg_replication_slots where database = current_database()",
                    &[],
                )
                .await
                .unwrap();
            let (confirmed, restart, rows): (i64, i64, i64) = (lag.get(0), lag.get(1), lag.get(2));
            let rss = rss_kib() as f64 / 1024.0;
            let window = c.expect_after("window").await;
            let w: Vec<&str> = window.split(' ').collect();
            println!(
                "| {t} | {rows} | {rss:.1} | {} | {} | {} | {} | {} |",
                confirmed / 1024,
                restart / 1024,
                w[0],
                w[1],
                w[2]
            );
            samples.push((t, rss));
            if std::time::Instant::now() >= end {
                return samples;
            }
        }
    };
    let (written, samples) = tokio::join!(writer, sampler);
    let mean = |from: u64, to: u64| {
        let v: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t > from && *t <= to)
            .map(|(_, r)| *r)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let last = samples.last().map(|(t, _)| *t).unwrap_or(0);
    println!(
        "{written} rows written in {:.0} s; server RSS mean of the first minute {:.1} MiB, \
         of the last minute {:.1} MiB",
        started.elapsed().as_secs_f64(),
        mean(0, 60),
        mean(last.saturating_sub(60), last)
    );
    c.end().await;
}

async fn server_main() {
    if std::env::var("RUST_LOG").is_ok() {
        craftbase_shared::standalone::init_logging();
    }
    let scenario = std::env::var("BENCH_SCENARIO").unwrap_or_else(|_| "all".into());
    if scenario == "all" || scenario == "idle" {
        idle_memory(env_usize("BENCH_CONNECTIONS", 10_000)).await;
    }
    if scenario == "sustained" {
        sustained(
            env_usize("BENCH_SUBSCRIBERS", 1000),
            env_usize("BENCH_USERS", 100),
            env_usize("BENCH_RATE", 2000),
            env_usize("BENCH_SECONDS", 240),
        )
        .await;
    }
    if scenario == "all" || scenario == "latency" {
        let users = env_usize("BENCH_USERS", 100);
        println!(
            "commit-to-client latency over websockets, 200 events at 50/s, {users} users own them:"
        );
        println!("| subscribers | claims groups | p50 ms | p99 ms | received |");
        println!("|---|---|---|---|---|");
        let only = std::env::var("BENCH_SUBSCRIBERS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok());
        for n in [1usize, 100, 1000] {
            if only.is_none_or(|o| o == n) {
                latency(n, users).await;
            }
        }
    }
}

// ---- client (child process) -------------------------------------------------------------

async fn client_main() {
    let addr: SocketAddr = std::env::var("BENCH_ADDR").unwrap().parse().unwrap();
    let apikey = std::env::var("BENCH_APIKEY").unwrap();
    // Stdin on a thread (tokio's `io-std` is not enabled in the workspace).
    let (line_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if line_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut joins = Vec::new();
    while let Some(line) = lines.recv().await {
        if line == "go" {
            break;
        }
        joins.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let (lat_tx, mut lat_rx) = mpsc::unbounded_channel::<i64>();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    let alive = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(200));
    let total = joins.len();
    for (i, join) in joins.into_iter().enumerate() {
        let (lat_tx, ready_tx, alive, gate, apikey) = (
            lat_tx.clone(),
            ready_tx.clone(),
            alive.clone(),
            gate.clone(),
            apikey.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let source = Ipv4Addr::new(127, 0, 0, 1 + (i % 4) as u8);
            match connection(addr, source, &apikey, join, lat_tx, permit, &ready_tx).await {
                Ok(()) => {}
                Err(e) => {
                    eprintln!("connection {i}: {e}");
                    let _ = ready_tx.send(false);
                }
            }
            drop(alive);
        });
    }
    drop(ready_tx);
    let mut ok = 0;
    for _ in 0..total {
        if ready_rx.recv().await == Some(true) {
            ok += 1;
        }
    }
    println!("READY {ok}");
    let mut latencies = Vec::new();
    while let Some(line) = lines.recv().await {
        while let Ok(l) = lat_rx.try_recv() {
            latencies.push(l);
        }
        match line.as_str() {
            "report" => println!("REPORT {}", serde_json::to_string(&latencies).unwrap()),
            "window" => {
                // Count and percentiles since the last window, then forget them (bounded memory).
                latencies.sort_unstable();
                println!(
                    "WINDOW {} {:.1} {:.1}",
                    latencies.len(),
                    percentile(&latencies, 0.5),
                    percentile(&latencies, 0.99)
                );
                latencies.clear();
            }
            "alive" => println!("ALIVE {}", Arc::strong_count(&alive) - 1),
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    addr: SocketAddr,
    source: Ipv4Addr,
    apikey: &str,
    join: Value,
    lat_tx: mpsc::UnboundedSender<i64>,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready_tx: &mpsc::UnboundedSender<bool>,
) -> Result<(), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
        .map_err(|e| e.to_string())?;
    let mut stream: TcpStream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!(
                "GET /websocket?apikey={apikey}&vsn=1.0.0 HTTP/1.1\r\nHost: {addr}\r\n\
                 Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(2048, read);
    // The handshake response, up to the blank line.
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed during the handshake".into());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: {head}"));
    }
    let wait_system = join["wait_system"].as_bool().unwrap_or(false);
    let topic = join["topic"].as_str().unwrap_or_default().to_owned();
    let msg = json!({"topic": topic, "event": "phx_join", "payload": join["payload"], "ref": "1", "join_ref": "1"});
    send_text(&mut write, &msg.to_string()).await?;
    let (mut replied, mut system) = (false, !wait_system);
    while !(replied && system) {
        let m = read_message(&mut read)
            .await?
            .ok_or("closed during the join")?;
        match m["event"].as_str() {
            Some("phx_reply") => {
                if m["payload"]["status"] != "ok" {
                    return Err(format!("join refused: {m}"));
                }
                replied = true;
            }
            Some("system") => system = true,
            _ => {}
        }
    }
    send_text(
        &mut write,
        &json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "2"}).to_string(),
    )
    .await?;
    drop(permit);
    let _ = ready_tx.send(true);
    // Heartbeats every 25 s, as realtime-js sends them; the reader records latencies.
    let heartbeats = tokio::spawn(async move {
        let mut n = 3u64;
        loop {
            tokio::time::sleep(Duration::from_secs(25)).await;
            let hb = json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": n.to_string()});
            if send_text(&mut write, &hb.to_string()).await.is_err() {
                return;
            }
            n += 1;
        }
    });
    while let Some(m) = read_message(&mut read).await? {
        if m["event"] == "postgres_changes" {
            if let Some(t) = m["payload"]["data"]["record"]["data"]["t"].as_i64() {
                let _ = lat_tx.send(now_micros() - t);
            }
        }
    }
    heartbeats.abort();
    Ok(())
}

/// One masked text frame (a zero mask key: valid, and the payload needs no XOR).
async fn send_text<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> Result<(), String> {
    let len = text.len();
    let mut frame = Vec::with_capacity(len + 14);
    frame.push(0x81);
    if len < 126 {
        frame.push(0x80 | len as u8);
    } else if len < 65536 {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        frame.push(0x80 | 127);
        frame.extend_from_slice(&(len as u64).to_be_bytes());
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(text.as_bytes());
    w.write_all(&frame).await.map_err(|e| e.to_string())
}

/// The next text message as JSON (None when the socket closes); control frames are skipped.
async fn read_message<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Result<Option<Value>, String> {
    loop {
        let mut head = [0u8; 2];
        if r.read_exact(&mut head).await.is_err() {
            return Ok(None);
        }
        let mut len = (head[1] & 0x7f) as u64;
        if len == 126 {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            len = u16::from_be_bytes(b) as u64;
        } else if len == 127 {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await.map_err(|e| e.to_string())?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)
            .await
            .map_err(|e| e.to_string())?;
        match head[0] & 0x0f {
            0x1 => {
                return serde_json::from_slice(&payload)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            0x8 => return Ok(None),
            _ => {}
        }
    }
}
