//! Bad input: clean 4xx answers in both error shapes, and nothing written.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use tower::ServiceExt;

use crate::support::App;

async fn nothing_written(app: &App) {
    for table in [
        "users",
        "identities",
        "sessions",
        "refresh_tokens",
        "one_time_tokens",
    ] {
        let n = app
            .count(&format!("select count(*) from auth.{table}"))
            .await;
        assert_eq!(n, 0, "auth.{table} has rows");
    }
}

#[tokio::test]
async fn malformed_missing_and_oversized_bodies_are_refused() {
    let app = App::new(&[]).await;
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        ("POST", "/signup", Some("{not json".into()), 400, "bad_json"),
        ("POST", "/signup", None, 400, "bad_json"),
        (
            "POST",
            "/signup",
            Some(r#"{"email": 5, "password": "x"}"#.into()),
            400,
            "bad_json",
        ),
        (
            "POST",
            "/signup",
            Some(r#"{"email": "a@b.c"}"#.into()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/signup",
            Some(r#"{"email": "not-an-email", "password": "secret-pw"}"#.into()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/signup",
            Some(format!(
                r#"{{"email":"a@b.c","password":"{}"}}"#,
                "x".repeat(100_000)
            )),
            413,
            "request_too_large",
        ),
        (
            "POST",
            "/token?grant_type=password",
            Some("[]".into()),
            400,
            "bad_json",
        ),
        (
            "POST",
            "/token?grant_type=password",
            Some(r#"{"email":"a@b.c"}"#.into()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/otp",
            Some(r#"{}"#.into()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/verify",
            Some(r#"{"type":"magiclink"}"#.into()),
            400,
            "validation_failed",
        ),
        (
            "POST",
            "/recover",
            Some(r#"{"email":""}"#.into()),
            400,
            "validation_failed",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let r = app.raw(method, uri, None, body.clone()).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{method} {uri} {:?}: {}",
            body.map(|b| b.chars().take(60).collect::<String>()),
            r.body
        );
        assert_eq!(r.body["error_code"], code, "{method} {uri}: {}", r.body);
        assert_eq!(r.body["code"], status);
    }
    nothing_written(&app).await;
}

#[tokio::test]
async fn the_versioned_shape_is_used_when_the_client_asks() {
    let app = App::new(&[]).await;
    let req = Request::builder()
        .method("POST")
        .uri("/token?grant_type=password")
        .header("content-type", "application/json")
        .header("x-supabase-api-version", "2024-01-01")
        .body(Body::from(
            json!({"email": "x@y.z", "password": "whatever"}).to_string(),
        ))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["x-supabase-api-version"], "2024-01-01");
    assert_eq!(res.headers()["x-sb-error-code"], "invalid_credentials");
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"code": "invalid_credentials", "message": "Invalid login credentials"})
    );
}

#[tokio::test]
async fn user_routes_need_a_user_token_and_admin_routes_an_admin() {
    let app = App::new(&[]).await;
    let r = app.raw("GET", "/user", None, None).await;
    assert_eq!(r.status, 403, "the anon key has no user: {}", r.body);
    assert_eq!(r.body["error_code"], "bad_jwt");
    let r = app.raw("GET", "/user", Some("garbage"), None).await;
    assert_eq!(r.status, 403);
    let r = app.raw("GET", "/admin/users", None, None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error_code"], "not_admin");
    let session = app.sign_up("plain@example.com").await;
    let r = app
        .raw(
            "GET",
            "/admin/users",
            session["access_token"].as_str(),
            None,
        )
        .await;
    assert_eq!(r.body["error_code"], "not_admin");
    let key = app.keys.service_role_key.clone();
    let r = app.raw("GET", "/admin/users", Some(&key), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-total-count"], "1");
    let r = app
        .call("PUT", "/admin/users/not-a-uuid", Some(&key), json!({}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "user_not_found");
}

/// Row counts of every table a request could write.
async fn snapshot(app: &App) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "identities",
        "sessions",
        "refresh_tokens",
        "one_time_tokens",
        "flow_state",
        "mfa_amr_claims",
    ] {
        counts.push(
            app.count(&format!("select count(*) from auth.{table}"))
                .await,
        );
    }
    counts.push(
        app.count("select count(*) from auth.users where raw_user_meta_data <> '{}' or email_change <> ''")
            .await,
    );
    counts
}

#[tokio::test]
async fn every_endpoint_answers_bad_input_with_a_4xx_and_writes_nothing() {
    let app = App::new(&[]).await;
    let session = app.sign_up("someone@example.com").await;
    let user_token = session["access_token"].as_str().unwrap().to_owned();
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let admin = app.keys.service_role_key.clone();
    let before = snapshot(&app).await;
    let long = "x".repeat(70_000);
    let cases: Vec<(&str, String, Option<&str>, String)> = vec![
        ("POST", "/signup".into(), None, r#"{"email":"a@b.c","password":"secret-pw","data":"not an object"}"#.into()),
        ("POST", "/signup".into(), None, r#"{"phone":"+15550100","password":"secret-pw"}"#.into()),
        ("POST", "/signup".into(), None, r#"{"email":"new@b.c","password":"secret-pw","code_challenge":"short","code_challenge_method":"s256"}"#.into()),
        ("POST", "/token?grant_type=password".into(), None, r#"{"email":"someone@example.com","password":""}"#.into()),
        ("POST", "/token?grant_type=refresh_token".into(), None, r#"{"refresh_token":42}"#.into()),
        ("POST", "/token?grant_type=pkce".into(), None, r#"{"auth_code":"x"}"#.into()),
        ("POST", "/token?grant_type=pkce".into(), None, r#"{"auth_code":"x","code_verifier":"y"}"#.into()),
        ("POST", "/token?grant_type=magic".into(), None, "{}".into()),
        ("POST", "/token".into(), None, "{".into()),
        ("PUT", "/user".into(), Some(&user_token), r#"{"data":[1,2]}"#.into()),
        ("PUT", "/user".into(), Some(&user_token), r#"{"password":"123","data":{"a":1}}"#.into()),
        ("PUT", "/user".into(), Some(&user_token), r#"{"email":"nope","data":{"a":1}}"#.into()),
        ("PUT", "/user".into(), Some(&user_token), long.clone()),
        ("POST", "/logout?scope=everything".into(), Some(&user_token), String::new()),
        ("POST", "/otp".into(), None, r#"{"email":"x@y.z","create_user":"yes"}"#.into()),
        ("POST", "/otp".into(), None, r#"{"email":"fresh@y.z","create_user":false}"#.into()),
        ("POST", "/verify".into(), None, r#"{"type":"signup","email":"someone@example.com","token":"123456"}"#.into()),
        ("POST", "/verify".into(), None, r#"{"type":"teleport","token_hash":"abc"}"#.into()),
        ("POST", "/recover".into(), None, "null".into()),
        ("POST", "/resend".into(), None, r#"{"type":"sms","email":"someone@example.com"}"#.into()),
        ("POST", "/invite".into(), Some(&admin), r#"{"data":{}}"#.into()),
        ("POST", "/invite".into(), Some(&admin), r#"{"email":"someone@example.com"}"#.into()),
        ("POST", "/admin/users".into(), Some(&admin), r#"{"email":"someone@example.com","password":"secret-pw"}"#.into()),
        ("POST", "/admin/users".into(), Some(&admin), r#"{"email":"z@y.x","password_hash":"md5:abc"}"#.into()),
        ("POST", "/admin/users".into(), Some(&admin), r#"{"email":"z@y.x","ban_duration":"forever"}"#.into()),
        ("PUT", format!("/admin/users/{user_id}"), Some(&admin), r#"{"user_metadata":{"a":1},"password":"1"}"#.into()),
        ("PUT", format!("/admin/users/{user_id}"), Some(&admin), r#"{"user_metadata":"x"}"#.into()),
        ("DELETE", format!("/admin/users/{user_id}"), Some(&admin), r#"{"should_soft_delete":"maybe"}"#.into()),
        ("DELETE", "/admin/users/00000000-0000-0000-0000-000000000001".into(), Some(&admin), String::new()),
        ("POST", "/admin/generate_link".into(), Some(&admin), r#"{"type":"signup","email":"q@r.s"}"#.into()),
        ("POST", "/admin/generate_link".into(), Some(&admin), r#"{"type":"wormhole","email":"q@r.s"}"#.into()),
        ("POST", "/admin/generate_link".into(), Some(&admin), r#"{"type":"recovery","email":"ghost@r.s"}"#.into()),
        ("GET", "/nowhere".into(), None, String::new()),
    ];
    for (method, uri, bearer, body) in cases {
        let shown: String = body.chars().take(80).collect();
        let body = (!body.is_empty()).then_some(body);
        let r = app.raw(method, &uri, bearer, body).await;
        assert!(
            r.status.is_client_error(),
            "{method} {uri} {shown}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body["error_code"].is_string() || r.body["error"].is_string(),
            "{method} {uri}: {}",
            r.body
        );
        assert_eq!(
            snapshot(&app).await,
            before,
            "{method} {uri} {shown} wrote something"
        );
    }
}
