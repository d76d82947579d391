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
