//! Asymmetric signing: ES256 access tokens with a `kid`, published in the JWKS.

use base64::Engine;

use crate::support::App;

/// A P-256 key made for these tests (Node's crypto.generateKeyPairSync, exported as JWK).
const KEYS: &str = r#"[{"kty":"EC","kid":"auth-test","crv":"P-256","x":"fFUu02VEGhIi4LAwpYU7QiinMAtDynaQoJyaMSWx5Fo","y":"aJo527ZWOT86g8KnlbimmiZt4ofNvmwQzJxCKOkMdXM","d":"iuV7I28zTMsDyN0P3G0su2yGLfWgNw-ZXhC35W7hRt0"}]"#;

fn header(token: &str) -> serde_json::Value {
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn configured_ec_keys_sign_es256_tokens_listed_in_the_jwks() {
    let app = App::new(&["--jwt-keys", KEYS]).await;
    let session = app.sign_up("es256@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let h = header(access);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], "auth-test");
    let me = app.raw("GET", "/user", Some(access), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["email"], "es256@example.com");

    let jwks = app.raw("GET", "/.well-known/jwks.json", None, None).await;
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "auth-test");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["key_ops"], serde_json::json!(["verify"]));
    assert!(
        keys[0].get("d").is_none(),
        "the private part is never published"
    );

    // Refreshed tokens are signed the same way.
    let refreshed = app
        .refresh(session["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        header(refreshed.body["access_token"].as_str().unwrap())["alg"],
        "ES256"
    );
}

#[tokio::test]
async fn without_keys_tokens_are_hs256_and_the_jwks_is_empty() {
    let app = App::new(&[]).await;
    let session = app.sign_up("hs256@example.com").await;
    assert_eq!(
        header(session["access_token"].as_str().unwrap())["alg"],
        "HS256"
    );
    let jwks = app.raw("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(jwks.body, serde_json::json!({"keys": []}));
}
