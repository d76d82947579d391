//! The visibility decision: policies evaluated on the committed values, per claims group.

use craftbase_realtime::changes::decode::{Change, Transaction};
use craftbase_realtime::changes::pipeline::deliver;
use serde_json::json;

use crate::support::*;

/// Subscribes a session as `token` to pipeline_jobs (optionally filtered) and returns its rx.
pub async fn subscribe(
    env: &Env,
    token: &str,
    table: &str,
    filter: Option<&str>,
) -> tokio::sync::mpsc::Receiver<craftbase_realtime::protocol::Message> {
    let (mut s, mut rx) = env.session();
    let mut binding = json!({"event": "*", "schema": "public", "table": table});
    if let Some(f) = filter {
        binding["filter"] = json!(f);
    }
    s.handle(msg(
        Some("1"),
        "1",
        "realtime:t",
        "phx_join",
        json!({"config": {"postgres_changes": [binding]}, "access_token": token}),
    ))
    .await;
    let sys = next_where(&mut rx, |m| m.event == "system").await.unwrap();
    assert_eq!(sys.payload["status"], "ok", "{:?}", sys.payload);
    // Keep the session alive for the test's duration.
    std::mem::forget(s);
    rx
}

pub fn row(pairs: &[(&str, Option<&str>)]) -> Vec<(std::sync::Arc<str>, Option<String>)> {
    pairs
        .iter()
        .map(|(k, v)| (std::sync::Arc::from(*k), v.map(str::to_owned)))
        .collect()
}

#[tokio::test]
async fn owner_sees_her_row_others_and_anon_do_not() {
    let env = env().await;
    let (a, b) = (env.user().await, env.user().await);
    let connector = env.connector().await;
    let oid = env
        .rt
        .catalog
        .oid_of("public", "pipeline_jobs")
        .await
        .unwrap();
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "pipeline_jobs", None).await;
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "pipeline_jobs", None).await;
    let anon = env.rt.ctx.keys.anon_key.clone();
    let mut rx_anon = subscribe(&env, &anon, "pipeline_jobs", None).await;
    let job = row(&[
        ("id", Some("00000000-0000-0000-0000-000000000001")),
        ("user_id", Some(&a)),
        ("connector_id", Some(&connector)),
        ("type", Some("tool_execution")),
        ("status", Some("queued")),
        ("input", Some(r#"{"q": 1}"#)),
        ("output", None),
        ("created_at", Some("2026-01-01 00:00:00+00")),
    ]);
    // The row is never written to the table: the decision is made on the WAL values alone.
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![Change {
            table_oid: oid,
            kind: "INSERT",
            new: Some(job),
            old: None,
        }],
    };
    deliver(&env.rt, &[txn]).await;
    let got = next_where(&mut rx_a, |m| m.event == "postgres_changes")
        .await
        .unwrap();
    assert_eq!(got.payload["data"]["record"]["user_id"], json!(a));
    assert_eq!(got.payload["data"]["record"]["input"], json!({"q": 1}));
    assert_eq!(got.payload["data"]["type"], "INSERT");
    assert!(drain(&mut rx_b, 300)
        .await
        .iter()
        .all(|m| m.event != "postgres_changes"));
    assert!(drain(&mut rx_anon, 300)
        .await
        .iter()
        .all(|m| m.event != "postgres_changes"));
}

#[tokio::test]
async fn delete_goes_only_to_who_could_see_it_with_the_key_only() {
    let env = env().await;
    let (a, b) = (env.user().await, env.user().await);
    let connector = env.connector().await;
    let oid = env
        .rt
        .catalog
        .oid_of("public", "user_connections")
        .await
        .unwrap();
    // B filters on a column she may select: the filter must not reveal A's deletes.
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "user_connections", None).await;
    let mut rx_b = subscribe(
        &env,
        &user_token(&b, 600),
        "user_connections",
        Some("status=eq.active"),
    )
    .await;
    let old = row(&[
        ("id", Some("00000000-0000-0000-0000-0000000000aa")),
        ("user_id", Some(&a)),
        ("connector_id", Some(&connector)),
        ("status", Some("active")),
        ("secret_ref_access", Some("secret")),
    ]);
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![Change {
            table_oid: oid,
            kind: "DELETE",
            new: None,
            old: Some(old),
        }],
    };
    deliver(&env.rt, &[txn]).await;
    let got = next_where(&mut rx_a, |m| m.event == "postgres_changes")
        .await
        .unwrap();
    assert_eq!(
        got.payload["data"]["old_record"],
        json!({"id": "00000000-0000-0000-0000-0000000000aa"})
    );
    assert!(drain(&mut rx_b, 300)
        .await
        .iter()
        .all(|m| m.event != "postgres_changes"));
}

#[tokio::test]
async fn a_failing_policy_hides_rows_from_its_group_only() {
    let env = env().await;
    let a = env.user().await;
    // A policy that errors for claims whose org is not a number.
    env.sql
        .batch_execute(
            "create table public.notes (id int primary key, org int, body text);
             alter table public.notes enable row level security;
             create policy org_read on public.notes for select to authenticated
                 using (org = ((auth.jwt() ->> 'org')::int));
             grant select on public.notes to authenticated;
             alter publication supabase_realtime add table public.notes;",
        )
        .await
        .unwrap();
    let oid = env.rt.catalog.oid_of("public", "notes").await.unwrap();
    let good = craftbase_shared::keys::sign(
        SECRET,
        &json!({"sub": a, "role": "authenticated", "org": 7, "exp": now() + 600}),
    )
    .unwrap();
    let bad = craftbase_shared::keys::sign(
        SECRET,
        &json!({"sub": a, "role": "authenticated", "org": "abc", "exp": now() + 600}),
    )
    .unwrap();
    let mut rx_good = subscribe(&env, &good, "notes", None).await;
    let mut rx_bad = subscribe(&env, &bad, "notes", None).await;
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![Change {
            table_oid: oid,
            kind: "INSERT",
            new: Some(row(&[
                ("id", Some("1")),
                ("org", Some("7")),
                ("body", Some("hi")),
            ])),
            old: None,
        }],
    };
    deliver(&env.rt, &[txn]).await;
    let got = next_where(&mut rx_good, |m| m.event == "postgres_changes")
        .await
        .unwrap();
    assert_eq!(
        got.payload["data"]["record"],
        json!({"id": 1, "org": 7, "body": "hi"})
    );
    assert!(drain(&mut rx_bad, 300)
        .await
        .iter()
        .all(|m| m.event != "postgres_changes"));
}

#[tokio::test]
async fn a_row_moved_to_another_user_never_brings_its_old_content() {
    let env = env().await;
    let (a, b) = (env.user().await, env.user().await);
    let connector = env.connector().await;
    let oid = env
        .rt
        .catalog
        .oid_of("public", "user_connections")
        .await
        .unwrap();
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "user_connections", None).await;
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "user_connections", None).await;
    let id = "00000000-0000-0000-0000-0000000000bb";
    let version = |owner: &str, secret: &str| {
        row(&[
            ("id", Some(id)),
            ("user_id", Some(owner)),
            ("connector_id", Some(&connector)),
            ("status", Some("active")),
            ("secret_ref_access", Some(secret)),
        ])
    };
    // Inserted for A, then moved to B, both before any check.
    let txns = vec![
        Transaction {
            lsn: 0,
            broadcasts: Vec::new(),
            commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
            changes: vec![Change {
                table_oid: oid,
                kind: "INSERT",
                new: Some(version(&a, "a-secret")),
                old: None,
            }],
        },
        Transaction {
            lsn: 0,
            broadcasts: Vec::new(),
            commit_timestamp: "2026-01-01T00:00:01.000Z".into(),
            changes: vec![Change {
                table_oid: oid,
                kind: "UPDATE",
                new: Some(version(&b, "b-secret")),
                old: Some(version(&a, "a-secret")),
            }],
        },
    ];
    deliver(&env.rt, &txns).await;
    let to_a: Vec<_> = drain(&mut rx_a, 500)
        .await
        .into_iter()
        .filter(|m| m.event == "postgres_changes")
        .collect();
    assert_eq!(
        to_a.len(),
        1,
        "A sees her INSERT, not the row once it is B's"
    );
    assert_eq!(
        to_a[0].payload["data"]["record"]["secret_ref_access"],
        "a-secret"
    );
    let to_b: Vec<_> = drain(&mut rx_b, 500)
        .await
        .into_iter()
        .filter(|m| m.event == "postgres_changes")
        .collect();
    assert_eq!(to_b.len(), 1, "B never receives the INSERT made for A");
    let data = &to_b[0].payload["data"];
    assert_eq!(data["type"], "UPDATE");
    assert_eq!(data["record"]["secret_ref_access"], "b-secret");
    assert_eq!(
        data["old_record"],
        json!({"id": id}),
        "A's old content is not shown to B"
    );
}

#[tokio::test]
async fn a_role_without_select_on_the_key_gets_the_401_form_and_no_deletes() {
    let env = env().await;
    let a = env.user().await;
    env.sql
        .batch_execute(
            "create table public.vault (id int primary key, body text);
             revoke all on public.vault from anon, authenticated;
             grant select (body) on public.vault to authenticated;
             alter publication supabase_realtime add table public.vault;",
        )
        .await
        .unwrap();
    let oid = env.rt.catalog.oid_of("public", "vault").await.unwrap();
    let mut rx = subscribe(&env, &user_token(&a, 600), "vault", None).await;
    let change = |kind: &'static str| Change {
        table_oid: oid,
        kind,
        new: (kind != "DELETE").then(|| row(&[("id", Some("1")), ("body", Some("secret"))])),
        old: (kind != "INSERT").then(|| row(&[("id", Some("1")), ("body", Some("secret"))])),
    };
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![change("INSERT"), change("UPDATE"), change("DELETE")],
    };
    deliver(&env.rt, &[txn]).await;
    let got: Vec<_> = drain(&mut rx, 500)
        .await
        .into_iter()
        .filter(|m| m.event == "postgres_changes")
        .map(|m| m.payload["data"].clone())
        .collect();
    assert_eq!(got.len(), 2, "INSERT and UPDATE, no DELETE: {got:?}");
    assert_eq!(
        got[0],
        json!({"schema": "public", "table": "vault", "commit_timestamp": null, "type": "INSERT",
               "columns": [], "record": {}, "errors": ["Error 401: Unauthorized"]})
    );
    assert_eq!(got[1]["type"], "UPDATE");
    assert_eq!(got[1]["old_record"], json!({}));
    assert_eq!(got[1]["errors"], json!(["Error 401: Unauthorized"]));
}

#[tokio::test]
async fn a_table_without_a_primary_key_gets_the_400_form_to_those_who_see_the_row() {
    let env = env().await;
    let (a, b) = (env.user().await, env.user().await);
    env.sql
        .batch_execute(
            "create table public.notes_nopk (owner uuid, body text);
             alter table public.notes_nopk replica identity full;
             alter table public.notes_nopk enable row level security;
             create policy own on public.notes_nopk for select using (owner = auth.uid());
             grant select on public.notes_nopk to authenticated;
             alter publication supabase_realtime add table public.notes_nopk;",
        )
        .await
        .unwrap();
    let oid = env.rt.catalog.oid_of("public", "notes_nopk").await.unwrap();
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "notes_nopk", None).await;
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "notes_nopk", None).await;
    let note = row(&[("owner", Some(&a)), ("body", Some("secret"))]);
    let change = |kind: &'static str| Change {
        table_oid: oid,
        kind,
        new: (kind != "DELETE").then(|| note.clone()),
        old: (kind != "INSERT").then(|| note.clone()),
    };
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![change("INSERT"), change("UPDATE"), change("DELETE")],
    };
    deliver(&env.rt, &[txn]).await;
    let got: Vec<_> = drain(&mut rx_a, 500)
        .await
        .into_iter()
        .filter(|m| m.event == "postgres_changes")
        .map(|m| m.payload["data"].clone())
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[0],
        json!({"schema": "public", "table": "notes_nopk", "commit_timestamp": null,
               "type": "INSERT", "columns": [], "record": {},
               "errors": ["Error 400: Bad Request, no primary key"]})
    );
    assert_eq!(got[1]["type"], "UPDATE");
    assert_eq!(got[1]["old_record"], json!({}));
    assert_eq!(
        got[1]["errors"],
        json!(["Error 400: Bad Request, no primary key"])
    );
    // A DELETE is delivered as Supabase delivers it: on an RLS table the old record holds only
    // the (here empty) primary key.
    assert_eq!(got[2]["type"], "DELETE");
    assert_eq!(got[2]["old_record"], json!({}));
    assert_eq!(got[2]["errors"], json!(null));
    let others = drain(&mut rx_b, 200).await;
    assert!(
        others.iter().all(|m| m.event != "postgres_changes"),
        "B's policy hides A's note: {others:?}"
    );
}

#[tokio::test]
async fn numeric_values_reach_the_frame_with_postgres_digits() {
    use craftbase_realtime::protocol::{encode_text, Vsn};
    let env = env().await;
    let a = env.user().await;
    env.sql
        .batch_execute(
            "create table public.prices (id int primary key, amount numeric, ratio float8);
             grant select on public.prices to authenticated;
             alter publication supabase_realtime add table public.prices;",
        )
        .await
        .unwrap();
    let oid = env.rt.catalog.oid_of("public", "prices").await.unwrap();
    let mut rx = subscribe(&env, &user_token(&a, 600), "prices", None).await;
    let long = "12345678901234567890.123456789012345678900";
    let txn = Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: vec![Change {
            table_oid: oid,
            kind: "UPDATE",
            new: Some(row(&[
                ("id", Some("1")),
                ("amount", Some("1.50")),
                ("ratio", Some("0.5")),
            ])),
            old: Some(row(&[("id", Some("1")), ("amount", Some(long))])),
        }],
    };
    deliver(&env.rt, &[txn]).await;
    let m = next_where(&mut rx, |m| m.event == "postgres_changes")
        .await
        .unwrap();
    let frame = encode_text(Vsn::V1, &m);
    assert!(frame.contains(r#""amount":1.50,"#), "{frame}");
    assert!(frame.contains(r#""ratio":0.5}"#), "{frame}");
    assert!(
        frame.contains(&format!(r#""old_record":{{"amount":{long},"id":1}}"#)),
        "{frame}"
    );
    // The text is the same message as the value, digits aside.
    let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(parsed["payload"]["ids"], m.payload["ids"]);
    assert_eq!(
        parsed["payload"]["data"]["record"],
        m.payload["data"]["record"]
    );
}
