//! Rate limits as GoTrue counts them (which bucket each endpoint draws from, GoTrue's 429
//! answers), kept in PostgreSQL so that two nodes on one database enforce one limit.

use serde_json::{json, Value};

use crate::support::{App, Reply};

fn password_grant(email: &str, password: &str) -> (&'static str, Value) {
    (
        "/token?grant_type=password",
        json!({"email": email, "password": password}),
    )
}

fn assert_request_limit(r: &Reply) {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error_code"], "over_request_rate_limit");
    assert_eq!(r.body["msg"], "Request rate limit reached");
    assert_eq!(r.body["code"], 429);
}

#[tokio::test]
async fn a_limit_of_n_holds_across_two_nodes_on_one_database() {
    let flags = &["--rate-limit-token-refresh", "4"];
    let a = App::new(flags).await;
    let b = a.second_node(flags);
    let (uri, body) = password_grant("nobody@example.com", "wrong-password");
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = if i % 2 == 0 {
            a.call("POST", uri, None, body.clone()).await
        } else {
            b.call("POST", uri, None, body.clone()).await
        };
        statuses.push(r.status.as_u16());
        if i >= 4 {
            assert_request_limit(&r);
        }
    }
    // Four in all, though each node saw only two or three; both asked the database.
    assert_eq!(statuses, [400, 400, 400, 400, 429, 429]);
    assert_eq!(
        a.count("select hits::bigint from auth.craftbase_rate_limits where bucket = 'token'")
            .await,
        6
    );
}

#[tokio::test]
async fn password_sign_ins_count_as_gotrue_counts_them_not_as_sign_ups() {
    let app = App::new(&["--rate-limit-otp", "2", "--rate-limit-token-refresh", "5"]).await;
    let session = app.sign_up("first@example.com").await;
    // Password grants and refreshes share GoTrue's token bucket...
    let (uri, body) = password_grant("first@example.com", "secret-pw-1");
    for _ in 0..4 {
        let r = app.call("POST", uri, None, body.clone()).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let refresh = session["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(refresh).await.status, 200);
    assert_request_limit(&app.call("POST", uri, None, body).await);
    // ...and leave the sign-up bucket alone: one sign-up of two is left.
    app.sign_up("second@example.com").await;
    let third = app
        .call(
            "POST",
            "/signup",
            None,
            json!({"email": "third@example.com", "password": "secret-pw-1"}),
        )
        .await;
    assert_request_limit(&third);
}

#[tokio::test]
async fn a_window_that_has_ended_starts_again() {
    let app = App::new(&["--rate-limit-verify", "1"]).await;
    let verify = json!({"type": "magiclink", "email": "v@example.com", "token": "123456"});
    let first = app.call("POST", "/verify", None, verify.clone()).await;
    assert_ne!(first.status, 429, "{}", first.body);
    assert_request_limit(&app.call("POST", "/verify", None, verify.clone()).await);
    // The window ends (as if five minutes had passed) on a fresh node, which remembers nothing.
    app.db
        .superuser()
        .await
        .execute(
            "update auth.craftbase_rate_limits set expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let b = app.second_node(&["--rate-limit-verify", "1"]);
    let again = b.call("POST", "/verify", None, verify).await;
    assert_ne!(again.status, 429, "{}", again.body);
    assert_eq!(
        app.count(
            "select max(hits)::bigint from auth.craftbase_rate_limits where expires_at > now()"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn mails_count_per_project_and_per_recipient_with_gotrues_answer() {
    let app = App::new(&[
        "--mailer-autoconfirm",
        "false",
        "--rate-limit-email-sent",
        "2/1h",
    ])
    .await;
    let b = app.second_node(&[
        "--mailer-autoconfirm",
        "false",
        "--rate-limit-email-sent",
        "2/1h",
    ]);
    let recover = |email: &str| json!({"email": email});
    assert_eq!(
        app.call("POST", "/recover", None, recover("a@example.com"))
            .await
            .status,
        200
    );
    assert_eq!(
        b.call("POST", "/recover", None, recover("b@example.com"))
            .await
            .status,
        200
    );
    // The project's two mails are spent, whichever node sends and to whom.
    let r = app
        .call("POST", "/recover", None, recover("c@example.com"))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error_code"], "over_email_send_rate_limit");
    assert_eq!(r.body["msg"], "Email rate limit exceeded");
}

#[tokio::test]
async fn smtp_max_frequency_spaces_the_mails_to_one_address() {
    let app = App::new(&["--smtp-max-frequency", "1m"]).await;
    let b = app.second_node(&["--smtp-max-frequency", "1m"]);
    let recover = |email: &str| json!({"email": email});
    let ok = app
        .call("POST", "/recover", None, recover("a@example.com"))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let soon = b
        .call("POST", "/recover", None, recover("A@example.com"))
        .await;
    assert_eq!(soon.status, 429, "{}", soon.body);
    assert_eq!(soon.body["error_code"], "over_email_send_rate_limit");
    let msg = soon.body["msg"].as_str().unwrap();
    assert!(
        msg == "For security purposes, you can only request this after 60 seconds."
            || msg == "For security purposes, you can only request this after 59 seconds.",
        "{msg}"
    );
    // Another address is not held up.
    let other = b
        .call("POST", "/recover", None, recover("b@example.com"))
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
}

fn sign_up_body(email: &str) -> Value {
    json!({"email": email, "password": "secret-pw-1"})
}

/// The standalone service runs behind a gateway, as GoTrue does: the peer is the gateway, and
/// with no `GOTRUE_RATE_LIMIT_HEADER` GoTrue applies no per-address limit (supabase-py's suite
/// relies on it). Per-account and project-wide counts still apply.
#[tokio::test]
async fn behind_a_gateway_that_names_no_client_per_address_limits_do_not_apply() {
    let app = App::new(&["--behind-gateway", "--rate-limit-otp", "2"]).await;
    for i in 0..4 {
        let r = app
            .call(
                "POST",
                "/signup",
                None,
                sign_up_body(&format!("g{i}@example.com")),
            )
            .await;
        assert_eq!(r.status, 200, "sign-up {i}: {}", r.body);
    }
    // The same flags without a gateway: the third sign-up from one peer is refused.
    let direct = App::new(&["--rate-limit-otp", "2"]).await;
    for i in 0..2 {
        let r = direct
            .call(
                "POST",
                "/signup",
                None,
                sign_up_body(&format!("d{i}@example.com")),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let third = direct
        .call("POST", "/signup", None, sign_up_body("d2@example.com"))
        .await;
    assert_request_limit(&third);
}

#[tokio::test]
async fn behind_a_gateway_the_rate_limit_header_names_the_client() {
    let app = App::new(&[
        "--behind-gateway",
        "--rate-limit-header",
        "X-Forwarded-For",
        "--rate-limit-otp",
        "2",
    ])
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for i in 0..2 {
        let body = sign_up_body(&format!("h{i}@example.com"));
        let r = app
            .call_with("POST", "/signup", &from("203.0.113.1"), body)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let body = sign_up_body("h2@example.com");
    let third = app
        .call_with("POST", "/signup", &from("203.0.113.1"), body)
        .await;
    assert_request_limit(&third);
    let body = sign_up_body("h3@example.com");
    let other = app
        .call_with("POST", "/signup", &from("203.0.113.2"), body)
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
}
