//! Rows routed only to their owners' claims groups (changes/ownership): never a row another
//! user's policies hide, and every policy that is not of an owner form still probes every group.

use craftbase_realtime::changes::decode::{Change, Transaction};
use craftbase_realtime::changes::ownership::Owner;
use craftbase_realtime::changes::pipeline::deliver;
use craftbase_realtime::protocol::Message;
use tokio::sync::mpsc::Receiver;

use crate::authorize::{row, subscribe};
use crate::support::*;

fn insert(oid: u32, rows: Vec<Vec<(std::sync::Arc<str>, Option<String>)>>) -> Transaction {
    Transaction {
        lsn: 0,
        broadcasts: Vec::new(),
        commit_timestamp: "2026-01-01T00:00:00.000Z".into(),
        changes: rows
            .into_iter()
            .map(|r| Change {
                table_oid: oid,
                kind: "INSERT",
                new: Some(r),
                old: None,
            })
            .collect(),
    }
}

/// The `id`s of the records delivered to `rx` within half a second.
async fn ids(rx: &mut Receiver<Message>) -> Vec<String> {
    let mut out: Vec<String> = drain(rx, 500)
        .await
        .into_iter()
        .filter(|m| m.event == "postgres_changes")
        .map(|m| m.payload["data"]["record"]["id"].to_string())
        .collect();
    out.sort();
    out
}

/// A `docs` table with an owner column and the given extra policies.
async fn docs(env: &Env, policies: &str) -> u32 {
    env.sql
        .batch_execute(&format!(
            "create table public.docs (id int primary key, owner uuid, public bool not null default false,
                                       hidden bool not null default false);
             alter table public.docs enable row level security;
             create policy docs_own on public.docs for select to authenticated
                 using (owner = (select auth.uid()));
             {policies}
             grant select on public.docs to authenticated, service_role;
             alter publication supabase_realtime add table public.docs;"
        ))
        .await
        .unwrap();
    env.rt.catalog.oid_of("public", "docs").await.unwrap()
}

fn doc(
    id: i32,
    owner: Option<&str>,
    public: bool,
    hidden: bool,
) -> Vec<(std::sync::Arc<str>, Option<String>)> {
    let id = id.to_string();
    row(&[
        ("id", Some(&id)),
        ("owner", owner),
        ("public", Some(if public { "t" } else { "f" })),
        ("hidden", Some(if hidden { "t" } else { "f" })),
    ])
}

#[tokio::test]
async fn each_user_receives_only_her_rows_and_an_ownerless_row_only_bypass_roles() {
    let env = env().await;
    let oid = docs(&env, "").await;
    let table = env.rt.catalog.table(oid).await.unwrap();
    let access = env
        .rt
        .catalog
        .access(&table, "authenticated")
        .await
        .unwrap();
    assert_eq!(
        access.ownership.as_ref().map(|o| o.owners.clone()),
        Some(vec![Owner::Column("owner".into())]),
        "the owner policy is recognised, so rows are routed"
    );
    let users: Vec<String> = futures_util::future::join_all((0..5).map(|_| env.user())).await;
    let mut rxs = Vec::new();
    for u in &users {
        rxs.push(subscribe(&env, &user_token(u, 600), "docs", None).await);
    }
    let service = env.rt.ctx.keys.service_role_key.clone();
    let mut rx_service = subscribe(&env, &service, "docs", None).await;
    // Rows 0..20 round-robin over the users, then one whose owner is NULL and one owned by a
    // user with no subscription.
    let mut rows: Vec<_> = (0..20)
        .map(|i| doc(i, Some(&users[i as usize % 5]), false, false))
        .collect();
    rows.push(doc(100, None, false, false));
    rows.push(doc(
        101,
        Some("00000000-0000-0000-0000-00000000dead"),
        false,
        false,
    ));
    deliver(&env.rt, &[insert(oid, rows)]).await;
    for (u, rx) in rxs.iter_mut().enumerate() {
        let mut want: Vec<String> = (0..20)
            .filter(|i| i % 5 == u)
            .map(|i| i.to_string())
            .collect();
        want.sort();
        assert_eq!(ids(rx).await, want, "user {u} receives exactly her rows");
    }
    assert_eq!(
        ids(&mut rx_service).await.len(),
        22,
        "service_role bypasses RLS"
    );
}

#[tokio::test]
async fn a_second_policy_of_another_form_probes_every_group() {
    let env = env().await;
    let oid = docs(
        &env,
        "create policy docs_public on public.docs for select to authenticated using (public);",
    )
    .await;
    let table = env.rt.catalog.table(oid).await.unwrap();
    let access = env
        .rt
        .catalog
        .access(&table, "authenticated")
        .await
        .unwrap();
    assert!(access.ownership.is_none());
    let (a, b) = (env.user().await, env.user().await);
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "docs", None).await;
    // Six rows: more than a group checks one at a time, so the set-wise check runs too.
    let rows = (1..=6)
        .map(|i| doc(i, Some(&a), i % 2 == 1, false))
        .collect();
    deliver(&env.rt, &[insert(oid, rows)]).await;
    assert_eq!(
        ids(&mut rx_b).await,
        vec!["1", "3", "5"],
        "B sees A's public rows only"
    );
}

#[tokio::test]
async fn an_or_inside_one_policy_is_not_an_owner_form() {
    let env = env().await;
    let oid = docs(
        &env,
        "drop policy docs_own on public.docs;
         create policy docs_own_or_public on public.docs for select to authenticated
             using (owner = auth.uid() or public);",
    )
    .await;
    let table = env.rt.catalog.table(oid).await.unwrap();
    let access = env
        .rt
        .catalog
        .access(&table, "authenticated")
        .await
        .unwrap();
    assert!(access.ownership.is_none());
    let (a, b) = (env.user().await, env.user().await);
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "docs", None).await;
    deliver(&env.rt, &[insert(oid, vec![doc(1, Some(&a), true, false)])]).await;
    assert_eq!(ids(&mut rx_b).await, vec!["1"]);
}

#[tokio::test]
async fn restrictive_policies_still_decide_for_the_owner() {
    let env = env().await;
    let oid = docs(
        &env,
        "create policy docs_not_hidden on public.docs as restrictive for select to authenticated
             using (not hidden);",
    )
    .await;
    let a = env.user().await;
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "docs", None).await;
    deliver(
        &env.rt,
        &[insert(
            oid,
            vec![
                doc(1, Some(&a), false, true),
                doc(2, Some(&a), false, false),
            ],
        )],
    )
    .await;
    assert_eq!(ids(&mut rx_a).await, vec!["2"]);
}

#[tokio::test]
async fn events_reach_the_owner_of_their_job_only() {
    let env = env().await;
    let oid = env
        .rt
        .catalog
        .oid_of("public", "pipeline_events")
        .await
        .unwrap();
    let table = env.rt.catalog.table(oid).await.unwrap();
    let access = env
        .rt
        .catalog
        .access(&table, "authenticated")
        .await
        .unwrap();
    assert!(
        matches!(access.ownership.as_ref().map(|o| &o.owners[..]), Some([Owner::Parent { column, .. }]) if column == "job_id"),
        "the EXISTS-on-the-owner's-job policy is recognised: {:?}",
        access.ownership
    );
    let (a, b) = (env.user().await, env.user().await);
    let connector = env.connector().await;
    let job = |user: String| {
        let connector = connector.clone();
        let sql = &env.sql;
        async move {
            sql.query_one(
                "insert into public.pipeline_jobs (user_id, connector_id, type)
                 values ($1::text::uuid, $2::text::uuid, 'x') returning id::text",
                &[&user, &connector],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
        }
    };
    let (job_a, job_b) = (job(a.clone()).await, job(b.clone()).await);
    let mut rx_a = subscribe(&env, &user_token(&a, 600), "pipeline_events", None).await;
    let mut rx_b = subscribe(&env, &user_token(&b, 600), "pipeline_events", None).await;
    let event = |id: &str, job: Option<&str>, user: &str| {
        row(&[
            ("id", Some(id)),
            ("job_id", job),
            ("message", Some("m")),
            ("level", Some("info")),
            ("data", Some("{}")),
            // The row's own user_id is not what the policy reads: a forged one changes nothing.
            ("user_id", Some(user)),
        ])
    };
    let e = |n: u8| format!("00000000-0000-0000-0000-0000000000{n:02x}");
    deliver(
        &env.rt,
        &[insert(
            oid,
            vec![
                event(&e(1), Some(&job_a), &a),
                event(&e(2), Some(&job_b), &a),
                event(&e(3), None, &a),
                event(&e(4), Some("00000000-0000-0000-0000-00000000dead"), &a),
            ],
        )],
    )
    .await;
    let quoted = |s: String| format!("\"{s}\"");
    assert_eq!(ids(&mut rx_a).await, vec![quoted(e(1))]);
    assert_eq!(ids(&mut rx_b).await, vec![quoted(e(2))]);
}
