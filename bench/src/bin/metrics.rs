//! What `/metrics` adds to every request of the API port: classifying the route and recording
//! the counter and the latency sample (`craftbase::observe::requests::record`) into the
//! Prometheus recorder craftbase installs, on one thread, in a loop. Compare with the gateway's
//! CPU per request in BENCHMARKS.md (tens of microseconds).
//!
//! `cargo run --release -p craftbase-bench --bin metrics`

use std::time::Instant;

use axum::http::StatusCode;
use craftbase::observe::{registry, requests};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATHS: [&str; 4] = [
    "/rest/v1/pipeline_jobs",
    "/rest/v1/rpc/start_job",
    "/auth/v1/user",
    "/realtime/v1/websocket",
];
const N: usize = 2_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handle = registry::handle().expect("the recorder installs");
    for round in 1..=3 {
        let started = Instant::now();
        for i in 0..N {
            let class = requests::RouteClass::of(PATHS[i % 4], Some("id=eq.1&select=*"));
            let elapsed = Instant::now();
            requests::record(class, StatusCode::OK, elapsed.elapsed().as_secs_f64());
        }
        let per = started.elapsed().as_nanos() as f64 / N as f64;
        println!("round {round}: {per:.0} ns per request (classify, two clock reads, record)");
    }
    handle.run_upkeep();
    let started = Instant::now();
    let text = handle.render();
    println!("render: {:?} for {} bytes", started.elapsed(), text.len());
}
