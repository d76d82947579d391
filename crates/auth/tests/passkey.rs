//! Passkeys and WebAuthn factors where no client reaches: the settings that switch them off,
//! a relying party that cannot be built, and the expiry of abandoned ceremonies. The ceremonies
//! themselves are tested end to end through supabase-js (tests/supabase-js/auth-passkeys).

use serde_json::{json, Value};

use crate::support::App;

const ON: &[&str] = &["--passkey-enabled", "true"];

#[tokio::test]
async fn passkeys_and_webauthn_factors_are_off_by_default_with_gotrue_answers() {
    let app = App::new(&[]).await;
    let r = app
        .call("POST", "/passkeys/authentication/options", None, json!({}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error_code"], "passkey_disabled");
    assert_eq!(r.body["msg"], "Passkeys are disabled");
    let r = app.call("GET", "/settings", None, Value::Null).await;
    assert_eq!(r.body["passkeys_enabled"], false);

    let session = app.sign_up("off@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let r = app
        .call("GET", "/passkeys", Some(access), Value::Null)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "passkey_disabled");

    let r = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "webauthn", "friendly_name": "key"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error_code"], "mfa_webauthn_enroll_not_enabled");
}

#[tokio::test]
async fn the_relying_party_defaults_to_the_site_url() {
    let app = App::new(&[
        "--passkey-enabled",
        "true",
        "--site-url",
        "https://app.example.com:8443/welcome",
    ])
    .await;
    let session = app.sign_up("rp@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let r = app
        .call(
            "POST",
            "/passkeys/registration/options",
            Some(access),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let options = &r.body["options"];
    assert_eq!(options["rp"]["id"], "app.example.com");
    assert_eq!(options["rp"]["name"], "app.example.com");
    assert_eq!(options["user"]["name"], "rp@example.com");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert!(r.body["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    let r = app.call("GET", "/settings", None, Value::Null).await;
    assert_eq!(r.body["passkeys_enabled"], true);
}

#[tokio::test]
async fn a_relying_party_that_is_not_the_origins_domain_is_a_server_error() {
    let app = App::new(&[
        "--passkey-enabled",
        "true",
        "--webauthn-rp-id",
        "example.com",
        "--webauthn-rp-origins",
        "https://other.example.org",
    ])
    .await;
    let r = app
        .call("POST", "/passkeys/authentication/options", None, json!({}))
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.body["error_code"], "unexpected_failure");
}

#[tokio::test]
async fn abandoned_ceremonies_expire_and_are_swept() {
    let app = App::new(ON).await;
    let first = app
        .call("POST", "/passkeys/authentication/options", None, json!({}))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let db = app.db.superuser().await;
    db.execute(
        "update auth.webauthn_challenges set expires_at = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    let second = app
        .call("POST", "/passkeys/authentication/options", None, json!({}))
        .await;
    assert_eq!(second.status, 200);
    let ids: Vec<String> = db
        .query("select id::text from auth.webauthn_challenges", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![second.body["challenge_id"].as_str().unwrap()]);

    // The session data is the server's own: never in what the client is sent.
    assert!(second.body.get("session_data").is_none());
}

#[tokio::test]
async fn verification_bodies_are_checked_in_gotrues_order() {
    let app = App::new(ON).await;
    let r = app
        .call("POST", "/passkeys/authentication/verify", None, json!({}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["msg"], "challenge_id is required");
    let r = app
        .call(
            "POST",
            "/passkeys/authentication/verify",
            None,
            json!({"challenge_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(r.body["msg"], "credential is required");
    let r = app
        .call(
            "POST",
            "/passkeys/authentication/verify",
            None,
            json!({"challenge_id": "00000000-0000-0000-0000-000000000000", "credential": {}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "webauthn_challenge_not_found");
}

#[tokio::test]
async fn passkey_sign_in_options_are_rate_limited_per_client() {
    let app = App::new(&["--passkey-enabled", "true", "--rate-limit-passkey", "2"]).await;
    for _ in 0..2 {
        let r = app
            .call("POST", "/passkeys/authentication/options", None, json!({}))
            .await;
        assert_eq!(r.status, 200);
    }
    let r = app
        .call("POST", "/passkeys/authentication/options", None, json!({}))
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error_code"], "over_request_rate_limit");
}

#[tokio::test]
async fn a_user_keeps_at_most_ten_open_registration_ceremonies() {
    let app = App::new(ON).await;
    let session = app.sign_up("many@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let mut ids = Vec::new();
    for _ in 0..12 {
        let r = app
            .call(
                "POST",
                "/passkeys/registration/options",
                Some(access),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.body["challenge_id"].as_str().unwrap().to_owned());
    }
    let db = app.db.superuser().await;
    let open: Vec<String> = db
        .query(
            "select id::text from auth.webauthn_challenges order by created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(open, ids[2..].to_vec());
}
