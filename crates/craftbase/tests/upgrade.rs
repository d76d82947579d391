//! Upgrades: this craftbase on a data directory an earlier one created (its platform migrations
//! kept in `fixtures/platform-cc7d4ab`, with Tool Connect Craft's files as that version applied
//! them) applies only what is new and keeps users, sessions, rows and the replication slot; a
//! platform file changed after it was applied stops start-up, naming it.

use std::path::Path;
use std::time::Duration;

use craftbase::datadir::DataDir;
use craftbase_cluster::{Cluster, ClusterSpec};
use serde_json::{json, Value};

use crate::support::{connect_url, example, free_port, reachable_tempdir, Craftbase};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/platform-cc7d4ab"
);
const USER: &str = "5b0a7c1e-3f2d-4e8a-9b6c-1d2e3f4a5b6c";
const SESSION: &str = "6c1b8d2f-4a3e-4f9b-8c7d-2e3f4a5b6c7d";
const EMAIL: &str = "early@example.com";
const PASSWORD: &str = "an early password";
const REFRESH: &str = "earlyrefreshtoken01";

/// The fixture's files in the order that craftbase applied them, as (recorded name, SQL).
fn fixture() -> Vec<(String, String)> {
    std::fs::read_to_string(Path::new(FIXTURE).join("ORDER"))
        .unwrap()
        .lines()
        .map(|line| {
            let (name, file) = line.split_once(' ').unwrap();
            let sql = std::fs::read_to_string(Path::new(FIXTURE).join(file)).unwrap();
            (name.to_owned(), sql)
        })
        .collect()
}

/// Creates, in `data`, what craftbase at cc7d4ab left after serving Tool Connect Craft: its
/// migration records, a user with a password, a session, a row, and realtime's slot.
/// Returns the slot's confirmed position.
async fn older_data_directory(data: &Path, port: u16) -> String {
    let dir = DataDir::open(data).unwrap();
    let secrets = dir.secrets(None, 1_700_000_000).unwrap();
    let spec = ClusterSpec {
        bindir: craftbase_cluster::find_bindir().unwrap(),
        root: dir.cluster_root(),
        port,
        superuser_password: secrets.db_password,
        throwaway: false,
        settings: Vec::new(),
    };
    let mut cluster = Cluster::start(spec, |_| {}).await.unwrap();
    let (mut db, connection) = cluster
        .socket_config("postgres", "postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // That version's ledger: name and checksum only.
    db.batch_execute(
        "create schema craftbase;
         create table craftbase.migrations (
             name text primary key,
             checksum text not null,
             applied_at timestamptz not null default now()
         );",
    )
    .await
    .unwrap();
    for (name, sql) in fixture() {
        let tx = db.transaction().await.unwrap();
        tx.batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        tx.execute(
            "insert into craftbase.migrations (name, checksum) values ($1, $2)",
            &[&name, &craftbase_cluster::checksum(&sql)],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    db.batch_execute(&format!(
        "insert into auth.users (id, aud, role, email, encrypted_password, email_confirmed_at,
                                 raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
         values ('{USER}', 'authenticated', 'authenticated', '{EMAIL}', '{hash}', now(),
                 '{{\"provider\":\"email\",\"providers\":[\"email\"]}}', '{{}}', now(), now());
         insert into auth.identities (provider_id, user_id, identity_data, provider, created_at, updated_at)
         values ('{USER}', '{USER}', '{{\"sub\":\"{USER}\",\"email\":\"{EMAIL}\"}}', 'email', now(), now());
         insert into auth.sessions (id, user_id, created_at, updated_at, aal)
         values ('{SESSION}', '{USER}', now(), now(), 'aal1');
         insert into auth.refresh_tokens (token, user_id, revoked, created_at, updated_at, session_id)
         values ('{REFRESH}', '{USER}', false, now(), now(), '{SESSION}');
         insert into public.user_connections (user_id, connector_id, status)
         values ('{USER}', (select id from public.connectors where slug = 'github'), 'active');"
    ))
    .await
    .unwrap();
    let lsn: String = db
        .query_one(
            "select lsn::text from pg_create_logical_replication_slot('craftbase_realtime', 'pgoutput')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    drop(db);
    tokio::task::block_in_place(|| cluster.stop());
    lsn
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_data_directory_is_upgraded_in_place() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let db_port = free_port();
    let slot_before = older_data_directory(&data, db_port).await;

    let cb = Craftbase::spawn_on(&data, &example(), &[], free_port(), db_port);
    let mut cb = cb;
    cb.wait_healthy().await;
    let stderr = cb.stderr();
    // Only what that version lacked was applied; Tool Connect Craft's files were taken as applied.
    let applied: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split("applying migration ").nth(1))
        .collect();
    assert_eq!(
        applied,
        [
            "craftbase/role_limits.sql",
            "craftbase/auth_email_proofs.sql",
            "craftbase/auth_limits.sql",
            "craftbase/auth_rate_limits.sql",
            "craftbase/realtime_broadcast_from_database.sql",
            "craftbase/auth_saml.sql",
            "craftbase/auth_passkeys.sql",
            "craftbase/storage_schema.sql",
            "craftbase/realtime_broadcast_authorization.sql",
            "craftbase/authenticator_password.sql"
        ],
        "{stderr}"
    );
    let status = cb.status();
    let db = connect_url(&status.db_url).await;
    let versions: Vec<(String, Option<i32>)> = db
        .query(
            "select name, version from craftbase.migrations where name like 'craftbase/%' order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(versions.iter().all(|(_, v)| v.is_some()), "{versions:?}");
    let project: Vec<String> = db
        .query(
            "select version from supabase_migrations.schema_migrations order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(project, ["20250101000000", "20250101000001"]);

    // The session and the password still work, and the user's rows are theirs.
    let http = reqwest::Client::new();
    let grant = |kind: &str, body: Value| {
        http.post(cb.url(&format!("/auth/v1/token?grant_type={kind}")))
            .header("apikey", &status.anon_key)
            .json(&body)
            .send()
    };
    let refreshed = grant("refresh_token", json!({ "refresh_token": REFRESH }))
        .await
        .unwrap();
    assert_eq!(
        refreshed.status(),
        200,
        "{}",
        refreshed.text().await.unwrap()
    );
    let signed_in = grant("password", json!({ "email": EMAIL, "password": PASSWORD }))
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let token = signed_in.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rows: Value = http
        .get(cb.url("/rest/v1/user_connections?select=user_id,status"))
        .header("apikey", &status.anon_key)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows, json!([{ "user_id": USER, "status": "active" }]));

    // Realtime streams from the slot that was there, not a new one.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .query_one(
                "select active, confirmed_flush_lsn >= $1::text::pg_lsn from pg_replication_slots where slot_name = 'craftbase_realtime'",
                &[&slot_before],
            )
            .await
            .unwrap();
        let (active, kept): (bool, bool) = (row.get(0), row.get(1));
        assert!(kept, "the slot went back in time: recreated?");
        if active {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never became active"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The old slot predates the messages publication: it streams the tables first, then,
    // once past the upgrade, broadcasts from the database too.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let switched = |log: String| {
        log.split_once("predates broadcasts from the database")
            .is_some_and(|(_, after)| {
                after.lines().any(|l| {
                    l.contains("realtime replication streaming") && l.trim_end().ends_with("true")
                })
            })
    };
    while !switched(cb.stderr()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stream never included realtime.messages: {}",
            cb.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(db);

    // A platform file changed after it was applied stops start-up, naming it.
    cb.signal_and_wait(libc::SIGTERM);
    {
        let mut older = Craftbase::spawn_on(&data, &example(), &[], cb.api_port, db_port);
        older.wait_healthy().await;
        connect_url(&status.db_url)
            .await
            .batch_execute(
                "update craftbase.migrations set checksum = 'edited' where name = 'craftbase/realtime.sql'",
            )
            .await
            .unwrap();
        older.signal_and_wait(libc::SIGTERM);
    }
    let mut refused = Craftbase::spawn_on(&data, &example(), &[], cb.api_port, db_port);
    let exit = refused
        .wait_exit(Duration::from_secs(60))
        .expect("a changed platform migration must stop start-up");
    assert!(!exit.success());
    let stderr = refused.stderr();
    assert!(
        stderr.contains("platform migration craftbase/realtime.sql was changed"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_craftbase_is_refused() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &example()).await;
    let status = cb.status();
    connect_url(&status.db_url)
        .await
        .batch_execute(
            "insert into craftbase.migrations (name, checksum, version) values ('craftbase/from_the_future.sql', '0', 10000)",
        )
        .await
        .unwrap();
    cb.signal_and_wait(libc::SIGTERM);
    let mut refused = Craftbase::spawn_on(&data, &example(), &[], cb.api_port, cb.db_port);
    let exit = refused
        .wait_exit(Duration::from_secs(60))
        .expect("a newer database must stop start-up");
    assert!(!exit.success());
    let stderr = refused.stderr();
    assert!(
        stderr.contains("migrated by a newer craftbase")
            && stderr.contains("craftbase/from_the_future.sql"),
        "{stderr}"
    );
}
