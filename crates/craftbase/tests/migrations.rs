//! Migration order, idempotence and failure reporting, on a test database and through the binary.

use std::time::Duration;

use craftbase_cluster::{apply, Ledger, Migration, MigrationError};
use craftbase_testkit::TestDb;

use crate::support::{connect_url, reachable_tempdir, Craftbase};

fn migration(name: &str, sql: &str) -> Migration {
    Migration {
        name: name.into(),
        sql: sql.to_owned().into(),
        ledger: Ledger::Project {
            version: name.trim_end_matches(".sql").into(),
        },
    }
}

#[tokio::test]
async fn a_failing_migration_names_file_and_line_and_changes_nothing() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let mut client = db.superuser().await;
    let ok = migration(
        "one.sql",
        "create table t (n int);\ninsert into t values (1);\n",
    );
    let broken = migration(
        "two.sql",
        "-- adds a row, then fails\ninsert into t values (2);\n\ninsert into t\n  values ('not a number');\n",
    );
    let err = apply(&mut client, &[ok.clone(), broken], |_| {})
        .await
        .unwrap_err();
    match &err {
        MigrationError::Failed {
            name,
            line,
            message,
        } => {
            assert_eq!(name, "two.sql");
            assert_eq!(*line, 5, "{err}");
            assert!(
                message.contains("invalid input syntax for type integer"),
                "{message}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    let rows: Vec<i32> = client
        .query("select n from t order by n", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [1], "the failed file must leave nothing behind");

    // Applying again runs only what is new.
    let applied = apply(&mut client, &[ok], |_| {}).await.unwrap();
    assert_eq!(applied, 0);
}

#[tokio::test]
async fn syntax_errors_point_at_their_line() {
    let db = TestDb::new(craftbase::migrations::platform_and_example).await;
    let mut client = db.superuser().await;
    let broken = migration("s.sql", "select 1;\nselect\n  2 +;\n");
    let err = apply(&mut client, &[broken], |_| {}).await.unwrap_err();
    assert!(
        matches!(err, MigrationError::Failed { line: 3, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn project_migrations_apply_in_order_once_and_a_broken_one_stops_start_up() {
    let tmp = reachable_tempdir();
    let project = tmp.path().join("project");
    let dir = project.join("supabase/migrations");
    std::fs::create_dir_all(&dir).unwrap();
    // Named so that file-name order differs from creation order.
    std::fs::write(
        dir.join("20240102_second.sql"),
        "insert into public.applied (step) values ('second');\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("20240101_first.sql"),
        "create table public.applied (id serial primary key, step text not null);\ninsert into public.applied (step) values ('first');\n",
    )
    .unwrap();
    std::fs::write(
        project.join("supabase/seed.sql"),
        "insert into public.applied (step) values ('seed');\n",
    )
    .unwrap();

    let data = tmp.path().join("data");
    let steps = |url: String| async move {
        let db = connect_url(&url).await;
        db.query("select step from public.applied order by id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    let cb = Craftbase::start(&data, &project).await;
    let url = cb.status().db_url;
    assert_eq!(steps(url.clone()).await, ["first", "second", "seed"]);
    let cb = {
        let mut cb = cb;
        cb.signal_and_wait(libc::SIGTERM);
        cb.start_again(&project).await
    };
    assert_eq!(
        steps(url.clone()).await,
        ["first", "second", "seed"],
        "applied twice"
    );

    let mut cb = cb;
    cb.signal_and_wait(libc::SIGTERM);
    std::fs::write(
        dir.join("20240103_broken.sql"),
        "insert into public.applied (step) values ('third');\n\nselect * from no_such_table;\n",
    )
    .unwrap();
    let mut failed = Craftbase::spawn_on(&data, &project, &[], cb.api_port, cb.db_port);
    let status = failed
        .wait_exit(Duration::from_secs(60))
        .expect("a broken migration must stop start-up");
    assert!(!status.success());
    let stderr = failed.stderr();
    assert!(
        stderr.contains("supabase/migrations/20240103_broken.sql"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(
        stderr.contains("relation \"no_such_table\" does not exist"),
        "{stderr}"
    );

    std::fs::remove_file(dir.join("20240103_broken.sql")).unwrap();
    let _cb = cb.start_again(&project).await;
    assert_eq!(
        steps(url).await,
        ["first", "second", "seed"],
        "the broken file left rows"
    );
}
