//! What both realtime benches start from: a migrated database with one job per user, and the
//! realtime service streaming from its slot.

use std::sync::Arc;
use std::time::Duration;

use craftbase_realtime::Realtime;
use craftbase_shared::keys::ApiKeys;
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;

pub const SECRET: &str = "bench-secret-of-enough-length-0123456789abcdef";

pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The running service and what the benches write with.
pub struct Started {
    pub db: TestDb,
    pub rt: Arc<Realtime>,
    /// A superuser connection that commits synchronously.
    pub sql: tokio_postgres::Client,
    /// `(user id, job id)`, one per user.
    pub jobs: Vec<(String, String)>,
}

/// `users` users with a job each, and realtime streaming.
pub async fn start(users: usize, keys: ApiKeys) -> Started {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let admin = db.config("postgres");
    let ctx = ServiceContext {
        db: pool::build(db.config("authenticator"), 8),
        admin: pool::build(admin.clone(), 4),
        admin_conninfo: pool::conninfo(&admin),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(keys),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    };
    let sql = db.superuser().await;
    // The test cluster runs with synchronous_commit=off, which holds WAL (and so logical
    // decoding) back until the WAL writer's next 200 ms round; a craftbase cluster commits
    // synchronously, as this writer does.
    sql.batch_execute("set synchronous_commit = on")
        .await
        .unwrap();
    let rows = sql
        .query(
            "with u as (
                 insert into auth.users (id, email, aud, role)
                 select gen_random_uuid(), 'bench' || g || '@example.com', 'authenticated', 'authenticated'
                 from generate_series(1, $1::int) g returning id)
             insert into public.pipeline_jobs (user_id, connector_id, type)
             select u.id, (select id from public.connectors limit 1), 'bench' from u
             returning user_id::text, id::text",
            &[&(users as i32)],
        )
        .await
        .unwrap();
    let rt = Realtime::new(ctx);
    tokio::spawn(craftbase_realtime::changes::stream::run(rt.clone()));
    while !rt.is_streaming() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Started {
        db,
        rt,
        sql,
        jobs: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
    }
}

/// Keys minted now from the benches' secret.
pub fn keys() -> ApiKeys {
    ApiKeys::mint(SECRET, (now_micros() / 1_000_000) as u64).unwrap()
}
