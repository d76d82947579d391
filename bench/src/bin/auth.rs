//! Token refreshes and password sign-ins per second at 1, 10 and 50 concurrent clients, over
//! HTTP against the auth router, next to the ceiling measured in the same run: the refresh's
//! SQL statements sent straight to PostgreSQL, and bcrypt at cost 10 alone.
//!
//! `cargo bench -p craftbase-auth --bench throughput` prints a Markdown table (BENCHMARKS.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use craftbase_auth::Settings;
use craftbase_cluster::Migration;
use craftbase_shared::{ApiKeys, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;
use serde_json::{json, Value};

const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123456789";
const PASSWORD: &str = "bench-password-1";
const POOL: usize = 20;
const LEVELS: [usize; 3] = [1, 10, 50];

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    Duration::from_secs(s)
}

fn migrations() -> Vec<Migration> {
    craftbase::migrations::platform()
        .into_iter()
        .filter(|m| m.name == "craftbase/roles.sql")
        .chain(craftbase::migrations::auth_schema())
        .collect()
}

/// Runs `clients` copies of `work` for the duration; returns completed operations per second.
async fn measure<F, Fut>(clients: usize, work: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (work, done) = (work.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if work(i).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a bench task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db = TestDb::new(migrations).await;
    let pool = craftbase_shared::pool::build(db.config("postgres"), POOL);
    let keys = ApiKeys::mint(SECRET, chrono::Utc::now().timestamp() as u64).unwrap();
    let ctx = ServiceContext {
        db: pool.clone(),
        admin: pool.clone(),
        admin_conninfo: String::new(),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(keys.clone()),
        roles: Arc::new(RoleSwitch::new(["anon", "authenticated"].map(String::from))),
    };
    let settings = Settings::from_flags([
        "--rate-limit-token-refresh",
        "100000000",
        "--rate-limit-sign-in-sign-ups",
        "100000000",
    ])
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = craftbase_auth::router_with(ctx, settings);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let post = {
        let (http, base, anon) = (http.clone(), base.clone(), keys.anon_key.clone());
        move |path: &'static str, body: Value| {
            let req = http
                .post(format!("{base}{path}"))
                .bearer_auth(&anon)
                .json(&body);
            async move {
                let res = req.send().await.ok()?;
                if !res.status().is_success() {
                    return None;
                }
                res.json::<Value>().await.ok()
            }
        }
    };

    // One account per client.
    let max = *LEVELS.iter().max().unwrap();
    let mut tokens = Vec::new();
    for i in 0..max {
        let s = post(
            "/signup",
            json!({"email": format!("bench{i}@example.com"), "password": PASSWORD}),
        )
        .await
        .expect("sign-up");
        tokens.push(tokio::sync::Mutex::new(
            s["refresh_token"].as_str().unwrap().to_owned(),
        ));
    }
    let tokens = Arc::new(tokens);
    let hash = bcrypt::hash_with_result(PASSWORD, 10)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);

    let mut rows = Vec::new();
    for clients in LEVELS {
        let refresh = {
            let (post, tokens) = (post.clone(), tokens.clone());
            measure(clients, move |i| {
                let (post, tokens) = (post.clone(), tokens.clone());
                async move {
                    let mut token = tokens[i].lock().await;
                    let Some(s) = post(
                        "/token?grant_type=refresh_token",
                        json!({"refresh_token": *token}),
                    )
                    .await
                    else {
                        return false;
                    };
                    *token = s["refresh_token"].as_str().unwrap_or_default().to_owned();
                    true
                }
            })
            .await
        };
        let sql = {
            let (pool, tokens) = (pool.clone(), tokens.clone());
            measure(clients, move |i| {
                let (pool, tokens) = (pool.clone(), tokens.clone());
                async move {
                    let token = tokens[i].lock().await.clone();
                    refresh_sql(&pool, &token).await.is_ok()
                }
            })
            .await
        };
        let sign_in = {
            let post = post.clone();
            measure(clients, move |i| {
                let post = post.clone();
                async move {
                    post(
                        "/token?grant_type=password",
                        json!({"email": format!("bench{i}@example.com"), "password": PASSWORD}),
                    )
                    .await
                    .is_some()
                }
            })
            .await
        };
        let bcrypt_alone = {
            let hash = hash.clone();
            measure(clients, move |_| {
                let hash = hash.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        bcrypt::verify(PASSWORD, &hash).unwrap_or(false)
                    })
                    .await
                    .unwrap_or(false)
                }
            })
            .await
        };
        rows.push((clients, refresh, sql, sign_in, bcrypt_alone));
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "{} s per cell, {cores} cores, pool of {POOL} connections, release build.\n",
        seconds().as_secs()
    );
    println!("| clients | refreshes/s | refresh SQL alone/s | refresh vs ceiling | sign-ins/s | bcrypt alone/s | sign-in vs ceiling |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (c, r, s, p, b) in rows {
        println!(
            "| {c} | {r:.0} | {s:.0} | {:.0}% | {p:.1} | {b:.1} | {:.0}% |",
            100.0 * r / s,
            100.0 * p / b
        );
    }
}

/// The statements one refresh runs (see `token/refresh.rs` and `session.rs`), in one
/// transaction, on the client's live token, which stays live (its child is born revoked).
async fn refresh_sql(
    pool: &deadpool_postgres::Pool,
    token: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut db = pool.get().await?;
    let tx = db.transaction().await?;
    let token = tx
        .query_one(
            "select id, session_id from auth.refresh_tokens where token = $1",
            &[&token],
        )
        .await?;
    let (id, session): (i64, uuid::Uuid) = (token.get(0), token.get(1));
    let s = tx
        .query_one(
            "select user_id, not_after is not null from auth.sessions where id = $1 for update",
            &[&session],
        )
        .await?;
    let user: uuid::Uuid = s.get(0);
    tx.query_opt("select * from auth.users where id = $1", &[&user])
        .await?;
    tx.query_one(
        "select revoked is true, now() < updated_at + make_interval(secs => 10) from auth.refresh_tokens where id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "update auth.refresh_tokens set updated_at = now() where id = $1",
        &[&id],
    )
    .await?;
    tx.execute(
        "insert into auth.refresh_tokens (token, user_id, revoked, created_at, updated_at, parent, session_id) \
         values (md5(random()::text), $1, true, now(), now(), null, $2)",
        &[&user.to_string(), &session],
    )
    .await?;
    tx.execute(
        "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now() where id = $1",
        &[&session],
    )
    .await?;
    tx.query("select authentication_method, extract(epoch from created_at)::bigint from auth.mfa_amr_claims where session_id = $1", &[&session])
        .await?;
    tx.query_opt("select * from auth.users where id = $1", &[&user])
        .await?;
    tx.query("select * from auth.identities where user_id = $1", &[&user])
        .await?;
    tx.commit().await?;
    Ok(())
}
