//! Realtime benchmark: commit-to-subscriber latency and delivered messages per second for
//! `pipeline_events` INSERTs under RLS (Tool Connect Craft's unfiltered `events-changes`
//! channel), through the real slot, decoder and visibility probes; subscribers are in-process
//! sessions (no websocket). Also the ceiling: the slot decoded with no subscribers.
//!
//! `cargo run --release -p craftbase-bench --bin realtime` (see BENCHMARKS.md).

#[path = "realtime/latency.rs"]
mod latency;
#[path = "realtime/setup.rs"]
mod setup;
#[path = "realtime/slot.rs"]
mod slot;

use std::sync::Arc;
use std::time::{Duration, Instant};

use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_realtime::Realtime;
use craftbase_shared::keys::sign;
use craftbase_testkit::TestDb;
use serde_json::json;
use tokio::sync::mpsc;

use setup::{now_micros, SECRET};

struct Bench {
    _db: TestDb,
    rt: Arc<Realtime>,
    sql: tokio_postgres::Client,
    jobs: Vec<(String, String)>,
}

async fn setup(users: usize) -> Bench {
    let started = setup::start(users, setup::keys()).await;
    Bench {
        _db: started.db,
        rt: started.rt,
        sql: started.sql,
        jobs: started.jobs,
    }
}

/// Subscribes `n` sessions to the events channel, round-robin over the users; each received
/// change's latency (µs since the writer's clock in `data.t`) is sent to the returned channel.
async fn subscribe(b: &Bench, n: usize) -> (Vec<Session>, mpsc::UnboundedReceiver<i64>) {
    let (lat_tx, lat_rx) = mpsc::unbounded_channel();
    let mut sessions = Vec::new();
    for i in 0..n {
        let (user, _) = &b.jobs[i % b.jobs.len()];
        let token = sign(
            SECRET,
            &json!({"sub": user, "role": "authenticated", "aud": "authenticated",
                    "exp": now_micros() / 1_000_000 + 3600}),
        )
        .unwrap();
        let (outlet, mut rx, _) = Outlet::new(b.rt.hub.socket_id());
        let mut s = Session::new(b.rt.clone(), outlet, None);
        s.handle(Message {
            join_ref: Some("1".into()),
            msg_ref: Some("1".into()),
            topic: "realtime:events-changes".into(),
            event: "phx_join".into(),
            payload: json!({"config": {"postgres_changes": [
                {"event": "INSERT", "schema": "public", "table": "pipeline_events"}]},
                "access_token": token}),
            raw: None,
            payload_text: None,
        })
        .await;
        loop {
            let m = rx.recv().await.unwrap();
            if m.event == "system" {
                assert_eq!(m.payload["status"], "ok", "{}", m.payload);
                break;
            }
        }
        let lat_tx = lat_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if m.event == "postgres_changes" {
                    let t = m.payload["data"]["record"]["data"]["t"]
                        .as_i64()
                        .unwrap_or(0);
                    let _ = lat_tx.send(now_micros() - t);
                }
            }
        });
        sessions.push(s);
    }
    (sessions, lat_rx)
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Inserts `total` events, `per_tx` per transaction, each for a job round-robin; with `pace`,
/// transaction i starts no earlier than i × pace after the first (an offered rate).
async fn write_events(b: &Bench, total: usize, per_tx: usize, pause: Duration) {
    paced_events(b, total, per_tx, pause, None).await
}

async fn paced_events(
    b: &Bench,
    total: usize,
    per_tx: usize,
    pause: Duration,
    pace: Option<Duration>,
) {
    let job_ids: Vec<String> = b.jobs.iter().map(|(_, j)| j.clone()).collect();
    let mut k = 0;
    let first = tokio::time::Instant::now();
    let mut tx = 0u32;
    while k < total {
        if let Some(p) = pace {
            tokio::time::sleep_until(first + p * tx).await;
            tx += 1;
        }
        let n = per_tx.min(total - k);
        let ids: Vec<&str> = (0..n)
            .map(|i| job_ids[(k + i) % job_ids.len()].as_str())
            .collect();
        b.sql
            .execute(
                "insert into public.pipeline_events (job_id, message, data)
                 select j::uuid, 'bench', jsonb_build_object('t', $2::bigint) from unnest($1::text[]) j",
                &[&ids, &now_micros()],
            )
            .await
            .unwrap();
        k += n;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

#[tokio::main]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!("users owning the events: {users}; deliveries are RLS-checked (each event is visible to its owner's subscribers only)");
    // Saturation: how many events, in transactions of how many rows (one writer).
    let env_usize = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (sat_events, tx_rows) = (
        env_usize("BENCH_EVENTS", 10_000),
        env_usize("BENCH_TX_ROWS", 100),
    );
    // Optional offered rate (events/s) instead of as fast as one connection writes.
    let rate = env_usize("BENCH_RATE", 0);
    let pace = (rate > 0).then(|| Duration::from_secs_f64(tx_rows as f64 / rate as f64));
    println!(
        "saturation: {sat_events} events in transactions of {tx_rows}, offered at {}",
        if rate > 0 {
            format!("{rate} events/s")
        } else {
            "the writer's full speed".into()
        }
    );
    println!("| subscribers | claims groups | latency p50 ms | latency p99 ms | saturation deliveries/s | events/s | saturation p50 ms | saturation p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let only: Option<usize> = std::env::var("BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok());
    if std::env::var("RUST_LOG").is_ok() {
        craftbase_shared::standalone::init_logging();
    }
    for subscribers in [1usize, 100, 1000] {
        if only.is_some_and(|o| o != subscribers) {
            continue;
        }
        // Events belong to users that have subscribers: each is delivered to its owner's
        // sessions (subscribers / groups of them) and RLS-hidden from all the others.
        let groups = subscribers.min(users);
        let b = setup(groups).await;
        let (sessions, mut lat) = subscribe(&b, subscribers).await;
        let fan = |events: usize| -> usize {
            (0..events)
                .map(|e| {
                    let owner = e % groups;
                    (0..subscribers).filter(|s| s % groups == owner).count()
                })
                .sum()
        };
        // Latency: 50 single-event transactions per second for 4 s.
        let events = 200;
        write_events(&b, events, 1, Duration::from_millis(20)).await;
        let mut l = latency::collect(&mut lat, fan(events), Duration::from_secs(30)).await;
        l.sort_unstable();
        // Saturation: the events written as fast as one connection can.
        let events = sat_events;
        let expected = fan(events);
        let start = Instant::now();
        paced_events(&b, events, tx_rows, Duration::ZERO, pace).await;
        let mut got = latency::collect(&mut lat, expected, Duration::from_secs(120)).await;
        let secs = start.elapsed().as_secs_f64();
        got.sort_unstable();
        println!(
            "| {subscribers} | {groups} | {:.1} | {:.1} | {:.0} ({} of {expected}) | {:.0} | {:.1} | {:.1} |",
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            got.len() as f64 / secs,
            got.len(),
            events as f64 / secs,
            percentile(&got, 0.5),
            percentile(&got, 0.99),
        );
        drop(sessions);
    }
    // Ceiling: the same writes decoded with no subscribers (slot caught up = decoded).
    let b = setup(users).await;
    let start = Instant::now();
    write_events(&b, 2 * sat_events, tx_rows, Duration::ZERO).await;
    slot::caught_up(&b.sql).await;
    println!(
        "ceiling, no subscribers: {} events written and decoded in {:.2} s = {:.0} events/s",
        2 * sat_events,
        start.elapsed().as_secs_f64(),
        (2 * sat_events) as f64 / start.elapsed().as_secs_f64()
    );
}
