//! The gate in front of the services: apikey, CORS, request ids, open routes.

use craftbase_shared::keys::{mint_api_key, sign};

use crate::support::{connect_url, example, reachable_tempdir, Craftbase};

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_forged_apikeys_get_401_json_and_change_nothing() {
    let tmp = reachable_tempdir();
    let cb = Craftbase::start(&tmp.path().join("data"), &example()).await;
    let status = cb.status();
    let http = reqwest::Client::new();
    let db = connect_url(&status.db_url).await;
    let count = || async {
        db.query_one("select count(*) from public.connectors", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count().await, 8);

    let forged = mint_api_key(
        "not-the-secret-not-the-secret-not-the-secret",
        "service_role",
        1_700_000_000,
    )
    .unwrap();
    let expired = sign(
        &status.jwt_secret,
        &serde_json::json!({"role": "anon", "exp": 1_000}),
    )
    .unwrap();
    let user_token = sign(
        &status.jwt_secret,
        &serde_json::json!({"role": "authenticated", "exp": 4_000_000_000u64}),
    )
    .unwrap();
    for path in [
        "/rest/v1/connectors",
        "/auth/v1/settings",
        "/realtime/v1/api/broadcast",
    ] {
        let resp = http
            .post(cb.url(path))
            .json(&serde_json::json!({"name": "x", "slug": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": "No API key found in request"})
        );

        for bad in [
            forged.as_str(),
            expired.as_str(),
            user_token.as_str(),
            "garbage",
        ] {
            let resp = http
                .post(cb.url(path))
                .header("apikey", bad)
                .header(
                    "authorization",
                    format!("Bearer {}", status.service_role_key),
                )
                .json(&serde_json::json!({"name": "x", "slug": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "{path} with {bad}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(
                body,
                serde_json::json!({"message": "Invalid authentication credentials"})
            );
        }
    }
    // The websocket form: ?apikey= is read too.
    let resp = http
        .get(cb.url(&format!("/realtime/v1/websocket?apikey={forged}&vsn=1.0.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(count().await, 8);

    // PostgREST's root is written with a trailing slash; it routes like the path without one.
    let resp = http
        .get(cb.url("/rest/v1/"))
        .header("apikey", &status.anon_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openapi+json"));

    // The real keys pass the gate.
    for key in [&status.anon_key, &status.service_role_key] {
        let resp = http
            .get(cb.url("/rest/v1/connectors"))
            .header("apikey", key)
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 401);
        assert!(resp.headers().contains_key("x-request-id"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_preflight_open_routes_and_health_need_no_key() {
    let tmp = reachable_tempdir();
    let cb = Craftbase::start(&tmp.path().join("data"), &example()).await;
    let http = reqwest::Client::new();

    let resp = http
        .request(reqwest::Method::OPTIONS, cb.url("/rest/v1/connectors"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "apikey,authorization,prefer,content-profile,x-client-info",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let allowed = resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for h in [
        "apikey",
        "authorization",
        "prefer",
        "content-profile",
        "x-client-info",
        "baggage",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");

    let resp = http
        .get(cb.url("/health"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for h in [
        "content-range",
        "x-total-count",
        "location",
        "preference-applied",
    ] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    assert!(resp.headers().contains_key("x-request-id"));

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Browsers reach the first four through redirects, third-party OAuth clients the rest; the
    // service may still refuse a request (the OAuth server is off here), but not the gate.
    for (post, open) in [
        (false, "/auth/v1/verify"),
        (false, "/auth/v1/callback"),
        (false, "/auth/v1/authorize"),
        (false, "/auth/v1/.well-known/jwks.json"),
        (false, "/auth/v1/oauth/authorize"),
        (false, "/auth/v1/oauth/userinfo"),
        (false, "/auth/v1/.well-known/openid-configuration"),
        (false, "/auth/v1/.well-known/oauth-authorization-server"),
        (true, "/auth/v1/oauth/token"),
        (true, "/auth/v1/oauth/clients/register"),
    ] {
        let request = if post {
            no_redirects.post(cb.url(open))
        } else {
            no_redirects.get(cb.url(open))
        };
        let body = request.send().await.unwrap().text().await.unwrap();
        assert!(
            !body.contains("No API key found"),
            "{open} must be open: {body}"
        );
    }
}
