//! `craftbase policy explain`: per row, which policy passed, agreeing with what the role sees;
//! the verdict on a proposed row; roles that bypass RLS; and nothing written.

use craftbase::policy::explain::{explain, Action, Explanation, Request};
use craftbase::policy::{filter, subject};
use craftbase_testkit::TestDb;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

async fn setup() -> TestDb {
    let db = TestDb::new(craftbase::migrations::platform).await;
    db.add_users(&[(ALICE, "alice@example.com"), (BOB, "bob@example.com")])
        .await;
    db.superuser()
        .await
        .batch_execute(&format!(
            "create schema ex;
             grant usage on schema ex to anon, authenticated, service_role;
             create table ex.notes (id int primary key, owner uuid, shared boolean default false, body text);
             alter table ex.notes enable row level security;
             grant select, insert, update on ex.notes to anon, authenticated, service_role;
             create policy own on ex.notes for select to authenticated using (owner = (select auth.uid()));
             create policy shared on ex.notes for select to authenticated using (shared);
             create policy not_secret on ex.notes as restrictive for select to authenticated
               using (body is distinct from 'secret');
             create policy write_own on ex.notes for insert to authenticated
               with check (owner = (select auth.uid()));
             create policy update_own on ex.notes for update to authenticated
               using (owner = (select auth.uid()));
             insert into ex.notes values (1, '{ALICE}', false, 'a'), (2, '{BOB}', false, 'b'),
                                         (3, '{BOB}', true, 'c'), (4, '{ALICE}', false, 'secret');"
        ))
        .await
        .unwrap();
    db
}

async fn run(
    db: &TestDb,
    who: &str,
    action: Action,
    filters: &[&str],
    row: Option<&str>,
) -> Explanation {
    let (mut client, connection) = db
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request {
        subject: subject::resolve(&client, who).await.unwrap(),
        table: "ex.notes".into(),
        filters: filters.iter().map(|f| filter::parse(f).unwrap()).collect(),
        action,
        row: row.map(|r| serde_json::from_str(r).unwrap()),
    };
    explain(&mut client, &request).await.unwrap()
}

fn verdicts(e: &Explanation) -> Vec<(i64, bool, Vec<Option<bool>>)> {
    let mut v: Vec<_> = e
        .rows
        .iter()
        .map(|r| (r.row["id"].as_i64().unwrap(), r.allowed, r.policies.clone()))
        .collect();
    v.sort_by_key(|r| r.0);
    v
}

#[tokio::test]
async fn each_row_says_which_policy_let_it_through_and_agrees_with_what_the_role_sees() {
    let db = setup().await;
    let e = run(&db, ALICE, Action::Select, &[], None).await;
    let names: Vec<&str> = e.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["not_secret", "own", "shared"]);
    let t = Some(true);
    let f = Some(false);
    assert_eq!(
        verdicts(&e),
        vec![
            (1, true, vec![t, t, f]),
            (2, false, vec![t, f, f]),
            (3, true, vec![t, f, t]),
            // Her own row, refused by the restrictive policy.
            (4, false, vec![f, t, f]),
        ]
    );
    for r in &e.rows {
        assert_eq!(r.visible, Some(r.allowed), "{}", r.row);
    }
    assert!(e.errors.is_empty(), "{:?}", e.errors);
}

#[tokio::test]
async fn filters_narrow_the_rows_and_values_stay_values() {
    let db = setup().await;
    let e = run(&db, BOB, Action::Select, &["id=in.(1,3)"], None).await;
    let ids: Vec<i64> = verdicts(&e).iter().map(|v| v.0).collect();
    assert_eq!(ids, [1, 3]);
    let e = run(&db, BOB, Action::Select, &["body=eq.a' or true --"], None).await;
    assert!(e.rows.is_empty());
}

#[tokio::test]
async fn a_proposed_row_gets_a_verdict_and_nothing_is_written() {
    let db = setup().await;
    let mine = format!(r#"{{"id": 9, "owner": "{ALICE}", "body": "x"}}"#);
    let e = run(&db, ALICE, Action::Insert, &[], Some(&mine)).await;
    assert_eq!(verdicts(&e), vec![(9, true, vec![Some(true)])]);
    let theirs = format!(r#"{{"id": 9, "owner": "{BOB}", "body": "x"}}"#);
    let e = run(&db, ALICE, Action::Insert, &[], Some(&theirs)).await;
    assert_eq!(verdicts(&e), vec![(9, false, vec![Some(false)])]);
    // Update: which rows she may change.
    let e = run(&db, ALICE, Action::Update, &[], None).await;
    let allowed: Vec<i64> = verdicts(&e).iter().filter(|v| v.1).map(|v| v.0).collect();
    assert_eq!(allowed, [1, 4]);
    let count: i64 = db
        .superuser()
        .await
        .query_one("select count(*) from ex.notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 4);
}

#[tokio::test]
async fn anon_has_no_policy_and_the_service_role_bypasses_them() {
    let db = setup().await;
    let e = run(&db, "anon", Action::Select, &[], None).await;
    assert!(e.policies.is_empty());
    assert!(e
        .rows
        .iter()
        .all(|r| !r.allowed && r.visible == Some(false)));
    let e = run(&db, "service_role", Action::Select, &[], None).await;
    assert!(e.bypass.as_deref().unwrap().contains("bypasses"));
    assert!(e.rows.iter().all(|r| r.allowed && r.visible == Some(true)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_prints_each_policy_and_row() {
    let db = setup().await;
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_craftbase"))
            .args([
                "policy", "explain", "ex.notes", "--as", ALICE, "--where", "id=eq.1",
            ])
            .args(["--db-url", &db.url()])
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("[P2] permissive \"own\" using: (owner = ( SELECT auth.uid() AS uid))"),
        "{text}"
    );
    assert!(text.contains("allowed"), "{text}");
    assert!(text.contains("P1 pass, P2 pass, P3 fail"), "{text}");
}
