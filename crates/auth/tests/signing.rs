//! Asymmetric signing: ES256 access tokens with a `kid`, published in the JWKS.

use base64::Engine;

use crate::support::App;

/// A P-256 key made for these tests (Node's crypto.generateKeyPairSync, exported as JWK).
pub const KEYS: &str = r#"[{"kty":"EC","kid":"auth-test","crv":"P-256","x":"fFUu02VEGhIi4LAwpYU7QiinMAtDynaQoJyaMSWx5Fo","y":"aJo527ZWOT86g8KnlbimmiZt4ofNvmwQzJxCKOkMdXM","d":"iuV7I28zTMsDyN0P3G0su2yGLfWgNw-ZXhC35W7hRt0"}]"#;

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

/// A 2048-bit RSA key made for these tests (Node's crypto.generateKeyPairSync, exported as JWK),
/// marked as Supabase's signing keys are, listed after a public-only EC key being rotated out.
const RSA_KEYS: &str = r#"[{"kty":"EC","kid":"old-ec","crv":"P-256","x":"fFUu02VEGhIi4LAwpYU7QiinMAtDynaQoJyaMSWx5Fo","y":"aJo527ZWOT86g8KnlbimmiZt4ofNvmwQzJxCKOkMdXM","key_ops":["verify"]},{"kty":"RSA","n":"291mG5P0Z3tVL1UDY5V2iENkr9Jjqs48JXapeopSW_6GAF_KZbaXR_lnqeNVQD3rGO1ij7MwFt6ALES1x3sOnLgD48AKphlT7YvSezgnOQIqcUXEv2OUrmVycujY74hAs-ewzYiXaAFMhwwWl_goaLjaWLzyiipNglvFaeBqszZGHohGa_9bIWhHkDNU3STwb6PH32A4dJR4yfcZOxvJ7RBr4Ir1q3E1-G0X-21-cVviDfaOsFz6nlowEt7FedoO0lHPsOqYKTj9SP-kVOvzlEPMhpCOU25JBSdFQ7hi0fyCo01wSauB5qhRToRzZQU6rqmcMaHx_zrg-rSyX1jEjw","e":"AQAB","d":"EGNnWgTkQdZimh2XHBQm-q8zURu4jCHFP_GhXl3zF6JYMKzzNDOxAQ9pF7O3RguXe4suPpHXssyw9xvEBPN6OlpJB-_nm0vmAp3aeY7M9aXgrgLKUI3Gpl0vc7tBeFFKqV5Kwnc8-eam4qYXBQrdUDj_JYAn__55Oo9Gnsa4jVUJ7o-z-9ObiuMIbnTr3Jn2RGxi-oe5-Qc-9vYMQo6IpGri0r9JedGxC46HveNYW9lMfvsDVG_G9wccKZg0SaHHexUaVNe3EPATYRK3zUHvgeYgVlnbx7UsVktkHeKmm0bYmPhwlI2p2KjEjRi2MjWR2bnTKoZxV64V4qJ57aEKeQ","p":"9ipq5rrO5bt1NC1p8dCCGSuSkbjcp-9QXU6qG9lVdk6fpfC_EncqeZLliIFTP5jnmgpxnlI2GcNPMnzOj-g-fk9ngyvRK6YDCRO6kqCgdsWpo8e01yBub8RynO2Ly3oEWDO2bYmREQJpMuFrhpWXrAPzKyJ6rRLhmlStI2d16Ts","q":"5KX_XpBaQjmINGAl3ZkXcxlgAhBcp0b_P0N9CKt3p-Oj6H20Sx5PSPywUO98Y0HOjr8NH8VifpsawS2nFyE_RddPQyRot8jnA9ErqLzZx8Fc4oy_npdpE4DCXb_V4xK33vtaWVMI-BSVoQb_fj06uJNbXem0PxmNVlUYxTPJfL0","dp":"HMK99LE0xSCOxAbeTvNmj9xIZqArn69VO2GafGB7HLR48KFdIaIso0GncbhyaobJ4HSB69Z9Hat1EFgGpkejLYzHckrnSGtABYp5jPIZbWcQt-L4XP4cCRDxtyYF5EMgSNHZ6ZheC5e1hM1Ti8jkjKN1gL-ph5kiJK7p_63x18s","dq":"Im2MQiTiMk6PX7OKgA9pJH-RoT3tdZKPJGt5DDElVzZDm-Ixn430yjyiH82voRJrk7rYswv5hK6-HJBPNIBhEpcU7DszOVkaz8xTEpk9AYLwBXzD7ZFG1RTyL0OPZR2QahbWx9Rk6VXQIer31X5KtTga7c0ewtGKIpG1pRvjHtE","qi":"ZqUUwSE9HdfdmkKKbRj6SXgaaDd_OFi2lYcIvzu44fgZ2Mc0Tzt4NTASE3CVnWT49CCOkPJWzHCMbzTVdalmh6zqfwq6hUjiYAfbSFFTChqD6pypPRrM94TwlZbAJVvW2uS-lVH-e5HMyodc3UXhDqz_DMwmnbk5G_QeLd5U4rQ","kid":"rsa-test","alg":"RS256","key_ops":["sign","verify"],"use":"sig"}]"#;

#[tokio::test]
async fn configured_rsa_key_signs_rs256_tokens_and_the_jwks_lists_public_halves() {
    let app = App::new(&["--jwt-keys", RSA_KEYS]).await;
    let session = app.sign_up("rs256@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let h = header(access);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["kid"], "rsa-test");
    // The shared verifier (the gateway's and realtime's) accepts it.
    let me = app.raw("GET", "/user", Some(access), None).await;
    assert_eq!(me.status, 200, "{}", me.body);

    let jwks = app.raw("GET", "/.well-known/jwks.json", None, None).await;
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kid"], "old-ec");
    assert_eq!(keys[1]["kid"], "rsa-test");
    assert_eq!(keys[1]["alg"], "RS256");
    assert_eq!(keys[1]["kty"], "RSA");
    assert_eq!(keys[1]["key_ops"], serde_json::json!(["verify"]));
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            keys[1].get(private).is_none(),
            "{private} is never published"
        );
    }
}

/// `GOTRUE_JWT_KEYS` with an HMAC key marked `sign` and an RSA key (private half included)
/// marked `verify` only, as supabase-py's suite configures it: the HMAC key signs (HS256 with
/// its kid), never the verify-only RSA key; the JWKS lists the RSA key and never the HMAC one.
#[tokio::test]
async fn the_key_marked_sign_signs_even_when_it_is_hmac_and_a_verify_only_rsa_key_never_does() {
    let mut list: Vec<serde_json::Value> = serde_json::from_str(RSA_KEYS).unwrap();
    let mut rsa = list.remove(1);
    rsa["key_ops"] = serde_json::json!(["verify"]);
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(b"an-hmac-signing-key-of-32-bytes-or-more-0123456789");
    let oct = serde_json::json!({"kty": "oct", "kid": "hs-sign", "k": k, "alg": "HS256",
        "key_ops": ["sign", "verify"]});
    // App takes 'static flags; a test's key list lives as long as the test binary anyway.
    let keys: &'static str = Box::leak(serde_json::json!([rsa, oct]).to_string().into_boxed_str());
    let app = App::new(&["--jwt-keys", keys]).await;
    let session = app.sign_up("hs-sign@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let h = header(access);
    assert_eq!(h["alg"], "HS256");
    assert_eq!(h["kid"], "hs-sign");
    let me = app.raw("GET", "/user", Some(access), None).await;
    assert_eq!(me.status, 200, "{}", me.body);

    let jwks = app.raw("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(
        jwks.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=600")
    );
    let published = jwks.body["keys"].as_array().unwrap();
    assert_eq!(published.len(), 1, "{}", jwks.body);
    assert_eq!(published[0]["kid"], "rsa-test");
    assert!(published[0].get("k").is_none());
}

/// Without any key marked `sign`, a private key marked `verify` only still never signs.
#[tokio::test]
async fn a_verify_only_private_key_does_not_sign() {
    let mut list: Vec<serde_json::Value> = serde_json::from_str(RSA_KEYS).unwrap();
    let mut rsa = list.remove(1);
    rsa["key_ops"] = serde_json::json!(["verify"]);
    let keys: &'static str = Box::leak(serde_json::json!([rsa]).to_string().into_boxed_str());
    let app = App::new(&["--jwt-keys", keys]).await;
    let session = app.sign_up("verify-only@example.com").await;
    assert_eq!(
        header(session["access_token"].as_str().unwrap())["alg"],
        "HS256"
    );
}
