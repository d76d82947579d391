//! A realtime service over a fresh test database, users and tokens.

use std::sync::Arc;

use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_realtime::Realtime;
use craftbase_shared::keys::{sign, ApiKeys};
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const SECRET: &str = "realtime-test-secret-of-enough-length-0123456789";

/// A migrated database and a realtime service over it (replication not started).
pub struct Env {
    /// Kept so the database lives as long as the test.
    pub _db: TestDb,
    pub rt: Arc<Realtime>,
    pub sql: tokio_postgres::Client,
}

pub async fn env() -> Env {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let ctx = context(&db);
    let sql = db.superuser().await;
    Env {
        _db: db,
        rt: Realtime::new(ctx),
        sql,
    }
}

/// A service context over `db` (several realtime states may share one database).
pub fn context(db: &TestDb) -> ServiceContext {
    let admin = db.config("postgres");
    ServiceContext {
        db: pool::build(db.config("authenticator"), 4),
        admin: pool::build(admin.clone(), 4),
        admin_conninfo: pool::conninfo(&admin),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(ApiKeys::mint(SECRET, now() as u64).unwrap()),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    }
}

pub fn now() -> i64 {
    craftbase_realtime::token::now()
}

impl Env {
    /// A user in auth.users; returns its id.
    pub async fn user(&self) -> String {
        self.sql
            .query_one(
                "insert into auth.users (id, email, aud, role)
                 values (gen_random_uuid(), gen_random_uuid()::text || '@example.com', 'authenticated', 'authenticated')
                 returning id::text",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// A connector id from the seeded catalogue.
    pub async fn connector(&self) -> String {
        self.sql
            .query_one("select id::text from public.connectors limit 1", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// A session (socket) whose messages land in the returned receiver.
    pub fn session(&self) -> (Session, mpsc::Receiver<Message>) {
        let (outlet, rx, _) = Outlet::new(self.rt.hub.socket_id());
        let anon = self.rt.ctx.keys.anon_key.clone();
        (Session::new(self.rt.clone(), outlet, Some(anon)), rx)
    }
}

/// A user token for `sub`.
pub fn user_token(sub: &str, ttl: i64) -> String {
    sign(
        SECRET,
        &json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": now() + ttl}),
    )
    .unwrap()
}

/// A client message.
pub fn msg(join_ref: Option<&str>, r: &str, topic: &str, event: &str, payload: Value) -> Message {
    Message {
        join_ref: join_ref.map(str::to_owned),
        msg_ref: Some(r.to_owned()),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload,
        raw: None,
        payload_text: None,
    }
}

/// Waits for the next message on `rx` for which `pred` holds, skipping others.
pub async fn next_where(
    rx: &mut mpsc::Receiver<Message>,
    pred: impl Fn(&Message) -> bool,
) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) if pred(&m) => return Some(m),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

/// Everything on `rx` within `ms` milliseconds.
pub async fn drain(rx: &mut mpsc::Receiver<Message>, ms: u64) -> Vec<Message> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(m);
    }
    out
}
