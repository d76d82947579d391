//! `craftbase policy explain --realtime`: who would receive a row's INSERT, UPDATE and DELETE
//! over `postgres_changes`, and why; checked against live delivery for the same row and claims.

use std::sync::Arc;

use craftbase::policy::preview::Preview;
use craftbase::policy::realtime::{default_subscribers, preview, Named, Request};
use craftbase::policy::subject;
use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_realtime::Realtime;
use craftbase_shared::keys::{sign, ApiKeys};
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;
use serde_json::{json, Value};

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";
const SECRET: &str = "policy-realtime-test-secret-of-enough-length-0123";

/// `notes`: an owner policy, FULL identity, a column authenticated may not read; `leaky`: a
/// policy that lets every signed-in user see every row, DEFAULT identity; `keyed`: the owner
/// policy under DEFAULT identity; `quiet`: not published.
async fn setup() -> TestDb {
    let db = TestDb::new(craftbase::migrations::platform).await;
    db.add_users(&[(ALICE, "alice@example.com"), (BOB, "bob@example.com")])
        .await;
    db.superuser()
        .await
        .batch_execute(
            "create table public.notes (id int primary key, owner uuid, body text, secret text);
             alter table public.notes enable row level security;
             alter table public.notes replica identity full;
             revoke all on public.notes from anon, authenticated, service_role;
             grant select on public.notes to anon, service_role;
             grant select (id, owner, body) on public.notes to authenticated;
             create policy own on public.notes for select to authenticated
               using (owner = (select auth.uid()));
             create table public.leaky (id int primary key, owner uuid, body text);
             alter table public.leaky enable row level security;
             grant select on public.leaky to anon, authenticated, service_role;
             create policy everyone on public.leaky for select to authenticated using (true);
             create table public.keyed (id int primary key, owner uuid, body text);
             alter table public.keyed enable row level security;
             grant select on public.keyed to anon, authenticated, service_role;
             create policy own on public.keyed for select to authenticated
               using (owner = (select auth.uid()));
             create table public.quiet (id int primary key, owner uuid);
             grant select on public.quiet to anon, authenticated, service_role;
             create table public.loose (owner uuid, body text);
             grant select on public.loose to anon, authenticated, service_role;
             alter publication supabase_realtime add table public.notes, public.leaky, public.keyed,
               public.loose;",
        )
        .await
        .unwrap();
    db
}

fn admin_pool(db: &TestDb) -> deadpool_postgres::Pool {
    pool::build(db.config("postgres"), 3)
}

async fn run(db: &TestDb, table: &str, row: Value, old: Option<Value>, who: &[&str]) -> Preview {
    let pool = admin_pool(db);
    let client = pool.get().await.unwrap();
    let subscribers = if who.is_empty() {
        let rows: Vec<&Value> = std::iter::once(&row).chain(old.as_ref()).collect();
        default_subscribers(&client, &rows).await.unwrap()
    } else {
        let mut out = Vec::new();
        for w in who {
            out.push(Named {
                label: w.to_string(),
                subject: subject::resolve::<tokio_postgres::Client>(&client, w)
                    .await
                    .unwrap(),
            });
        }
        out
    };
    drop(client);
    let req = Request {
        table: table.into(),
        row,
        old,
        subscribers,
    };
    preview(&pool, &req).await.unwrap()
}

/// (event, delivered) for the subscriber whose label starts with `label`.
fn delivered(p: &Preview, label: &str) -> Vec<(&'static str, bool)> {
    sub(p, label)
        .events
        .iter()
        .map(|e| (e.event, e.delivered))
        .collect()
}

fn sub<'a>(p: &'a Preview, label: &str) -> &'a craftbase::policy::preview::Subscriber {
    p.subscribers
        .iter()
        .find(|s| s.label.starts_with(label))
        .unwrap_or_else(|| panic!("no subscriber {label}"))
}

const ALL: [(&str, bool); 3] = [("INSERT", true), ("UPDATE", true), ("DELETE", true)];
const NONE: [(&str, bool); 3] = [("INSERT", false), ("UPDATE", false), ("DELETE", false)];

#[tokio::test]
async fn the_owner_receives_her_row_without_the_hidden_column_others_do_not() {
    let db = setup().await;
    let row = json!({"id": 1, "owner": ALICE, "body": "hi", "secret": "s"});
    let p = run(&db, "notes", row, None, &[]).await;
    assert!(p.published && p.rls);
    assert_eq!(p.replica_identity, "full");
    // Default subscribers: anon, service_role, the row's one uuid, and a stranger.
    assert_eq!(p.subscribers.len(), 4);
    assert_eq!(delivered(&p, "anon"), NONE);
    assert_eq!(sub(&p, "anon").rls, "none_apply");
    assert_eq!(delivered(&p, "service_role"), ALL);
    assert_eq!(delivered(&p, &format!("user {ALICE}")), ALL);
    assert_eq!(delivered(&p, "user").len(), 3);
    let stranger = p
        .subscribers
        .iter()
        .find(|s| s.label.contains("another user"))
        .unwrap();
    assert!(stranger.events.iter().all(|e| !e.delivered));
    assert_eq!(stranger.events[0].policies, vec![Some(false)]);

    let alice = sub(&p, &format!("user {ALICE}"));
    assert_eq!(alice.hidden_columns, ["secret"]);
    let insert = &alice.events[0];
    assert_eq!(insert.policies, vec![Some(true)]);
    let data = insert.data.as_ref().unwrap();
    assert_eq!(
        data["record"],
        json!({"id": 1, "owner": ALICE, "body": "hi"})
    );
    assert!(insert
        .reasons
        .iter()
        .any(|r| r.contains("left out") && r.contains("secret")));
    // DELETE: decided on the whole old row (FULL), delivered with the key only.
    let delete = &alice.events[2];
    assert_eq!(
        delete.data.as_ref().unwrap()["old_record"],
        json!({"id": 1})
    );
    assert!(delete
        .reasons
        .iter()
        .any(|r| r.contains("only the primary key")));
    // The service role sees every column.
    let service = sub(&p, "service_role");
    assert_eq!(service.rls, "bypass");
    assert_eq!(
        service.events[0].data.as_ref().unwrap()["record"]["secret"],
        "s"
    );
}

#[tokio::test]
async fn a_leaking_policy_shows_a_stranger_receiving_the_row() {
    let db = setup().await;
    let row = json!({"id": 1, "owner": ALICE, "body": "private"});
    let p = run(&db, "leaky", row.clone(), None, &[ALICE, BOB, "anon"]).await;
    assert_eq!(delivered(&p, BOB), ALL);
    let bob = sub(&p, BOB);
    assert_eq!(
        bob.events[0].data.as_ref().unwrap()["record"]["body"],
        "private"
    );
    assert!(bob.events[0].reasons[0].contains("everyone passes"));
    assert_eq!(delivered(&p, "anon"), NONE);
    // The same row with the owner's policy: Bob gets nothing, and the DELETE reaches nobody
    // (DEFAULT identity: the old row is the key alone, the policy fails on it).
    let p = run(&db, "keyed", row, None, &[ALICE, BOB]).await;
    assert_eq!(delivered(&p, BOB), NONE);
    assert_eq!(
        delivered(&p, ALICE),
        [("INSERT", true), ("UPDATE", true), ("DELETE", false)]
    );
    let delete = &sub(&p, ALICE).events[2];
    assert_eq!(delete.checked_row, Some(json!({"id": "1"})));
    assert!(delete
        .reasons
        .iter()
        .any(|r| r.contains("REPLICA IDENTITY FULL")));
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("REPLICA IDENTITY DEFAULT")));
}

#[tokio::test]
async fn an_update_moving_a_row_and_an_unpublished_table_and_nothing_written() {
    let db = setup().await;
    let old = json!({"id": 1, "owner": ALICE, "body": "mine"});
    let row = json!({"id": 1, "owner": BOB, "body": "yours"});
    let p = run(&db, "notes", row, Some(old), &[ALICE, BOB]).await;
    // Bob receives the UPDATE, but the old row was Alice's: he sees only its key.
    let update = &sub(&p, BOB).events[1];
    assert!(update.delivered);
    assert_eq!(update.old_policies, Some(vec![Some(false)]));
    assert_eq!(
        update.data.as_ref().unwrap()["old_record"],
        json!({"id": 1})
    );
    assert!(!sub(&p, ALICE).events[1].delivered);

    let p = run(
        &db,
        "quiet",
        json!({"id": 1, "owner": ALICE}),
        None,
        &[ALICE],
    )
    .await;
    assert!(!p.published);
    assert_eq!(delivered(&p, ALICE), NONE);
    assert!(sub(&p, ALICE).events[0].reasons[0].contains("not in the supabase_realtime"));

    // No primary key: the INSERT arrives in Supabase's 400 form; PostgreSQL refuses the UPDATE
    // and DELETE of a published table without a replica identity, and the preview says so.
    let p = run(
        &db,
        "loose",
        json!({"owner": ALICE}),
        None,
        &["service_role"],
    )
    .await;
    let insert = &p.subscribers[0].events[0];
    assert_eq!(
        insert.data.as_ref().unwrap()["errors"],
        json!(["Error 400: Bad Request, no primary key"])
    );
    let update = &p.subscribers[0].events[1];
    assert!(!update.delivered);
    assert!(
        update.reasons[0].contains("does not have a replica identity"),
        "{:?}",
        update.reasons
    );

    let sql = db.superuser().await;
    for t in ["notes", "quiet", "loose"] {
        let n: i64 = sql
            .query_one(&format!("select count(*) from public.{t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{t}");
    }
    let probes: i64 = sql
        .query_one(
            "select count(*) from pg_proc where proname like 'craftbase_probe_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(probes, 0, "the probe functions are rolled back too");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_prints_each_subscriber_and_event() {
    let db = setup().await;
    let row = format!(r#"{{"id": 1, "owner": "{ALICE}", "body": "hi"}}"#);
    let url = db.url();
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_craftbase"))
            .args([
                "policy",
                "explain",
                "--realtime",
                "keyed",
                "--row",
                &row,
                "--db-url",
                &url,
            ])
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("user {ALICE} (the row's owner)")),
        "{text}"
    );
    assert!(text.contains("INSERT  delivered"), "{text}");
    assert!(text.contains("another user"), "{text}");
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_craftbase"))
            .args([
                "policy",
                "explain",
                "--realtime",
                "keyed",
                "--row",
                &row,
                "--as",
                BOB,
                "--format",
                "json",
                "--db-url",
                &url,
            ])
            .output()
            .unwrap()
    });
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["subscribers"].as_array().unwrap().len(), 1);
    assert_eq!(json["subscribers"][0]["events"][0]["delivered"], false);
}

// Live delivery for the same row and claims.

fn token(sub: &str) -> String {
    let now = craftbase_realtime::token::now();
    sign(
        SECRET,
        &json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": now + 600}),
    )
    .unwrap()
}

/// Joins `table`'s changes as `token`; returns the messages' receiver.
async fn subscribe(
    rt: &Arc<Realtime>,
    token: &str,
    table: &str,
) -> tokio::sync::mpsc::Receiver<Message> {
    let (outlet, mut rx, _) = Outlet::new(rt.hub.socket_id());
    let mut s = Session::new(rt.clone(), outlet, Some(rt.ctx.keys.anon_key.clone()));
    let join = Message {
        join_ref: Some("1".into()),
        msg_ref: Some("1".into()),
        topic: "realtime:t".into(),
        event: "phx_join".into(),
        payload: json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": table}]},
                        "access_token": token}),
        raw: None,
        payload_text: None,
    };
    s.handle(join).await;
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if m.event == "system" {
            assert_eq!(m.payload["status"], "ok", "{:?}", m.payload);
            break;
        }
    }
    // The session lives as long as the test.
    std::mem::forget(s);
    rx
}

/// The `postgres_changes` data received within a while, commit time left out.
async fn received(rx: &mut tokio::sync::mpsc::Receiver<Message>) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if m.event == "postgres_changes" {
            let mut data = m.payload["data"].clone();
            data.as_object_mut().unwrap().remove("commit_timestamp");
            out.push(data);
        }
    }
    out
}

#[tokio::test]
async fn the_preview_agrees_with_live_delivery() {
    let db = setup().await;
    let admin = db.config("postgres");
    let ctx = ServiceContext {
        db: pool::build(db.config("authenticator"), 4),
        admin: pool::build(admin.clone(), 4),
        admin_conninfo: pool::conninfo(&admin),
        jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
        keys: Arc::new(ApiKeys::mint(SECRET, craftbase_realtime::token::now() as u64).unwrap()),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    };
    let rt = Realtime::new(ctx);
    tokio::spawn(craftbase_realtime::changes::stream::run(rt.clone()));
    let anon = rt.ctx.keys.anon_key.clone();
    let service = rt.ctx.keys.service_role_key.clone();
    let who = [
        (ALICE, token(ALICE)),
        (BOB, token(BOB)),
        ("anon", anon),
        ("service_role", service),
    ];
    let mut tables = Vec::new();
    for table in ["notes", "keyed"] {
        let mut rxs = Vec::new();
        for (_, t) in &who {
            rxs.push(subscribe(&rt, t, table).await);
        }
        tables.push((table, rxs));
    }
    for _ in 0..100 {
        if rt.is_streaming() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let row = json!({"id": 7, "owner": ALICE, "body": "after", "secret": "s"});
    let old = json!({"id": 7, "owner": BOB, "body": "before", "secret": "t"});
    let sql = db.superuser().await;
    for (table, _) in &tables {
        let secret = if *table == "notes" { ", secret" } else { "" };
        let (sv, so) = if *table == "notes" {
            (", 's'", ", 't'")
        } else {
            ("", "")
        };
        // INSERT and DELETE of the row, then an UPDATE from the old row to it.
        sql.batch_execute(&format!(
            "insert into public.{table} (id, owner, body{secret}) values (7, '{ALICE}', 'after'{sv});
             delete from public.{table} where id = 7;
             insert into public.{table} (id, owner, body{secret}) values (7, '{BOB}', 'before'{so});
             update public.{table} set owner = '{ALICE}', body = 'after'{} where id = 7;
             delete from public.{table};",
            if *table == "notes" { ", secret = 's'" } else { "" }
        ))
        .await
        .unwrap();
    }
    let names: Vec<&str> = who.iter().map(|(w, _)| *w).collect();
    let mut delivered_live = 0;
    for (table, rxs) in &mut tables {
        let (row, old) = if *table == "notes" {
            (row.clone(), old.clone())
        } else {
            let strip = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().unwrap().remove("secret");
                v
            };
            (strip(&row), strip(&old))
        };
        let p = run(&db, table, row, Some(old), &names).await;
        for (i, rx) in rxs.iter_mut().enumerate() {
            let live = received(rx).await;
            // Live: INSERT and DELETE of the row, INSERT of the old row, UPDATE, DELETE of the
            // row again (the same content as the first).
            let pick = |kind: &str| {
                live.iter()
                    .find(|d| {
                        d["type"] == kind && (kind != "INSERT" || d["record"]["body"] == "after")
                    })
                    .cloned()
            };
            let live_events = [
                ("INSERT", pick("INSERT")),
                ("UPDATE", pick("UPDATE")),
                ("DELETE", pick("DELETE")),
            ];
            let s = &p.subscribers[i];
            delivered_live += live_events.iter().filter(|(_, l)| l.is_some()).count();
            for (e, (kind, live)) in s.events.iter().zip(live_events) {
                assert_eq!(e.event, kind);
                let mut previewed = e.data.clone();
                if let Some(d) = previewed.as_mut() {
                    d.as_object_mut().unwrap().remove("commit_timestamp");
                }
                assert_eq!(
                    previewed, live,
                    "{table}: {kind} as {}: preview {:?}",
                    s.label, e.reasons
                );
            }
        }
    }
    // notes: Alice and the service role 3 each; keyed: Alice 2 (no DELETE), the service role 3.
    assert_eq!(delivered_live, 11);
}
