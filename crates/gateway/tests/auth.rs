//! JWT abuse is refused with 401 before any SQL runs.

use craftbase_shared::keys;

use crate::support::{now, Api, ALICE, SECRET};

#[tokio::test]
async fn bad_tokens_are_refused_and_run_nothing() {
    let api = Api::new().await;
    api.sql("create table public.audit (n int); grant all on public.audit to anon, authenticated, service_role, authenticator; notify pgrst, 'reload schema';").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let sign = |secret: &str, claims: serde_json::Value| keys::sign(secret, &claims).unwrap();
    let alg_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.";
    let cases = [
        (alg_none.to_owned(), "PGRST301"),
        (
            sign(
                "another-secret-another-secret-another-secret",
                serde_json::json!({"role": "service_role"}),
            ),
            "PGRST301",
        ),
        (
            sign(
                SECRET,
                serde_json::json!({"role": "authenticated", "sub": ALICE, "exp": now() - 120}),
            ),
            "PGRST303",
        ),
        (
            sign(
                SECRET,
                serde_json::json!({"role": "authenticated", "sub": ALICE, "nbf": now() + 600}),
            ),
            "PGRST303",
        ),
        (
            sign(SECRET, serde_json::json!({"role": "postgres"})),
            "42501",
        ),
        ("not-a-jwt".to_owned(), "PGRST301"),
        ("a.b.c".to_owned(), "PGRST301"),
    ];
    for (token, code) in cases {
        let r = api
            .call("POST", "/audit", Some(&token), &[], Some(r#"{"n":1}"#))
            .await;
        assert_eq!(r.status, 401, "{token}: {}", r.body);
        assert_eq!(r.json()["code"], code, "{token}");
        assert!(r.header("www-authenticate").starts_with("Bearer"));
    }
    let r = api.call("GET", "/audit", Some(""), &[], None).await;
    assert_eq!(r.status, 401);
    let rows = api
        .db
        .superuser()
        .await
        .query("select count(*) from public.audit", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0);
    // Anonymous reads of a table it may read but not write.
    let r = api
        .call(
            "POST",
            "/connectors",
            None,
            &[],
            Some(r#"{"name":"x","slug":"x"}"#),
        )
        .await;
    assert_eq!(r.error(), (401, "42501".into()));
}

/// `PGRST_DB_ANON_ROLE` unset: a request without a token (only reachable behind the edge's
/// apikey gate, which always adds one, when the gateway runs on its own) is 401 PGRST302, as
/// PostgREST; with it set, such a request runs as that role.
#[tokio::test]
async fn requests_without_a_token_need_an_anon_role() {
    let api = Api::with_config(craftbase_gateway::GatewayConfig {
        anon_role: None,
        ..craftbase_gateway::GatewayConfig::default()
    })
    .await;
    let r = api.get("/connectors?select=slug&limit=1", None).await;
    assert_eq!(r.error(), (401, "PGRST302".into()), "{}", r.body);
    assert_eq!(r.json()["message"], "Anonymous access is disabled");
    assert_eq!(r.header("www-authenticate"), "Bearer");
    let api = Api::with_config(craftbase_gateway::GatewayConfig {
        anon_role: Some("authenticated".into()),
        ..craftbase_gateway::GatewayConfig::default()
    })
    .await;
    api.sql("create function public.whoami() returns text language sql as $$ select current_user::text $$; notify pgrst, 'reload schema';").await;
    api.wait_for("/rpc/whoami", None).await;
    let r = api.get("/rpc/whoami", None).await;
    assert_eq!(r.json(), serde_json::json!("authenticated"), "{}", r.body);
}
