//! Tool Connect Craft's catalogue and RLS policies, checked over SQL the way the gateway will run
//! requests: as `authenticator`, switching role, with `request.jwt.claims` set.

use craftbase_testkit::TestDb;
use tokio_postgres::Client;

const ALICE: &str = "11111111-1111-4111-8111-111111111111";
const BOB: &str = "22222222-2222-4222-8222-222222222222";

async fn setup() -> (TestDb, Client) {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    db.add_users(&[(ALICE, "alice@example.com"), (BOB, "bob@example.com")])
        .await;
    let (client, connection) = db
        .config("authenticator")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    (db, client)
}

/// Runs `sql` in a transaction as `role` with `sub` in the claims; returns the first column of
/// each row as text, or the SQLSTATE of the error.
async fn run_as(
    client: &mut Client,
    role: &str,
    sub: Option<&str>,
    sql: &str,
) -> Result<Vec<String>, String> {
    let claims = match sub {
        Some(sub) => serde_json::json!({"role": role, "sub": sub}),
        None => serde_json::json!({"role": role}),
    };
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&role, &claims.to_string()],
    )
    .await
    .unwrap();
    let result = tx.query(sql, &[]).await;
    let out = match result {
        Ok(rows) => Ok(rows
            .iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .collect()),
        Err(e) => Err(e
            .code()
            .map(|c| c.code().to_owned())
            .unwrap_or_else(|| e.to_string())),
    };
    if out.is_ok() {
        tx.commit().await.unwrap();
    }
    out
}

#[tokio::test]
async fn catalogue_is_seeded_and_readable_by_anon_and_users() {
    let (_db, mut client) = setup().await;
    for (role, sub) in [
        ("anon", None),
        ("authenticated", Some(ALICE)),
        ("service_role", None),
    ] {
        let n = run_as(
            &mut client,
            role,
            sub,
            "select count(*)::text from public.connectors where is_active",
        )
        .await;
        assert_eq!(n, Ok(vec!["8".to_owned()]), "{role}");
        let n = run_as(
            &mut client,
            role,
            sub,
            "select count(*)::text from public.connector_tools",
        )
        .await;
        assert_eq!(n, Ok(vec!["10".to_owned()]), "{role}");
    }
    let slugs = run_as(
        &mut client,
        "anon",
        None,
        "select slug from public.connectors order by slug",
    )
    .await
    .unwrap();
    assert_eq!(
        slugs,
        [
            "airtable",
            "custom-mcp",
            "github",
            "google-drive",
            "google-gmail",
            "notion",
            "slack",
            "vercel"
        ]
    );
    // Users cannot change the catalogue.
    let r = run_as(
        &mut client,
        "authenticated",
        Some(ALICE),
        "update public.connectors set name = 'x' returning name",
    )
    .await;
    assert_eq!(r, Ok(vec![]));
}

#[tokio::test]
async fn each_user_sees_and_changes_only_their_own_rows() {
    let (_db, mut client) = setup().await;
    let github = "(select id from public.connectors where slug = 'github')";
    for user in [ALICE, BOB] {
        let r = run_as(
            &mut client,
            "authenticated",
            Some(user),
            &format!(
                "insert into public.user_connections (user_id, connector_id, status) values ('{user}', {github}, 'active') returning user_id::text;
                "
            ),
        )
        .await;
        assert_eq!(r, Ok(vec![user.to_owned()]));
        let job = run_as(
            &mut client,
            "authenticated",
            Some(user),
            &format!("insert into public.pipeline_jobs (user_id, connector_id, type) values ('{user}', {github}, 'tool_execution') returning id::text"),
        )
        .await
        .unwrap();
        let r = run_as(
            &mut client,
            "authenticated",
            Some(user),
            &format!("insert into public.pipeline_events (job_id, message) values ('{}', 'Starting') returning user_id::text", job[0]),
        )
        .await;
        assert_eq!(
            r,
            Ok(vec![user.to_owned()]),
            "the event's owner comes from its job"
        );
    }

    // Alice cannot write rows for Bob.
    let r = run_as(
        &mut client,
        "authenticated",
        Some(ALICE),
        &format!("insert into public.user_connections (user_id, connector_id) values ('{BOB}', (select id from public.connectors where slug = 'slack'))"),
    )
    .await;
    assert_eq!(r, Err("42501".to_owned()));
    let bobs_job = run_as(
        &mut client,
        "service_role",
        None,
        &format!("select id::text from public.pipeline_jobs where user_id = '{BOB}'"),
    )
    .await
    .unwrap();
    let r = run_as(
        &mut client,
        "authenticated",
        Some(ALICE),
        &format!(
            "insert into public.pipeline_events (job_id, message) values ('{}', 'forged')",
            bobs_job[0]
        ),
    )
    .await;
    assert_eq!(r, Err("42501".to_owned()));

    for table in ["user_connections", "pipeline_jobs", "pipeline_events"] {
        for (user, other) in [(ALICE, BOB), (BOB, ALICE)] {
            let owners = run_as(
                &mut client,
                "authenticated",
                Some(user),
                &format!("select user_id::text from public.{table}"),
            )
            .await
            .unwrap();
            assert_eq!(owners, [user.to_owned()], "{table} as {user}");
            let changed = run_as(
                &mut client,
                "authenticated",
                Some(user),
                &format!("update public.{table} set id = id where user_id = '{other}' returning id::text"),
            )
            .await;
            // No rows visible to change (events and jobs have no policy for some verbs at all).
            assert!(matches!(changed.as_deref(), Ok([])), "{table}: {changed:?}");
            let deleted = run_as(
                &mut client,
                "authenticated",
                Some(user),
                &format!("delete from public.{table} returning id::text"),
            )
            .await;
            if table == "user_connections" {
                assert_eq!(
                    deleted.map(|r| r.len()),
                    Ok(1),
                    "a user may delete their own connection"
                );
            } else {
                assert_eq!(deleted, Ok(vec![]), "{table} has no delete policy");
            }
        }
        let anon = run_as(
            &mut client,
            "anon",
            None,
            &format!("select id::text from public.{table}"),
        )
        .await
        .unwrap();
        assert!(anon.is_empty(), "anon sees {table}");
    }
    let all = run_as(
        &mut client,
        "service_role",
        None,
        "select count(*)::text from public.pipeline_jobs",
    )
    .await;
    assert_eq!(all, Ok(vec!["2".to_owned()]), "service_role sees all");
    let r = run_as(
        &mut client,
        "authenticated",
        Some(ALICE),
        "select id::text from auth.users",
    )
    .await;
    assert_eq!(r, Err("42501".to_owned()), "auth.users is private");
}
