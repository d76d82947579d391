//! Changes read from the slot reach subscribers, decoded with their types, in commit order.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn slot_changes_are_decoded_with_types_and_old_rows() {
    let env = env().await;
    env.sql
        .batch_execute(
            "create type public.mood as enum ('happy', 'sad');
             create table public.kinds (
                 id int8 primary key, i int4, f float8, n numeric, b bool, t text, j jsonb,
                 arr int4[], tags text[], ts timestamptz, m public.mood, u uuid);
             alter table public.kinds replica identity full;
             grant select on public.kinds to anon;
             alter publication supabase_realtime add table public.kinds;",
        )
        .await
        .unwrap();
    tokio::spawn(craftbase_realtime::changes::stream::run(env.rt.clone()));
    let (mut s, mut rx) = env.session();
    s.handle(msg(
        Some("1"),
        "1",
        "realtime:kinds",
        "phx_join",
        json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": "kinds"}]}}),
    ))
    .await;
    let sys = next_where(&mut rx, |m| m.event == "system").await.unwrap();
    assert_eq!(sys.payload["message"], "Subscribed to PostgreSQL");
    // Wait for the stream to be up, so the inserts below are after the slot's start.
    for _ in 0..100 {
        if env.rt.is_streaming() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.sql
        .batch_execute(
            "insert into public.kinds values (9007199254740993, -4, 1.5, 1.50, true, 'a \"q\"',
                 '{\"k\": [1, null]}', '{1,NULL,3}', '{x,\"y z\"}', '2024-01-02 03:04:05.5+00',
                 'happy', '00000000-0000-0000-0000-000000000001');
             update public.kinds set i = 5, m = 'sad' where id = 9007199254740993;
             delete from public.kinds;",
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = next_where(&mut rx, |m| m.event == "postgres_changes")
            .await
            .expect("three changes");
        got.push(m.payload["data"].clone());
    }
    let insert = &got[0];
    assert_eq!(insert["type"], "INSERT");
    assert_eq!(
        insert["record"],
        json!({
            "id": 9007199254740993i64, "i": -4, "f": 1.5, "n": 1.5, "b": true, "t": "a \"q\"",
            "j": {"k": [1, null]}, "arr": [1, null, 3], "tags": ["x", "y z"],
            "ts": "2024-01-02T03:04:05.5+00:00", "m": "happy",
            "u": "00000000-0000-0000-0000-000000000001"
        })
    );
    assert_eq!(insert["columns"][0], json!({"name": "id", "type": "int8"}));
    assert_eq!(
        insert["columns"][7],
        json!({"name": "arr", "type": "_int4"})
    );
    assert_eq!(insert["columns"][10], json!({"name": "m", "type": "mood"}));
    assert!(insert.get("old_record").is_none());
    assert_eq!(insert["errors"], json!(null));
    let update = &got[1];
    assert_eq!(update["type"], "UPDATE");
    assert_eq!(update["record"]["i"], 5);
    assert_eq!(update["old_record"]["i"], -4);
    assert_eq!(update["old_record"]["m"], "happy");
    let delete = &got[2];
    assert_eq!(delete["type"], "DELETE");
    assert_eq!(
        delete["old_record"]["t"], "a \"q\"",
        "no RLS: the whole old row under FULL"
    );
    assert!(delete.get("record").is_none());
    // All three in one transaction: one commit time.
    assert_eq!(insert["commit_timestamp"], delete["commit_timestamp"]);
}

/// Supabase reads the slot with wal2json `actions=insert,update,delete`: a TRUNCATE reaches no
/// `postgres_changes` subscriber (realtime-js has no such event), and the stream goes on.
#[tokio::test]
async fn truncate_is_not_delivered_and_does_not_stall_the_stream() {
    let env = env().await;
    env.sql
        .batch_execute(
            "create table public.logs (id int primary key, body text);
             grant select on public.logs to anon;
             alter publication supabase_realtime add table public.logs;",
        )
        .await
        .unwrap();
    tokio::spawn(craftbase_realtime::changes::stream::run(env.rt.clone()));
    let (mut s, mut rx) = env.session();
    s.handle(msg(
        Some("1"),
        "1",
        "realtime:logs",
        "phx_join",
        json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": "logs"}]}}),
    ))
    .await;
    let sys = next_where(&mut rx, |m| m.event == "system").await.unwrap();
    assert_eq!(sys.payload["status"], "ok");
    for _ in 0..100 {
        if env.rt.is_streaming() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.sql
        .batch_execute(
            "insert into public.logs values (1, 'before');
             truncate public.logs;
             begin; insert into public.logs values (2, 'same transaction'); truncate public.logs restart identity; commit;
             insert into public.logs values (3, 'after');",
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let m = next_where(&mut rx, |m| m.event == "postgres_changes")
            .await
            .expect("the changes around the truncates");
        assert_eq!(m.payload["data"]["type"], "INSERT", "{}", m.payload);
        ids.push(m.payload["data"]["record"]["id"].clone());
    }
    assert_eq!(ids, vec![json!(1), json!(2), json!(3)]);
    assert!(drain(&mut rx, 500)
        .await
        .iter()
        .all(|m| m.event != "postgres_changes"));
}
