//! craftbase as an OAuth 2.1 server: admin clients, the authorization request, consent, the
//! code exchange with PKCE, grants, and GoTrue's refusals along the way.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::App;

const ON: &[&str] = &[
    "--oauth-server-enabled",
    "true",
    "--oauth-server-authorization-path",
    "/oauth/consent",
];
const REDIRECT: &str = "http://localhost:4000/callback";
const VERIFIER: &str = "a-code-verifier-that-is-long-enough-to-be-valid-0123456789";

fn challenge() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Registers a client; answers its JSON (with the secret when confidential).
async fn client(app: &App, body: Value) -> Value {
    let admin = app.keys.service_role_key.clone();
    let r = app
        .call("POST", "/admin/oauth/clients", Some(&admin), body)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

/// `/oauth/authorize` for `client_id`; answers the authorization id from the consent redirect.
async fn authorize(app: &App, client_id: &str, scope: &str) -> String {
    let uri = format!(
        "/oauth/authorize?client_id={client_id}&redirect_uri={REDIRECT}&response_type=code\
         &scope={scope}&state=st4te&nonce=n0nce&code_challenge={}&code_challenge_method=S256",
        challenge()
    );
    let r = app.raw("GET", &uri, None, None).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap();
    assert!(
        location.starts_with("http://localhost:3000/oauth/consent?authorization_id="),
        "{location}"
    );
    query(location)["authorization_id"].clone()
}

#[tokio::test]
async fn code_flow_with_pkce_consent_grants_and_revocation() {
    let app = App::new(ON).await;
    let c = client(
        &app,
        json!({"redirect_uris": [REDIRECT], "client_name": "Third App",
               "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(c["client_type"], "confidential");
    assert_eq!(
        c["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let (client_id, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let session = app.sign_up("owner@example.com").await;
    let user_token = session["access_token"].as_str().unwrap().to_owned();

    let id = authorize(&app, &client_id, "email").await;
    let details = app
        .call(
            "GET",
            &format!("/oauth/authorizations/{id}"),
            Some(&user_token),
            Value::Null,
        )
        .await;
    assert_eq!(details.status, 200, "{}", details.body);
    assert_eq!(details.body["client"]["name"], "Third App");
    assert_eq!(details.body["user"]["email"], "owner@example.com");
    assert_eq!(details.body["scope"], "email");

    let approved = app
        .call(
            "POST",
            &format!("/oauth/authorizations/{id}/consent"),
            Some(&user_token),
            json!({"action": "approve"}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let back = query(approved.body["redirect_url"].as_str().unwrap());
    assert_eq!(back["state"], "st4te");
    let code = back["code"].clone();

    let exchange = |verifier: &'static str, secret: String, code: String| {
        app.call(
            "POST",
            "/oauth/token",
            None,
            json!({"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                   "redirect_uri": REDIRECT, "client_id": client_id, "client_secret": secret}),
        )
    };
    let wrong = exchange(VERIFIER, "not-the-secret".into(), code.clone()).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["error_code"], "invalid_credentials");
    let bad_pkce = exchange(
        "another-verifier-of-sufficient-length-0123456789abc",
        secret.clone(),
        code.clone(),
    )
    .await;
    assert_eq!(bad_pkce.body["error"], "invalid_grant");
    assert_eq!(
        bad_pkce.body["error_description"],
        "PKCE verification failed: code challenge does not match previously saved code verifier"
    );
    let tokens = exchange(VERIFIER, secret.clone(), code.clone()).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.body["token_type"], "bearer");
    assert!(tokens.body["refresh_token"].as_str().is_some());
    let me = app
        .call(
            "GET",
            "/user",
            tokens.body["access_token"].as_str(),
            Value::Null,
        )
        .await;
    assert_eq!(me.body["email"], "owner@example.com");
    let again = exchange(VERIFIER, secret.clone(), code).await;
    assert_eq!(
        again.body["error_description"],
        "Invalid authorization code"
    );

    let refreshed = app
        .call(
            "POST",
            "/oauth/token",
            None,
            json!({"grant_type": "refresh_token", "refresh_token": tokens.body["refresh_token"],
                   "client_id": client_id, "client_secret": secret}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);

    // The consent stands: the next request is approved as soon as the user opens it.
    let id = authorize(&app, &client_id, "email").await;
    let auto = app
        .call(
            "GET",
            &format!("/oauth/authorizations/{id}"),
            Some(&user_token),
            Value::Null,
        )
        .await;
    assert!(
        auto.body["redirect_url"]
            .as_str()
            .unwrap()
            .contains("code="),
        "{}",
        auto.body
    );

    let grants = app
        .call("GET", "/user/oauth/grants", Some(&user_token), Value::Null)
        .await;
    assert_eq!(grants.body[0]["client"]["id"], client_id.as_str());
    assert_eq!(grants.body[0]["scopes"], json!(["email"]));
    let revoked = app
        .raw(
            "DELETE",
            &format!("/user/oauth/grants?client_id={client_id}"),
            Some(&user_token),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        app.count("select count(*) from auth.sessions where oauth_client_id is not null")
            .await,
        0
    );
    let none = app
        .raw(
            "DELETE",
            &format!("/user/oauth/grants?client_id={client_id}"),
            Some(&user_token),
            None,
        )
        .await;
    assert_eq!(none.status, 404);
    assert_eq!(none.body["error_code"], "oauth_consent_not_found");

    // Denied: back to the client with access_denied.
    let id = authorize(&app, &client_id, "email").await;
    app.call(
        "GET",
        &format!("/oauth/authorizations/{id}"),
        Some(&user_token),
        Value::Null,
    )
    .await;
    let denied = app
        .call(
            "POST",
            &format!("/oauth/authorizations/{id}/consent"),
            Some(&user_token),
            json!({"action": "deny"}),
        )
        .await;
    let back = query(denied.body["redirect_url"].as_str().unwrap());
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "st4te");
}

#[tokio::test]
async fn authorize_refusals_and_admin_client_management() {
    let app = App::new(ON).await;
    let admin = app.keys.service_role_key.clone();
    let public = client(
        &app,
        json!({"redirect_uris": [REDIRECT], "client_type": "public"}),
    )
    .await;
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert!(public.get("client_secret").is_none());
    let id = public["client_id"].as_str().unwrap().to_owned();

    let r = app
        .call(
            "POST",
            "/admin/oauth/clients",
            Some(&admin),
            json!({"redirect_uris": ["http://evil.example.com/cb"]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["msg"],
        "invalid redirect_uri 'http://evil.example.com/cb': HTTP scheme only allowed for localhost"
    );

    let r = app
        .raw(
            "GET",
            &format!("/oauth/authorize?client_id={id}&redirect_uri=http://localhost:9/x"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["msg"], "invalid redirect_uri");
    let r = app
        .raw(
            "GET",
            "/oauth/authorize?client_id=nope&redirect_uri=x",
            None,
            None,
        )
        .await;
    assert_eq!(r.body["error_code"], "oauth_client_not_found");
    let r = app
        .raw(
            "GET",
            &format!("/oauth/authorize?client_id={id}&redirect_uri={REDIRECT}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 302);
    let back = query(r.headers["location"].to_str().unwrap());
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(
        back["error_description"],
        "PKCE flow requires both code_challenge and code_challenge_method"
    );

    let updated = app
        .call(
            "PUT",
            &format!("/admin/oauth/clients/{id}"),
            Some(&admin),
            json!({"client_name": "Renamed"}),
        )
        .await;
    assert_eq!(updated.body["client_name"], "Renamed");
    let regen = app
        .call(
            "POST",
            &format!("/admin/oauth/clients/{id}/regenerate_secret"),
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(
        regen.body["msg"],
        "Cannot regenerate secret for public client"
    );
    let list = app
        .call("GET", "/admin/oauth/clients", Some(&admin), Value::Null)
        .await;
    assert_eq!(list.body["clients"].as_array().unwrap().len(), 1);
    let gone = app
        .raw(
            "DELETE",
            &format!("/admin/oauth/clients/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(gone.status, 204);
    let missing = app
        .call(
            "GET",
            &format!("/admin/oauth/clients/{id}"),
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error_code"], "oauth_client_not_found");

    let r = app
        .call(
            "POST",
            "/oauth/clients/register",
            None,
            json!({"redirect_uris": [REDIRECT]}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body["error_code"],
        "oauth_dynamic_client_registration_disabled"
    );
    let doc = app
        .call(
            "GET",
            "/.well-known/oauth-authorization-server",
            None,
            Value::Null,
        )
        .await;
    assert_eq!(doc.body["issuer"], "http://127.0.0.1:54321/auth/v1");
    assert_eq!(
        doc.body["token_endpoint"],
        "http://127.0.0.1:54321/auth/v1/oauth/token"
    );
    assert!(doc.body.get("registration_endpoint").is_none());

    let dynamic = App::new(&[
        "--oauth-server-enabled",
        "true",
        "--oauth-server-allow-dynamic-registration",
        "true",
    ])
    .await;
    let r = dynamic
        .call(
            "POST",
            "/oauth/clients/register",
            None,
            json!({"redirect_uris": [REDIRECT], "client_name": "Self"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["registration_type"], "dynamic");
    assert!(r.body["client_secret"].as_str().is_some());

    let off = App::new(&[]).await;
    let r = off
        .call(
            "GET",
            "/.well-known/oauth-authorization-server",
            None,
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = off
        .raw(
            "GET",
            "/oauth/authorize?client_id=x&redirect_uri=y",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "feature_disabled");
    assert_eq!(r.body["msg"], "OAuth server is disabled");
}

/// Runs the flow up to the code exchange for `scope`; answers the token endpoint's reply.
async fn exchange_for(app: &App, scope: &str) -> (crate::support::Reply, String) {
    let c = client(
        app,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let client_id = c["client_id"].as_str().unwrap().to_owned();
    let session = app.sign_up("idt@example.com").await;
    let user_token = session["access_token"].as_str().unwrap().to_owned();
    let id = authorize(app, &client_id, scope).await;
    app.call(
        "GET",
        &format!("/oauth/authorizations/{id}"),
        Some(&user_token),
        Value::Null,
    )
    .await;
    let approved = app
        .call(
            "POST",
            &format!("/oauth/authorizations/{id}/consent"),
            Some(&user_token),
            json!({"action": "approve"}),
        )
        .await;
    let code = query(approved.body["redirect_url"].as_str().unwrap())["code"].clone();
    let r = app
        .call(
            "POST",
            "/oauth/token",
            None,
            json!({"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER,
                   "redirect_uri": REDIRECT, "client_id": client_id,
                   "client_secret": c["client_secret"]}),
        )
        .await;
    (r, client_id)
}

#[tokio::test]
async fn openid_scope_gets_an_id_token_signed_with_the_asymmetric_key() {
    let mut flags = ON.to_vec();
    flags.extend(["--jwt-keys", crate::signing::KEYS]);
    let app = App::new(&flags).await;
    let (r, client_id) = exchange_for(&app, "openid%20email%20profile").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["id_token"].as_str().unwrap();
    let part = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], json!([client_id]));
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["email"], "idt@example.com");
    assert_eq!(claims["name"], "idt@example.com");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");

    // With HS256 tokens GoTrue cannot sign an ID token, and the exchange fails.
    let hs = App::new(ON).await;
    let (r, _) = exchange_for(&hs, "openid").await;
    assert_eq!(r.status, 500);
}
