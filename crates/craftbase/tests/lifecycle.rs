//! Starting, stopping, killing and restarting the real binary.

use std::time::Duration;

use crate::support::{connect_url, example, gone_within, reachable_tempdir, Craftbase};

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_rows_keys_and_secret_and_sigterm_leaves_no_postgres() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &example()).await;
    let before = cb.status();
    assert_eq!(before.api_url, cb.url(""));

    let db = connect_url(&before.db_url).await;
    db.execute(
        "insert into public.connectors (name, slug) values ('Persisted', 'persisted')",
        &[],
    )
    .await
    .unwrap();
    drop(db);

    let postmaster = cb.postmaster_pid();
    assert!(cb.signal_and_wait(libc::SIGTERM).success());
    assert!(
        gone_within(postmaster, Duration::from_secs(5)),
        "postgres outlived craftbase"
    );
    assert!(!data.join("postgres/pgdata/postmaster.pid").exists());

    let cb2 = cb.start_again(&example()).await;
    assert_eq!(
        cb2.status(),
        before,
        "keys, secret or URLs changed across a restart"
    );
    let db = connect_url(&before.db_url).await;
    let n: i64 = db
        .query_one(
            "select count(*) from public.connectors where slug = 'persisted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_postgres_and_kill_9_is_recovered_on_next_start() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &example()).await;
    let postmaster = cb.postmaster_pid();
    assert!(cb.signal_and_wait(libc::SIGINT).success());
    assert!(
        gone_within(postmaster, Duration::from_secs(5)),
        "postgres outlived Ctrl-C"
    );

    let mut cb = cb.start_again(&example()).await;
    let postmaster = cb.postmaster_pid();
    cb.signal_and_wait(libc::SIGKILL);
    // The kernel tells PostgreSQL its parent died; it shuts down by itself.
    assert!(
        gone_within(postmaster, Duration::from_secs(30)),
        "postgres outlived a killed craftbase"
    );

    let cb = cb.start_again(&example()).await;
    let db = connect_url(&cb.status().db_url).await;
    let n: i64 = db
        .query_one("select count(*) from public.connectors", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn database_url_without_logical_wal_is_refused_clearly() {
    let tmp = reachable_tempdir();
    let spec = craftbase_cluster::ClusterSpec {
        bindir: craftbase_cluster::find_bindir().unwrap(),
        root: tmp.path().join("replica-wal"),
        port: crate::support::free_port(),
        superuser_password: "pw".into(),
        throwaway: true,
        settings: vec!["wal_level=replica".into()],
    };
    let mut cluster = craftbase_cluster::Cluster::start(spec, |_| {})
        .await
        .unwrap();
    let url = cluster.superuser_url("postgres");

    let data = tmp.path().join("data");
    let mut cb = Craftbase::spawn(&data, tmp.path(), &[("DATABASE_URL", url.as_str())]);
    let status = cb
        .wait_exit(Duration::from_secs(30))
        .expect("craftbase must exit, not hang, on an unusable server");
    assert!(!status.success());
    let stderr = cb.stderr();
    assert!(stderr.contains("wal_level is 'replica'"), "{stderr}");
    assert!(stderr.contains("logical"), "{stderr}");
    tokio::task::block_in_place(|| cluster.stop());
}

#[tokio::test(flavor = "multi_thread")]
async fn database_url_with_logical_wal_is_served() {
    let db = craftbase_testkit::TestDb::new(craftbase::migrations::platform_and_example).await;
    let tmp = reachable_tempdir();
    let url = db.url();
    let mut cb = Craftbase::spawn(
        &tmp.path().join("data"),
        tmp.path(),
        &[("DATABASE_URL", url.as_str())],
    );
    cb.wait_healthy().await;
    let status = cb.status();
    assert_eq!(status.db_url, url);
    assert!(
        !tmp.path().join("data/postgres").exists(),
        "no embedded cluster with DATABASE_URL"
    );
    // Requests run as authenticator, which logs in with the data directory's password.
    let resp = reqwest::Client::new()
        .get(cb.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["database"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_service_setting_stops_start_up_with_its_name() {
    for (name, value) in [("PGRST_DB_MAX_ROWS", "lots"), ("GOTRUE_JWT_EXP", "soon")] {
        let tmp = reachable_tempdir();
        let mut cb = Craftbase::spawn(&tmp.path().join("data"), tmp.path(), &[(name, value)]);
        let status = cb
            .wait_exit(Duration::from_secs(30))
            .expect("craftbase must exit on a bad setting");
        assert!(!status.success());
        let stderr = cb.stderr();
        assert!(
            stderr.contains(name) || stderr.contains("jwt-exp"),
            "{name}: {stderr}"
        );
        assert!(
            !tmp.path().join("data/postgres").exists(),
            "nothing starts before the settings are read"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_that_dies_is_started_again_and_served() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &example()).await;
    let status = cb.status();
    let first = cb.postmaster_pid();
    // As the OOM killer would: no shutdown, no chance to clean up.
    crate::support::send(first, libc::SIGKILL);
    assert!(gone_within(first, Duration::from_secs(10)));

    // Back within seconds, with the same data, and the API serves from it again.
    let client = reqwest::Client::new();
    let mut served = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = client
            .get(cb.url("/rest/v1/connectors?select=slug"))
            .header("apikey", &status.anon_key)
            .send()
            .await;
        if let Ok(reply) = reply {
            if reply.status() == 200 {
                let rows: serde_json::Value = reply.json().await.unwrap();
                assert_eq!(rows.as_array().map(Vec::len), Some(8));
                served = true;
                break;
            }
        }
    }
    assert!(served, "the API did not serve again after PostgreSQL died");
    let second = cb.postmaster_pid();
    assert_ne!(first, second);

    // The restarted PostgreSQL is craftbase's child like the first: SIGTERM takes it down.
    assert!(cb.signal_and_wait(libc::SIGTERM).success());
    assert!(
        gone_within(second, Duration::from_secs(5)),
        "a restarted postgres outlived craftbase"
    );
}

/// Under a service manager stdout and stderr end up in a journal or a log file: neither may
/// carry the keys, the JWT secret, the database password or what clients send.
#[tokio::test(flavor = "multi_thread")]
async fn logs_carry_no_keys_secrets_or_passwords_when_stdout_is_not_a_terminal() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let mut cb = Craftbase::start(&data, &example()).await;
    let status = cb.status();
    let http = reqwest::Client::new();
    let password = "correct-horse-battery-staple-9";
    let signup = http
        .post(cb.url("/auth/v1/signup"))
        .header("apikey", &status.anon_key)
        .json(&serde_json::json!({"email": "logs@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert!(signup.status().is_success(), "{signup:?}");
    let session: serde_json::Value = signup.json().await.unwrap();
    let wrong = http
        .post(cb.url("/auth/v1/token?grant_type=password"))
        .header("apikey", &status.anon_key)
        .json(&serde_json::json!({"email": "logs@example.com", "password": "wrong-guess-12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    // A key in the query string, as websockets send it.
    let _ = http
        .get(cb.url(&format!("/rest/v1/connectors?apikey={}", status.anon_key)))
        .send()
        .await
        .unwrap();
    assert!(cb.signal_and_wait(libc::SIGTERM).success());

    let (stdout, stderr) = (cb.stdout(), cb.stderr());
    let db_password = url::Url::parse(&status.db_url)
        .unwrap()
        .password()
        .map(str::to_owned)
        .unwrap_or_default();
    let mut secrets = vec![
        ("anon key", status.anon_key.clone()),
        ("service_role key", status.service_role_key.clone()),
        ("JWT secret", status.jwt_secret.clone()),
        ("database URL", status.db_url.clone()),
        ("database password", db_password),
        ("user password", password.to_owned()),
        ("wrong password", "wrong-guess-12345".to_owned()),
    ];
    for field in ["access_token", "refresh_token"] {
        if let Some(token) = session[field].as_str() {
            secrets.push((field, token.to_owned()));
        }
    }
    for (what, secret) in secrets {
        assert!(!secret.is_empty(), "{what} is empty");
        assert!(
            !stdout.contains(&secret),
            "stdout shows the {what}:\n{stdout}"
        );
        assert!(
            !stderr.contains(&secret),
            "stderr shows the {what}:\n{stderr}"
        );
    }
    assert!(
        stdout.contains("craftbase status --json --data-dir"),
        "stdout does not say where the keys are:\n{stdout}"
    );
    assert!(stdout.contains(&status.api_url), "{stdout}");
}
