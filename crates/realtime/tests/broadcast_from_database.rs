//! Broadcast from the database, in SQL: `realtime.messages` partitioned by day and kept by
//! `partitions::run_once`, `realtime.send`/`send_binary`/`broadcast_changes` as Supabase defines
//! them, and the upgrade of a plain `realtime.messages` that keeps a project's policies.

use crate::support::*;

async fn partitions(env: &Env) -> Vec<String> {
    env.sql
        .query(
            "select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
              where i.inhparent = 'realtime.messages'::regclass order by 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn messages_are_partitioned_by_day_and_old_days_are_dropped() {
    let env = env().await;
    env.sql
        .batch_execute(
            "create table realtime.messages_2020_01_01 partition of realtime.messages
               for values from ('2020-01-01') to ('2020-01-02')",
        )
        .await
        .unwrap();
    assert!(partitions(&env)
        .await
        .contains(&"messages_2020_01_01".into()));
    let dropped = craftbase_realtime::partitions::run_once(&env.rt.ctx.admin)
        .await
        .unwrap();
    assert_eq!(dropped, 1);
    let parts = partitions(&env).await;
    assert!(!parts.contains(&"messages_2020_01_01".into()));
    // Yesterday to three days ahead at least.
    let ahead: String = env
        .sql
        .query_one(
            "select 'messages_' || to_char(current_date + 3, 'YYYY_MM_DD')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(parts.contains(&ahead), "{parts:?}");
    // A second run changes nothing.
    let again = craftbase_realtime::partitions::run_once(&env.rt.ctx.admin)
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(partitions(&env).await, parts);
}

#[tokio::test]
async fn broadcast_changes_in_a_trigger_sends_the_row_before_and_after() {
    let env = env().await;
    env.sql
        .batch_execute(
            "create table public.bfd_notes (id int primary key, body text);
             create function public.bfd_notes_changed() returns trigger
               language plpgsql security definer as $$
             begin
               perform realtime.broadcast_changes('notes:' || coalesce(new.id, old.id), tg_op, tg_op,
                                                  tg_table_name, tg_table_schema, new, old);
               return null;
             end $$;
             create trigger bfd_notes_changed after insert or update or delete on public.bfd_notes
               for each row execute function public.bfd_notes_changed();
             insert into public.bfd_notes values (1, 'hello');
             update public.bfd_notes set body = 'bye';
             delete from public.bfd_notes;",
        )
        .await
        .unwrap();
    let rows = env
        .sql
        .query(
            "select event, private, payload::text from realtime.messages
              where topic = 'notes:1' order by inserted_at, payload ->> 'operation' desc",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, bool, serde_json::Value)> = rows
        .iter()
        .map(|r| {
            let payload: String = r.get(2);
            (r.get(0), r.get(1), serde_json::from_str(&payload).unwrap())
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    let by_op = |op: &str| got.iter().find(|g| g.0 == op).unwrap().clone();
    let (_, private, insert) = by_op("INSERT");
    assert!(private, "private by default");
    assert_eq!(
        insert["record"],
        serde_json::json!({"id": 1, "body": "hello"})
    );
    assert_eq!(insert["old_record"], serde_json::Value::Null);
    assert_eq!(insert["table"], "bfd_notes");
    assert_eq!(insert["schema"], "public");
    assert!(insert["id"].is_string(), "an id is added: {insert}");
    let (_, _, update) = by_op("UPDATE");
    assert_eq!(update["old_record"]["body"], "hello");
    assert_eq!(update["record"]["body"], "bye");
    let (_, _, delete) = by_op("DELETE");
    assert_eq!(delete["record"], serde_json::Value::Null);
    assert_eq!(delete["old_record"]["body"], "bye");
}

#[tokio::test]
async fn send_is_checked_by_the_topics_policy_and_never_fails_the_caller() {
    let env = env().await;
    let user = env.user().await;
    env.sql
        .batch_execute(
            "create policy bfd_own_room on realtime.messages for insert to authenticated
               with check (realtime.topic() = 'room:' || auth.uid()::text)",
        )
        .await
        .unwrap();
    let claims = serde_json::json!({"sub": user, "role": "authenticated"}).to_string();
    let mine = format!("room:{user}");
    env.sql
        .batch_execute(&format!(
            "begin;
             set local role authenticated;
             select set_config('request.jwt.claims', '{claims}', true);
             select realtime.send('{{\"n\": 1}}', 'ev', '{mine}');
             select realtime.send('{{\"n\": 2}}', 'ev', 'room:someone-else');
             select realtime.send_binary('\\x0102', 'bin', '{mine}');
             commit;"
        ))
        .await
        .expect("a refused send is a warning, not an error");
    let rows = env
        .sql
        .query(
            "select topic, payload ->> 'n', binary_payload from realtime.messages
              where extension = 'broadcast' and topic like 'room:%' order by inserted_at, event desc",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, Option<String>, Option<Vec<u8>>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (mine.clone(), Some("1".into()), None),
            (mine.clone(), None, Some(vec![1, 2])),
        ]
    );
}

#[tokio::test]
async fn a_plain_messages_table_is_rebuilt_partitioned_with_its_policies_and_rows() {
    let env = env().await;
    // Back to what realtime.sql made before this migration, with a project's policy and a row.
    env.sql
        .batch_execute(
            "drop table realtime.messages;
             create table realtime.messages (
                 topic text not null, extension text not null, payload jsonb, event text,
                 private boolean default false, updated_at timestamp not null default now(),
                 inserted_at timestamp not null default now(),
                 id uuid not null default gen_random_uuid(), primary key (id, inserted_at));
             alter table realtime.messages enable row level security;
             create policy \"team can read\" on realtime.messages as restrictive for select
               to authenticated, anon using (realtime.topic() like 'team:%');
             insert into realtime.messages (topic, extension, payload) values ('team:1', 'broadcast', '{}');
             insert into realtime.messages (topic, extension, payload, inserted_at)
               values ('ancient', 'broadcast', '{}', now() - interval '30 days');",
        )
        .await
        .unwrap();
    env.sql
        .batch_execute(craftbase_realtime::BROADCAST_SQL)
        .await
        .unwrap();
    let partitioned: bool = env
        .sql
        .query_one(
            "select exists (select 1 from pg_partitioned_table
                             where partrelid = 'realtime.messages'::regclass)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(partitioned);
    let policy = env
        .sql
        .query_one(
            "select permissive, roles::text[], cmd, qual from pg_policies
              where schemaname = 'realtime' and tablename = 'messages'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(policy.get::<_, String>(0), "RESTRICTIVE");
    let mut roles: Vec<String> = policy.get(1);
    roles.sort();
    assert_eq!(roles, ["anon", "authenticated"]);
    assert_eq!(policy.get::<_, String>(2), "SELECT");
    assert!(policy.get::<_, String>(3).contains("team:%"));
    let topics: Vec<String> = env
        .sql
        .query("select topic from realtime.messages", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        topics,
        ["team:1"],
        "retained days kept, older ones left behind"
    );
    let published: i64 = env
        .sql
        .query_one(
            "select count(*) from pg_publication_tables
              where pubname = 'supabase_realtime_messages_publication' and tablename = 'messages'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(published, 1);
}
