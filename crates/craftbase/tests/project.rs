//! A project folder through the binary: `init`, `migration new`, `start` on it (an empty
//! platform otherwise), and `db reset`.

use std::path::Path;
use std::process::Command;

use crate::support::{binary, connect_url, reachable_tempdir, Craftbase};

/// Runs `craftbase <args>`, asserting success; returns stdout.
fn craftbase(args: &[&str], project: &Path) -> String {
    let out = Command::new(binary())
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run craftbase");
    assert!(
        out.status.success(),
        "craftbase {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn notes(url: &str) -> Vec<String> {
    connect_url(url)
        .await
        .query("select body from public.notes order by id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_new_migration_start_and_reset() {
    let tmp = reachable_tempdir();
    let project = tmp.path().join("app");
    std::fs::create_dir_all(&project).unwrap();
    let created = craftbase(&["init"], &project);
    assert!(created.contains("supabase/config.toml"), "{created}");
    assert!(project.join("supabase/migrations").is_dir());

    let out = craftbase(&["migration", "new", "create_notes"], &project);
    let path = out.trim().strip_prefix("created ").unwrap().to_owned();
    assert!(path.ends_with("_create_notes.sql"), "{path}");
    std::fs::write(
        &path,
        "create table public.notes (id serial primary key, body text not null);\n",
    )
    .unwrap();
    std::fs::write(
        project.join("supabase/seed.sql"),
        "insert into public.notes (body) values ('seeded');\n",
    )
    .unwrap();

    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &project).await;
    let url = cb.status().db_url;
    let log = cb.stderr();
    assert!(
        !log.contains("unknown key") && !log.contains(" WARN "),
        "the config.toml init writes is read without a warning:\n{log}"
    );
    assert_eq!(notes(&url).await, ["seeded"]);
    let db = connect_url(&url).await;
    // Only the project's tables: Tool Connect Craft is an example, not part of the platform.
    let app_tables: i64 = db
        .query_one(
            "select count(*) from pg_tables where schemaname = 'public' and tablename <> 'notes'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(app_tables, 0);
    let recorded: Vec<String> = db
        .query(
            "select name from supabase_migrations.schema_migrations order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, ["create_notes"]);
    db.batch_execute("insert into public.notes (body) values ('written later')")
        .await
        .unwrap();
    drop(db);
    assert_eq!(notes(&url).await, ["seeded", "written later"]);

    // Reset refuses while craftbase runs, then works once it is stopped.
    let reset = |port: u16| {
        Command::new(binary())
            .args(["db", "reset", "--data-dir"])
            .arg(&data)
            .arg("--project-dir")
            .arg(&project)
            .args(["--db-port", &port.to_string()])
            .output()
            .expect("run craftbase db reset")
    };
    let refused = reset(cb.db_port);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is running"), "{stderr}");

    cb.signal_and_wait(libc::SIGTERM);
    let done = reset(cb.db_port);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let cb = cb.start_again(&project).await;
    assert_eq!(
        notes(&url).await,
        ["seeded"],
        "a fresh database, seeded again"
    );
    let resp = reqwest::Client::new()
        .get(cb.url("/rest/v1/notes?select=body"))
        .header("apikey", cb.status().service_role_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_project_the_platform_is_empty() {
    let tmp = reachable_tempdir();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let cb = Craftbase::start(&tmp.path().join("data"), &empty).await;
    let status = cb.status();
    let db = connect_url(&status.db_url).await;
    let public: i64 = db
        .query_one(
            "select count(*) from pg_tables where schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(public, 0, "no app tables without a project");
    let resp = reqwest::Client::new()
        .get(cb.url("/rest/v1/connectors"))
        .header("apikey", &status.anon_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "PGRST205", "{body}");
}
