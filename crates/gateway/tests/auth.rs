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
