//! The new API keys: generated into the data directory, printed by `status`, managed by
//! `craftbase keys`, and mapped to anon / service_role by the edge.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{binary, example, reachable_tempdir, Craftbase};

fn keys(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run craftbase keys")
}

fn listed(data_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = keys(data_dir, &["list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("keys list --json prints JSON")
}

const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_generated_listed_created_and_revoked_while_running() {
    let tmp = reachable_tempdir();
    let data = tmp.path().join("data");
    let cb = Craftbase::start(&data, &example()).await;
    let status = cb.status();
    assert!(status.publishable_key.starts_with("sb_publishable_"));
    assert!(status.secret_key.starts_with("sb_secret_"));
    let mode = std::fs::metadata(data.join("secrets.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Neither key is printed where it could land in a log.
    for output in [cb.stdout(), cb.stderr()] {
        assert!(!output.contains(&status.secret_key));
        assert!(!output.contains(&status.publishable_key));
    }

    // `list` shows the publishable key, and only a prefix of the secret key.
    let list = listed(&data);
    assert_eq!(list.len(), 2);
    let text = String::from_utf8(keys(&data, &["list"]).stdout).unwrap();
    assert!(text.contains(&status.publishable_key));
    assert!(!text.contains(&status.secret_key));
    assert!(!serde_json::to_string(&list)
        .unwrap()
        .contains(&status.secret_key));
    let secret_row = list.iter().find(|k| k["kind"] == "secret").unwrap();
    assert!(secret_row["key"].is_null());
    assert!(status
        .secret_key
        .starts_with(secret_row["prefix"].as_str().unwrap()));

    let http = reqwest::Client::new();
    let admin_users = |key: String, ua: Option<&'static str>| {
        let mut req = http
            .get(cb.url("/auth/v1/admin/users"))
            .header("apikey", key);
        if let Some(ua) = ua {
            req = req.header("user-agent", ua);
        }
        req.send()
    };
    // The secret key acts as service_role (the admin API answers); the publishable key as anon.
    let resp = admin_users(status.secret_key.clone(), None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = admin_users(status.publishable_key.clone(), None)
        .await
        .unwrap();
    assert_ne!(resp.status(), 200);
    // From a browser, the secret key is refused as Supabase refuses it.
    let resp = admin_users(status.secret_key.clone(), Some(CHROME))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": "Forbidden use of secret API key in browser"})
    );
    // A browser may use the publishable key.
    let resp = http
        .get(cb.url("/rest/v1/connectors?select=id"))
        .header("apikey", &status.publishable_key)
        .header("user-agent", CHROME)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // `Authorization: Bearer sb_…` is no Authorization: the apikey decides.
    let resp = http
        .get(cb.url("/auth/v1/admin/users"))
        .header("apikey", &status.secret_key)
        .header(
            "authorization",
            format!("Bearer {}", status.publishable_key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // An unknown sb_ key: Supabase's 401.
    let resp = admin_users("sb_secret_notakey_notakey".into(), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "Invalid API key");

    // A new secret key works at once-ish, and stops working once revoked.
    let out = keys(&data, &["new", "--secret", "--name", "ci"]);
    assert!(out.status.success(), "{out:?}");
    let new_secret = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(new_secret.starts_with("sb_secret_"));
    assert_eq!(listed(&data).len(), 3);
    let served = |key: String, want: u16| {
        let admin_users = &admin_users;
        async move {
            let deadline = Instant::now() + Duration::from_secs(6);
            loop {
                let status = admin_users(key.clone(), None).await.unwrap().status();
                if status == want {
                    return true;
                }
                if Instant::now() > deadline {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(
        served(new_secret.clone(), 200).await,
        "the new key is not seen"
    );
    let out = keys(&data, &["revoke", &new_secret[..16]]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        served(new_secret.clone(), 401).await,
        "the revoked key still works"
    );
    // The other keys are untouched, and the revoked one is listed as revoked, without its value.
    assert_eq!(
        admin_users(status.secret_key.clone(), None)
            .await
            .unwrap()
            .status(),
        200
    );
    let list = listed(&data);
    let revoked = list.iter().find(|k| k["name"] == "ci").unwrap();
    assert!(revoked["revoked_at"].is_string());
    let stored = std::fs::read_to_string(data.join("secrets.json")).unwrap();
    assert!(!stored.contains(&new_secret));
    // An ambiguous or unknown name revokes nothing.
    let out = keys(&data, &["revoke", "sb_secret_zzzzzzzzzzzz"]);
    assert!(!out.status.success());
    assert_eq!(
        admin_users(status.secret_key.clone(), None)
            .await
            .unwrap()
            .status(),
        200
    );
    // SIGHUP reloads the keys at once; it no longer ends craftbase.
    let out = keys(&data, &["new", "--publishable", "--name", "hup"]);
    let hup = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    crate::support::send(cb.child.id(), libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = http
        .get(cb.url("/rest/v1/connectors?select=id"))
        .header("apikey", &hup)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(crate::support::process_exists(cb.child.id()));
    // The keys survive a restart unchanged.
    drop(cb);
    let cb = Craftbase::start(&data, &example()).await;
    let again = cb.status();
    assert_eq!(again.publishable_key, status.publishable_key);
    assert_eq!(again.secret_key, status.secret_key);
    assert_eq!(listed(&data).len(), 4);
}

#[test]
fn concurrent_key_commands_lose_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dir = craftbase::datadir::DataDir::open(&data).unwrap();
    dir.secrets(None, craftbase::datadir::unix_now()).unwrap();
    let children: Vec<_> = (0..12)
        .map(|i| {
            Command::new(binary())
                .args(["keys", "new", "--name", &format!("k{i}"), "--data-dir"])
                .arg(&data)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(listed(&data).len(), 2 + 12);
}
