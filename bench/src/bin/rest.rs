//! Load generator: GET by primary key and a filtered list on `pipeline_jobs`, both under RLS as
//! an authenticated user, through the gateway over HTTP at 1, 10 and 50 concurrent connections;
//! and, in the same run, the ceiling: the same transaction (set_config + statement) sent straight
//! to PostgreSQL with tokio-postgres over a pool of the same size.
//!
//! `cargo run --release -p craftbase-bench --bin rest -- [seconds per cell]` (see BENCHMARKS.md).

#[path = "rest/cpu.rs"]
mod cpu;
#[path = "rest/load.rs"]
mod load;

use std::sync::Arc;
use std::time::Duration;

use craftbase_shared::{keys, ApiKeys, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;

/// The allocator the craftbase binary uses, so the gateway runs here as it runs there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USER: &str = "11111111-1111-4111-8111-111111111111";
const OTHER: &str = "22222222-2222-4222-8222-222222222222";
const SECRET: &str = "load-test-secret-of-enough-length-0123456789";
const CONCURRENCY: [usize; 3] = [1, 10, 50];
/// `craftbase start`'s default `--pool-size` (PGRST_DB_POOL).
const DEFAULT_POOL: usize = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    seed(&db).await?;
    let ids = job_ids(&db).await?;

    // Both sides get the same pool: craftbase's default size unless POOL says otherwise.
    let pool_size: usize = match std::env::var("POOL") {
        Ok(n) => n.parse()?,
        Err(_) => DEFAULT_POOL,
    };
    let pool = craftbase_shared::pool::build(db.config("authenticator"), pool_size);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let ctx = ServiceContext {
        roles: Arc::new(RoleSwitch::load(&**pool.get().await?).await?),
        db: pool,
        admin: craftbase_shared::pool::build(db.config("postgres"), 2),
        admin_conninfo: craftbase_shared::pool::conninfo(&db.config("postgres")),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(ApiKeys::mint(SECRET, now)?),
    };
    let router = craftbase_gateway::router(ctx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(craftbase_shared::server::serve(
        listener,
        router,
        craftbase_shared::server::HttpLimits::default(),
        std::future::pending(),
    ));
    let token = keys::sign(
        SECRET,
        &serde_json::json!({"sub": USER, "role": "authenticated", "aud": "authenticated", "exp": now + 86_400}),
    )?;
    // The settings the gateway sends for these requests, word for word: the token's claims and
    // the request's headers as JSON.
    let claims = serde_json::json!({"sub": USER, "role": "authenticated", "aud": "authenticated", "exp": now + 86_400})
        .to_string();
    let headers = serde_json::json!({"accept-profile": "public", "authorization": format!("Bearer {token}"), "host": "bench"})
        .to_string();
    let settings = Arc::new((claims, headers));
    let direct = craftbase_shared::pool::build(db.config("authenticator"), pool_size);

    let postmaster: i32 = db
        .superuser()
        .await
        .query_one("select pg_backend_pid()", &[])
        .await?
        .get(0);
    let postmaster = std::fs::read_to_string(format!("/proc/{postmaster}/stat"))?
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(1)?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot find the postmaster"))?;
    eprintln!("postmaster pid {postmaster}");
    let meter = cpu::Meter::new(postmaster);
    let mut cpu_rows = Vec::new();

    println!("| scenario | connections | gateway req/s | p50 ms | p99 ms | ceiling req/s | p50 ms | p99 ms | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    // SCENARIO=key|list and CONNECTIONS=n narrow the run, e.g. for `perf record`.
    let scenarios: Vec<Scenario> = match std::env::var("SCENARIO").as_deref() {
        Ok("key") => vec![Scenario::ByKey],
        Ok("list") => vec![Scenario::List],
        _ => vec![Scenario::ByKey, Scenario::List],
    };
    let concurrency: Vec<usize> = match std::env::var("CONNECTIONS") {
        Ok(n) => vec![n.parse()?],
        Err(_) => CONCURRENCY.to_vec(),
    };
    for scenario in scenarios {
        for &n in &concurrency {
            // Alternate one-second slices of each, so that noise from other work on the machine
            // falls on both alike.
            let slice = Duration::from_secs(1);
            // LOAD_ONLY=gateway|ceiling runs one side alone, e.g. under `perf stat`.
            let only = std::env::var("LOAD_ONLY").unwrap_or_default();
            let (mut http, mut ceiling) = (Vec::new(), Vec::new());
            let (mut http_cpu, mut ceiling_cpu) = (cpu::Spent::default(), cpu::Spent::default());
            for _ in 0..seconds {
                if only == "ceiling" {
                    http.push(0);
                } else {
                    let before = meter.sample();
                    http.extend(
                        run(n, slice, |i| {
                            let (ids, token) = (ids.clone(), token.clone());
                            async move {
                                load::http_worker(addr, &token, scenario, &ids, i, slice).await
                            }
                        })
                        .await?,
                    );
                    http_cpu.add(before, meter.sample());
                }
                if only == "gateway" {
                    ceiling.push(0);
                    continue;
                }
                let before = meter.sample();
                ceiling.extend(
                    run(n, slice, |i| {
                        let (ids, settings, pool) = (ids.clone(), settings.clone(), direct.clone());
                        async move {
                            let (claims, headers) = &*settings;
                            load::sql_worker(&pool, claims, headers, scenario, &ids, i, slice).await
                        }
                    })
                    .await?,
                );
                ceiling_cpu.add(before, meter.sample());
            }
            let (gw_own, gw_pg) = meter.per_request(http_cpu, http.len());
            let (ce_own, ce_pg) = meter.per_request(ceiling_cpu, ceiling.len());
            cpu_rows.push(format!(
                "| {} | {n} | {gw_own:.0} | {gw_pg:.0} | {ce_own:.0} | {ce_pg:.0} |",
                scenario.name()
            ));
            let total = Duration::from_secs(seconds);
            let (http, ceiling) = (stats(http, total), stats(ceiling, total));
            println!(
                "| {} | {n} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
                scenario.name(),
                http.rate,
                http.p50,
                http.p99,
                ceiling.rate,
                ceiling.p50,
                ceiling.p99,
                http.rate / ceiling.rate
            );
        }
    }
    println!("\nCPU per request, in microseconds (from /proc; this process is the load generator plus the gateway, or plus the ceiling's client):\n");
    println!("| scenario | connections | gateway: this process | gateway: PostgreSQL | ceiling: this process | ceiling: PostgreSQL |");
    println!("|---|---|---|---|---|---|");
    for row in cpu_rows {
        println!("{row}");
    }
    http_floor(&ids, &token, &concurrency, seconds, &meter).await
}

/// The cost of HTTP alone: the same load generator against a handler that answers a fixed body
/// of the primary-key reply's size without touching the database. No gateway can do better than
/// this on the same machine; what it costs is the part of the gap to the ceiling that is HTTP's.
async fn http_floor(
    ids: &[String],
    token: &str,
    concurrency: &[usize],
    seconds: u64,
    meter: &cpu::Meter,
) -> anyhow::Result<()> {
    let body: &'static str = Box::leak(
        format!(
            "[{{\"id\":\"{}\",\"pad\":\"{}\"}}]",
            ids[0],
            "x".repeat(300)
        )
        .into_boxed_str(),
    );
    let router = axum::Router::new().fallback(move || async move {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(craftbase_shared::server::serve(
        listener,
        router,
        craftbase_shared::server::HttpLimits::default(),
        std::future::pending(),
    ));
    println!("\nHTTP alone (a handler answering a fixed body, no database):\n");
    println!("| connections | req/s | p50 ms | p99 ms | CPU µs per request |");
    println!("|---|---|---|---|---|");
    let slice = Duration::from_secs(1);
    for &n in concurrency {
        let mut all = Vec::new();
        let mut spent = cpu::Spent::default();
        for _ in 0..seconds {
            let before = meter.sample();
            all.extend(
                run(n, slice, |i| {
                    let (ids, token) = (ids.to_vec(), token.to_owned());
                    async move { load::http_worker(addr, &token, Scenario::ByKey, &ids, i, slice).await }
                })
                .await?,
            );
            spent.add(before, meter.sample());
        }
        let (own, _) = meter.per_request(spent, all.len());
        let st = stats(all, Duration::from_secs(seconds));
        println!(
            "| {n} | {:.0} | {:.2} | {:.2} | {own:.0} |",
            st.rate, st.p50, st.p99
        );
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Scenario {
    ByKey,
    List,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::ByKey => "GET by primary key",
            Scenario::List => "filtered list",
        }
    }

    fn path(self, id: &str) -> String {
        match self {
            Scenario::ByKey => format!("/pipeline_jobs?id=eq.{id}"),
            Scenario::List => format!(
                "/pipeline_jobs?select=*&user_id=eq.{USER}&status=eq.succeeded&order=created_at.desc&limit=10"
            ),
        }
    }

    /// The statement the gateway sends for the same request, word for word.
    fn sql(self) -> String {
        const HEAD: &str = "SELECT NULL::int8, count(*), coalesce(json_agg(_s), '[]')::text, \
            current_setting('response.status', true), current_setting('response.headers', true) ";
        match self {
            Scenario::ByKey => format!(
                "{HEAD}FROM (SELECT \"t1\".* FROM \"public\".\"pipeline_jobs\" AS \"t1\" \
                 WHERE (\"t1\".\"id\" = $1)) _s"
            ),
            Scenario::List => format!(
                "{HEAD}FROM (SELECT \"t1\".* FROM \"public\".\"pipeline_jobs\" AS \"t1\" \
                 WHERE (\"t1\".\"user_id\" = $1) AND (\"t1\".\"status\" = $2) \
                 ORDER BY \"t1\".\"created_at\" DESC LIMIT 10) _s"
            ),
        }
    }
}

struct Stats {
    rate: f64,
    p50: f64,
    p99: f64,
}

/// Runs `n` workers for `duration` and merges their latencies (microseconds).
async fn run<F, Fut>(n: usize, _duration: Duration, worker: F) -> anyhow::Result<Vec<u32>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<u32>>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(worker(i))).collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Throughput over `duration` and latency percentiles in milliseconds.
fn stats(mut all: Vec<u32>, duration: Duration) -> Stats {
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |v| *v as f64 / 1000.0)
    };
    Stats {
        rate: all.len() as f64 / duration.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

async fn seed(db: &TestDb) -> anyhow::Result<()> {
    let admin = db.superuser().await;
    admin
        .batch_execute(&format!(
            "insert into auth.users (id, aud, role, email, created_at, updated_at)
             values ('{USER}', 'authenticated', 'authenticated', 'load@example.com', now(), now()),
                    ('{OTHER}', 'authenticated', 'authenticated', 'other@example.com', now(), now());
             insert into public.pipeline_jobs (user_id, connector_id, type, status, input, created_at)
             select case when g % 2 = 0 then '{USER}'::uuid else '{OTHER}'::uuid end,
                    (select id from public.connectors order by slug limit 1 offset g % 8),
                    'tool_execution',
                    (array['queued','running','succeeded','failed'])[1 + g % 4]::public.job_status,
                    jsonb_build_object('n', g),
                    now() - g * interval '1 minute'
             from generate_series(1, 10000) g;
             analyze public.pipeline_jobs;"
        ))
        .await?;
    Ok(())
}

async fn job_ids(db: &TestDb) -> anyhow::Result<Vec<String>> {
    let admin = db.superuser().await;
    let rows = admin
        .query(
            &format!(
                "select id::text from public.pipeline_jobs where user_id = '{USER}' limit 1000"
            ),
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
