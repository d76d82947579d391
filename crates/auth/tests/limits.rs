//! Hardening of auth's limits: TOTP challenges spent by a wrong code, factors locked after
//! repeated wrong codes, GoTrue's MFA rate limits, emailed codes voided after wrong guesses,
//! expiry of rows written without a session, and rate limits on `/authorize`.

use serde_json::{json, Value};

use crate::mfa::{code, wrong_code};
use crate::support::{App, Reply};

/// Signs up `email` and enrols a TOTP factor: (access token, factor id, secret).
async fn enrolled(app: &App, email: &str) -> (String, String, String) {
    let session = app.sign_up(email).await;
    let access = session["access_token"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "POST",
            "/factors",
            Some(&access),
            json!({"factor_type": "totp"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let factor = r.body["id"].as_str().unwrap().to_owned();
    let secret = r.body["totp"]["secret"].as_str().unwrap().to_owned();
    (access, factor, secret)
}

async fn challenge(app: &App, access: &str, factor: &str) -> Reply {
    app.call(
        "POST",
        &format!("/factors/{factor}/challenge"),
        Some(access),
        json!({}),
    )
    .await
}

async fn verify(app: &App, access: &str, factor: &str, challenge: &Value, code: String) -> Reply {
    app.call(
        "POST",
        &format!("/factors/{factor}/verify"),
        Some(access),
        json!({"challenge_id": challenge["id"], "code": code}),
    )
    .await
}

#[tokio::test]
async fn a_wrong_totp_code_spends_the_challenge_and_repeated_ones_lock_the_factor() {
    let app = App::new(&["--mfa-max-failed-verifications", "3"]).await;
    let (access, factor, secret) = enrolled(&app, "lock@example.com").await;

    let c = challenge(&app, &access, &factor).await.body;
    let wrong = verify(&app, &access, &factor, &c, wrong_code(&secret)).await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["error_code"], "mfa_verification_failed");
    let retry = verify(&app, &access, &factor, &c, code(&secret)).await;
    assert_eq!(retry.status, 422, "{}", retry.body);
    assert_eq!(retry.body["error_code"], "mfa_factor_not_found");

    for _ in 0..2 {
        let c = challenge(&app, &access, &factor).await.body;
        let wrong = verify(&app, &access, &factor, &c, wrong_code(&secret)).await;
        assert_eq!(wrong.body["error_code"], "mfa_verification_failed");
    }
    // Three wrong codes: even the right one is refused now, as GoTrue's hook refuses.
    let c = challenge(&app, &access, &factor).await.body;
    let locked = verify(&app, &access, &factor, &c, code(&secret)).await;
    assert_eq!(locked.status, 403, "{}", locked.body);
    assert_eq!(locked.body["error_code"], "mfa_verification_rejected");
    assert_eq!(
        locked.body["msg"],
        "Further MFA verification attempts will be rejected."
    );

    // Once the lock has passed, the right code verifies and the count starts again.
    app.db
        .superuser()
        .await
        .execute(
            "update auth.mfa_factor_failures set last_failed_at = now() - interval '1 hour'",
            &[],
        )
        .await
        .unwrap();
    let c = challenge(&app, &access, &factor).await.body;
    let ok = verify(&app, &access, &factor, &c, code(&secret)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        app.count("select count(*) from auth.mfa_factor_failures")
            .await,
        0
    );
}

#[tokio::test]
async fn mfa_challenge_and_verify_have_gotrues_rate_limit() {
    let app = App::new(&["--mfa-rate-limit-challenge-and-verify", "2"]).await;
    let (access, factor, secret) = enrolled(&app, "mfa-limit@example.com").await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(challenge(&app, &access, &factor).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, [200, 200, 429]);
    let c = json!({"id": uuid::Uuid::new_v4()});
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = verify(&app, &access, &factor, &c, wrong_code(&secret)).await;
        codes.push(r.body["error_code"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(
        codes,
        [
            "mfa_factor_not_found",
            "mfa_factor_not_found",
            "over_request_rate_limit"
        ]
    );
}

/// A magic-link code for `email` made by the admin API.
async fn emailed_code(app: &App, email: &str) -> String {
    let admin = app.keys.service_role_key.clone();
    let r = app
        .call(
            "POST",
            "/admin/generate_link",
            Some(&admin),
            json!({"type": "magiclink", "email": email}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["email_otp"].as_str().unwrap().to_owned()
}

async fn verify_code(app: &App, email: &str, token: &str) -> Reply {
    app.call(
        "POST",
        "/verify",
        None,
        json!({"type": "magiclink", "email": email, "token": token}),
    )
    .await
}

#[tokio::test]
async fn emailed_codes_are_void_after_repeated_wrong_guesses() {
    let app = App::new(&["--otp-max-failed-attempts", "3"]).await;
    app.sign_up("guess@example.com").await;
    let right = emailed_code(&app, "guess@example.com").await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        let r = verify_code(&app, "guess@example.com", wrong).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error_code"], "otp_expired");
    }
    let late = verify_code(&app, "guess@example.com", &right).await;
    assert_eq!(late.status, 403, "{}", late.body);
    assert_eq!(late.body["error_code"], "otp_expired");

    // A new code starts the count again, and the right one signs in.
    let right = emailed_code(&app, "guess@example.com").await;
    let r = verify_code(&app, "guess@example.com", wrong).await;
    assert_eq!(r.body["error_code"], "otp_expired");
    let ok = verify_code(&app, "guess@example.com", &right).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(app.count("select count(*) from auth.otp_failures").await, 0);
}

#[tokio::test]
async fn expired_flow_states_and_authorizations_are_swept_when_new_ones_are_written() {
    let app = App::new(&[
        "--mailer-autoconfirm",
        "false",
        "--oauth-server-enabled",
        "true",
        "--oauth-server-authorization-path",
        "/oauth/consent",
    ])
    .await;
    let db = app.db.superuser().await;
    db.batch_execute(
        "insert into auth.flow_state (id, auth_code, code_challenge_method, code_challenge, \
           provider_type, created_at, authentication_method) values \
           (gen_random_uuid(), 'old-oauth', 's256', 'x', 'github', now() - interval '2 hours', 'oauth'), \
           (gen_random_uuid(), 'old-email', 's256', 'x', 'email', now() - interval '25 hours', 'signup'), \
           (gen_random_uuid(), 'fresh', 's256', 'x', 'github', now(), 'oauth')",
    )
    .await
    .unwrap();
    let challenge = "c".repeat(43);
    let r = app
        .call(
            "POST",
            "/signup",
            None,
            json!({"email": "pkce@example.com", "password": "secret-pw-1",
                   "code_challenge": challenge, "code_challenge_method": "s256"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        app.count("select count(*) from auth.flow_state where auth_code like 'old-%'")
            .await,
        0
    );
    assert_eq!(app.count("select count(*) from auth.flow_state").await, 2);

    let admin = app.keys.service_role_key.clone();
    let client = app
        .call(
            "POST",
            "/admin/oauth/clients",
            Some(&admin),
            json!({"client_name": "sweep", "redirect_uris": ["http://localhost:4000/cb"]}),
        )
        .await;
    assert_eq!(client.status, 201, "{}", client.body);
    let client_id = client.body["client_id"].as_str().unwrap().to_owned();
    db.execute(
        "insert into auth.oauth_authorizations (id, authorization_id, client_id, redirect_uri, \
           scope, created_at, expires_at) values (gen_random_uuid(), 'stale', $1::text::uuid, \
           'http://localhost:4000/cb', 'email', now() - interval '1 hour', now() - interval '50 minutes')",
        &[&client_id],
    )
    .await
    .unwrap();
    let uri = format!(
        "/oauth/authorize?client_id={client_id}&redirect_uri=http://localhost:4000/cb\
         &response_type=code&code_challenge={challenge}&code_challenge_method=S256"
    );
    let r = app.raw("GET", &uri, None, None).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        app.count(
            "select count(*) from auth.oauth_authorizations where authorization_id = 'stale'"
        )
        .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from auth.oauth_authorizations")
            .await,
        1
    );
}

#[tokio::test]
async fn authorize_endpoints_are_rate_limited() {
    for path in ["/authorize?provider=github", "/oauth/authorize?client_id=x"] {
        let app = App::new(&[
            "--rate-limit-authorize",
            "3",
            "--oauth-server-enabled",
            "true",
        ])
        .await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(app.raw("GET", path, None, None).await.status.as_u16());
        }
        assert_eq!(statuses.last(), Some(&429), "{path}: {statuses:?}");
        assert!(
            statuses[..3].iter().all(|s| *s != 429),
            "{path}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn a_reauthentication_nonce_is_void_after_repeated_wrong_guesses() {
    use sha2::{Digest, Sha256};
    let app = App::new(&["--otp-max-failed-attempts", "3"]).await;
    let session = app.sign_up("nonce@example.com").await;
    let access = session["access_token"].as_str().unwrap().to_owned();
    let set_nonce = |nonce: &'static str| {
        let hash: String = Sha256::digest(format!("nonce@example.com{nonce}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let db = &app.db;
        async move {
            db.superuser()
                .await
                .execute(
                    "update auth.users set reauthentication_token = $1, \
                       reauthentication_sent_at = now() where email = 'nonce@example.com'",
                    &[&hash],
                )
                .await
                .unwrap();
        }
    };
    let change = |nonce: &'static str, pw: &'static str| {
        let access = access.clone();
        let app = &app;
        async move {
            app.call(
                "PUT",
                "/user",
                Some(&access),
                json!({"password": pw, "nonce": nonce}),
            )
            .await
        }
    };
    set_nonce("424242").await;
    for _ in 0..3 {
        let r = change("000000", "new-password-1").await;
        assert_eq!(r.body["error_code"], "reauthentication_not_valid");
    }
    let late = change("424242", "new-password-1").await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(late.body["error_code"], "reauthentication_not_valid");

    // A new nonce (here written as `/reauthenticate` would) is good again.
    app.db
        .superuser()
        .await
        .execute("delete from auth.otp_failures", &[])
        .await
        .unwrap();
    set_nonce("515151").await;
    let ok = change("515151", "new-password-2").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}
