//! Broadcast from the database: rows inserted into `realtime.messages` (as `realtime.send` does)
//! delivered from the replication stream to subscribers of private topics, each message checked
//! for each subscriber against the `realtime.messages` SELECT policy (room membership, an
//! `EXISTS` with `realtime.topic()`), through the real slot, decoder and per-message check, into
//! in-process sessions (no websocket). Beside it, the same inserts with nobody subscribed.
//!
//! `cargo run --release -p craftbase-bench --bin realtime_broadcast` (see BENCHMARKS.md).

#[path = "realtime/latency.rs"]
mod latency;
#[path = "realtime/setup.rs"]
mod setup;
#[path = "realtime/slot.rs"]
mod slot;

use std::time::{Duration, Instant};

use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_shared::keys::sign;
use serde_json::json;
use tokio::sync::mpsc;

use setup::{now_micros, Started, SECRET};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// CPU time (user + system) in seconds: of this process, and of the whole machine.
fn cpu() -> (f64, f64) {
    let tick = 100.0; // USER_HZ on Linux
    let own = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = own
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let own = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    }) / tick;
    let all = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let busy: f64 = all
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .enumerate()
        .filter(|(i, _)| ![3, 4].contains(i)) // idle, iowait
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum();
    (own, busy / tick)
}

/// Rooms and their members: user i is a member of room i mod `rooms`; the policy lets members
/// read their room's messages.
async fn rooms(s: &Started, rooms: usize) {
    let users: Vec<&str> = s.jobs.iter().map(|(u, _)| u.as_str()).collect();
    s.sql
        .batch_execute(
            "create table public.room_members (room text, user_id uuid, primary key (room, user_id));
             grant select on public.room_members to authenticated;
             create policy room_read on realtime.messages for select to authenticated
               using (exists (select 1 from public.room_members m
                               where m.room = (select realtime.topic()) and m.user_id = (select auth.uid())))",
        )
        .await
        .unwrap();
    s.sql
        .execute(
            "insert into public.room_members
             select 'room-' || ((n - 1) % $2::int), u::uuid from unnest($1::text[]) with ordinality t(u, n)",
            &[&users, &(rooms as i32)],
        )
        .await
        .unwrap();
}

/// Joins one private session per user to its room; latencies (µs) of received broadcasts go to
/// the returned channel.
async fn subscribe(s: &Started, rooms: usize) -> (Vec<Session>, mpsc::UnboundedReceiver<i64>) {
    let (lat_tx, lat_rx) = mpsc::unbounded_channel();
    let mut sessions = Vec::new();
    for (i, (user, _)) in s.jobs.iter().enumerate() {
        let token = sign(
            SECRET,
            &json!({"sub": user, "role": "authenticated", "aud": "authenticated",
                    "exp": now_micros() / 1_000_000 + 3600}),
        )
        .unwrap();
        let (outlet, mut rx, _) = Outlet::new(s.rt.hub.socket_id());
        let mut session = Session::new(s.rt.clone(), outlet, None);
        session
            .handle(Message {
                join_ref: Some("1".into()),
                msg_ref: Some("1".into()),
                topic: format!("realtime:room-{}", i % rooms),
                event: "phx_join".into(),
                payload: json!({"config": {"private": true}, "access_token": token}),
                raw: None,
                payload_text: None,
            })
            .await;
        let reply = rx.recv().await.unwrap();
        assert_eq!(reply.payload["status"], "ok", "{}", reply.payload);
        let lat_tx = lat_tx.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if m.event == "broadcast" {
                    let t = m.payload["payload"]["t"].as_i64().unwrap_or(0);
                    let _ = lat_tx.send(now_micros() - t);
                }
            }
        });
        sessions.push(session);
    }
    (sessions, lat_rx)
}

/// Inserts `total` private messages, `per_tx` per transaction, round-robin over the rooms; with
/// `pace`, transaction i starts no earlier than i × pace after the first.
async fn write(s: &Started, rooms: usize, total: usize, per_tx: usize, pace: Option<Duration>) {
    let first = tokio::time::Instant::now();
    let (mut k, mut tx) = (0usize, 0u32);
    while k < total {
        if let Some(p) = pace {
            tokio::time::sleep_until(first + p * tx).await;
        }
        tx += 1;
        let n = per_tx.min(total - k);
        s.sql
            .execute(
                "insert into realtime.messages (topic, extension, event, payload, private)
                 select 'room-' || ((g + $1::int) % $2::int), 'broadcast', 'bench',
                        jsonb_build_object('t', $3::bigint), true
                 from generate_series(1, $4::int) g",
                &[&(k as i32), &(rooms as i32), &now_micros(), &(n as i32)],
            )
            .await
            .unwrap();
        k += n;
    }
}

fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let subscribers = env_usize("BENCH_SUBSCRIBERS", 1000);
    let room_count = env_usize("BENCH_ROOMS", 10);
    let messages = env_usize("BENCH_MESSAGES", 2000);
    let per_tx = env_usize("BENCH_TX_ROWS", 10);
    // Latency load: messages/s offered (default: half of 20,000 deliveries/s).
    let per_room = subscribers / room_count;
    let rate = env_usize("BENCH_RATE", 10_000 / per_room.max(1));
    if std::env::var("RUST_LOG").is_ok() {
        craftbase_shared::standalone::init_logging();
    }
    println!(
        "{subscribers} subscribers (distinct users) in {room_count} private rooms ({per_room} each); every delivery RLS-checked per message"
    );

    // Baseline: the same inserts, nobody subscribed (the stream decodes and skips them).
    let s = setup::start(subscribers, setup::keys()).await;
    rooms(&s, room_count).await;
    let (c0, m0) = cpu();
    let t0 = Instant::now();
    write(&s, room_count, messages, per_tx, None).await;
    slot::caught_up(&s.sql).await;
    let base_secs = t0.elapsed().as_secs_f64();
    let (c1, m1) = cpu();
    println!(
        "baseline, nobody subscribed: {messages} messages in tx of {per_tx}: {:.2} s = {:.0} messages/s; CPU this process {:.2} s, machine {:.2} s",
        base_secs,
        messages as f64 / base_secs,
        c1 - c0,
        m1 - m0
    );
    drop(s);

    let s = setup::start(subscribers, setup::keys()).await;
    println!(
        "database: {}",
        s.db.config("postgres").get_dbname().unwrap_or("?")
    );
    rooms(&s, room_count).await;
    let (sessions, mut lat) = subscribe(&s, room_count).await;
    // Latency at the offered rate, single-message transactions.
    let n = (rate * 5).max(50);
    write(
        &s,
        room_count,
        n,
        1,
        Some(Duration::from_secs_f64(1.0 / rate as f64)),
    )
    .await;
    let mut l = latency::collect(&mut lat, n * per_room, Duration::from_secs(60)).await;
    l.sort_unstable();
    println!(
        "latency at {rate} messages/s ({} deliveries/s offered): p50 {:.1} ms, p99 {:.1} ms ({} of {} received)",
        rate * per_room,
        pct(&l, 0.5),
        pct(&l, 0.99),
        l.len(),
        n * per_room
    );
    // Saturation: as fast as one connection writes.
    let expected = messages * per_room;
    let (c0, m0) = cpu();
    let t0 = Instant::now();
    write(&s, room_count, messages, per_tx, None).await;
    let mut got = latency::collect(&mut lat, expected, Duration::from_secs(120)).await;
    let secs = t0.elapsed().as_secs_f64();
    let (c1, m1) = cpu();
    got.sort_unstable();
    println!(
        "saturation: {messages} messages in tx of {per_tx}: {:.0} deliveries/s ({} of {expected}) in {:.2} s, p50 {:.1} ms, p99 {:.1} ms; CPU this process {:.2} s, machine {:.2} s",
        got.len() as f64 / secs,
        got.len(),
        secs,
        pct(&got, 0.5),
        pct(&got, 0.99),
        c1 - c0,
        m1 - m0
    );
    drop(sessions);
}
