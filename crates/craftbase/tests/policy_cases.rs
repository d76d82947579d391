//! `craftbase policy test`: Tool Connect Craft's case file passes on its policies, a broken
//! policy fails the cases it breaks by name, and the reports (TAP, JUnit XML) say so.

use craftbase::policy::cases::{self, File};
use craftbase_testkit::TestDb;

fn example_cases() -> (std::path::PathBuf, File) {
    let path = craftbase::migrations::example_dir().join("supabase/tests/policies.toml");
    let file = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, file)
}

async fn client(db: &TestDb) -> tokio_postgres::Client {
    let (client, connection) = db
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn the_example_projects_cases_pass_and_leave_nothing_behind() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let (_, file) = example_cases();
    assert!(file.cases.len() >= 100, "every table x action x subject");
    let mut c = client(&db).await;
    let outcomes = cases::run(&mut c, &file).await;
    let failed: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let users: i64 = c
        .query_one("select count(*) from auth.users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "every case was rolled back");
}

#[tokio::test]
async fn a_leaking_policy_fails_the_cases_it_breaks_by_name() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let mut c = client(&db).await;
    c.batch_execute(
        "drop policy user_connections_select_own on public.user_connections;
         create policy user_connections_select_own on public.user_connections
           for select to authenticated using (true);",
    )
    .await
    .unwrap();
    let (_, file) = example_cases();
    let outcomes = cases::run(&mut c, &file).await;
    let failed: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|o| o.failure.as_deref().map(|f| (o.name.as_str(), f)))
        .collect();
    assert!(
        failed.contains(&(
            "user_connections: other user reads alice's row",
            "expected denied, was allowed; expected 0 rows, got 1"
        )),
        "{failed:#?}"
    );
    assert!(
        failed
            .iter()
            .all(|(name, _)| name.starts_with("user_connections:")),
        "{failed:#?}"
    );
    let tap = cases::tap(&outcomes);
    assert!(tap.starts_with(&format!("TAP version 13\n1..{}\n", outcomes.len())));
    assert!(tap.contains("not ok "), "{tap}");
    assert!(tap.contains(" - user_connections: other user reads alice's row\n  ---\n  message: "));
    let xml = cases::junit("policies.toml", &outcomes);
    assert!(
        xml.contains(&format!("failures=\"{}\"", failed.len())),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"user_connections: other user reads alice&apos;s row\"")
            || xml.contains("<testcase name=\"user_connections: other user reads alice's row\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_exits_1_when_a_case_fails() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.toml");
    std::fs::write(
        &path,
        r#"
[[case]]
name = "anon reads an active connector"
as = "anon"
table = "connectors"
action = "select"
where = ["is_active=is.true"]
expect = { allowed = true }

[[case]]
name = "anon creates a connector (wrongly expected)"
as = "anon"
table = "connectors"
action = "insert"
row = { name = "x", slug = "x" }
expect = { allowed = true }
"#,
    )
    .unwrap();
    let run = |format: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_craftbase"))
            .args(["policy", "test", path.to_str().unwrap(), "--format", format])
            .args(["--db-url", &db.url()])
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| run("tap"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok 1 - anon reads an active connector"),
        "{text}"
    );
    assert!(
        text.contains("not ok 2 - anon creates a connector (wrongly expected)"),
        "{text}"
    );
    assert!(
        text.contains("expected allowed, was denied (new row violates row-level security policy"),
        "{text}"
    );
    let out = tokio::task::block_in_place(|| run("junit"));
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
}
