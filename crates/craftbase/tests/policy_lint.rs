//! `craftbase policy lint`: each rule on a fixture that triggers it and on one that does not,
//! each fixture in a schema of its own; then the command's exit code and JSON.

use craftbase_testkit::TestDb;

/// (rule, fixture that triggers it, fixture that does not); `S` is the fixture's schema.
const CASES: &[(&str, &str, &str)] = &[
    (
        "rls_disabled",
        "create table S.t (id int); grant select on S.t to anon;",
        "create table S.t (id int); grant select on S.t to anon;
         alter table S.t enable row level security;
         create policy p on S.t for select to anon using (id > 0);",
    ),
    (
        "view_not_security_invoker",
        "create table S.t (id int); alter table S.t enable row level security;
         create view S.v as select * from S.t; grant select on S.v to anon;",
        "create table S.t (id int); alter table S.t enable row level security;
         create view S.v with (security_invoker = on) as select * from S.t;
         grant select on S.v to anon;",
    ),
    (
        "rls_enabled_no_policy",
        "create table S.t (id int); alter table S.t enable row level security;
         grant select on S.t to authenticated;",
        "create table S.t (id int); alter table S.t enable row level security;
         grant select on S.t to authenticated;
         create policy p on S.t for select to authenticated using (id > 0);",
    ),
    (
        "anon_grant_without_policy",
        "create table S.t (id int); alter table S.t enable row level security;
         grant select on S.t to anon, authenticated;
         create policy p on S.t for select to authenticated using (id > 0);",
        "create table S.t (id int); alter table S.t enable row level security;
         grant select on S.t to authenticated;
         create policy p on S.t for select to authenticated using (id > 0);",
    ),
    (
        "realtime_replica_identity",
        "create table S.t (id int primary key, owner uuid); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (owner = (select auth.uid()));
         alter publication supabase_realtime add table S.t;",
        "create table S.t (id int primary key, owner uuid); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (owner = (select auth.uid()));
         alter table S.t replica identity full;
         alter publication supabase_realtime add table S.t;",
    ),
    (
        "policy_always_true",
        "create table S.t (id int, user_id uuid references auth.users);
         alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (true);",
        "create table S.t (id int, user_id uuid references auth.users);
         alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (user_id = (select auth.uid()));",
    ),
    (
        "policy_reads_user_metadata",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated
           using ((select auth.jwt() -> 'user_metadata' ->> 'role') = 'admin');",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated
           using ((select auth.jwt() -> 'app_metadata' ->> 'role') = 'admin');",
    ),
    (
        "auth_call_per_row",
        "create table S.t (id int, user_id uuid); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (user_id = auth.uid());",
        "create table S.t (id int, user_id uuid); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (user_id = (select auth.uid()));",
    ),
    (
        "policy_column_unindexed",
        "create table S.t (id int, user_id uuid); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (user_id = (select auth.uid()));",
        "create table S.t (id int, user_id uuid); alter table S.t enable row level security;
         create index on S.t (user_id);
         create policy p on S.t for select to authenticated using (user_id = (select auth.uid()));",
    ),
    (
        "security_definer_search_path",
        "create function S.f() returns int language sql security definer as 'select 1';",
        "create function S.f() returns int language sql security definer set search_path = '' as 'select 1';",
    ),
    (
        "restrictive_without_permissive",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy r on S.t as restrictive for select to authenticated using (id > 0);",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy r on S.t as restrictive for select to authenticated using (id > 0);
         create policy p on S.t for select to authenticated using (id < 100);",
    ),
    (
        "restrictive_always_true",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (id > 0);
         create policy r on S.t as restrictive for select to authenticated using (true);",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy p on S.t for select to authenticated using (id > 0);
         create policy r on S.t as restrictive for select to authenticated using (id < 100);",
    ),
    (
        "duplicate_permissive",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy a on S.t for select to authenticated using (id > 0);
         create policy b on S.t for select to authenticated using (id < 0);",
        "create table S.t (id int); alter table S.t enable row level security;
         create policy a on S.t for select to authenticated using (id > 0 or id < 0);",
    ),
];

async fn ids(db: &TestDb, schema: &str, fixture: &str) -> Vec<&'static str> {
    let client = db.superuser().await;
    client
        .batch_execute(&format!(
            "create schema {schema}; {}",
            fixture.replace("S.", &format!("{schema}."))
        ))
        .await
        .unwrap_or_else(|e| panic!("{schema}: {e}"));
    craftbase::policy::lint(&client, &[schema.to_owned()])
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect()
}

#[tokio::test]
async fn each_rule_fires_on_its_fixture_and_not_on_the_fixed_one() {
    let db = TestDb::new(craftbase::migrations::platform).await;
    for (i, (rule, bad, good)) in CASES.iter().enumerate() {
        let found = ids(&db, &format!("lint_bad_{i}"), bad).await;
        assert!(
            found.contains(rule),
            "{rule} not found on its fixture: {found:?}"
        );
        let found = ids(&db, &format!("lint_good_{i}"), good).await;
        assert!(
            !found.contains(rule),
            "{rule} found on the fixed fixture: {found:?}"
        );
    }
}

#[test]
fn every_rule_has_a_case() {
    let rules = [
        "rls_disabled",
        "view_not_security_invoker",
        "rls_enabled_no_policy",
        "anon_grant_without_policy",
        "realtime_replica_identity",
        "policy_always_true",
        "policy_reads_user_metadata",
        "auth_call_per_row",
        "policy_column_unindexed",
        "security_definer_search_path",
        "restrictive_without_permissive",
        "restrictive_always_true",
        "duplicate_permissive",
    ];
    for rule in rules {
        assert!(CASES.iter().any(|c| c.0 == rule), "{rule} has no case");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_exits_1_on_an_error_and_prints_json() {
    let db = TestDb::new(craftbase::migrations::platform).await;
    let client = db.superuser().await;
    client
        .batch_execute(
            "create schema cli_leaky; create table cli_leaky.notes (id int);
             grant select on cli_leaky.notes to anon;
             create schema cli_clean;",
        )
        .await
        .unwrap();
    let run = |schema: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_craftbase"))
            .args(["policy", "lint", "--format", "json", "--schema", schema])
            .args(["--db-url", &db.url()])
            .output()
            .unwrap()
    };
    let leaky = tokio::task::block_in_place(|| run("cli_leaky"));
    assert_eq!(leaky.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&leaky.stdout).unwrap();
    assert_eq!(findings[0]["id"], "rls_disabled");
    assert_eq!(findings[0]["level"], "error");
    assert_eq!(findings[0]["object"], "cli_leaky.notes");
    assert!(findings[0]["fix"]
        .as_str()
        .unwrap()
        .starts_with("alter table cli_leaky.notes enable row level security"));
    let clean = tokio::task::block_in_place(|| run("cli_clean"));
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&clean.stdout).trim(), "[]");
}
