//! `/admin/custom-providers`: GoTrue's checks, the CRUD round trip, and a registered provider
//! signing a user in through `/authorize` and `/callback` against a local stand-in provider.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::support::App;

const LOCAL: &[&str] = &["--allow-local-provider-urls", "true"];

/// The form bodies the stand-in's token endpoint received.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A provider on a loopback port: discovery, token and userinfo endpoints. Returns its base URL
/// and what its token endpoint was sent.
async fn stand_in_provider() -> (String, Seen) {
    let seen: Seen = Default::default();
    let recorder = seen.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
    });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(doc) }),
        )
        .route(
            "/token",
            post(move |body: String| async move {
                recorder.lock().unwrap().push(body);
                Json(json!({"access_token": "upstream-token", "token_type": "bearer"}))
            }),
        )
        .route(
            "/userinfo",
            get(|| async {
                Json(json!({"id": 7, "email": "Custom@Example.com", "email_verified": true, "name": "Cus Tom"}))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn admin_checks_match_gotrue() {
    let app = App::new(&[]).await;
    let admin = app.keys.service_role_key.clone();
    let create = |body: Value| app.call("POST", "/admin/custom-providers", Some(&admin), body);

    let r = create(json!({"provider_type": "saml"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["msg"],
        "provider_type must be either 'oauth2' or 'oidc'"
    );

    let r = create(json!({"provider_type": "oauth2", "identifier": "acme"})).await;
    assert_eq!(
        r.body["msg"],
        "identifier must start with 'custom:' prefix, e.g. 'custom:acme'"
    );

    let base = json!({
        "provider_type": "oauth2", "identifier": "custom:acme", "name": "Acme",
        "client_id": "id", "client_secret": "secret",
        "authorization_url": "http://auth.example.com/a",
        "token_url": "http://auth.example.com/t",
        "userinfo_url": "http://auth.example.com/u",
    });
    let r = create(base.clone()).await;
    assert_eq!(r.body["msg"], "URL must use HTTPS");

    let mut reserved = base.clone();
    reserved["authorization_params"] = json!({"state": "x"});
    let r = create(reserved).await;
    assert_eq!(
        r.body["msg"],
        "Cannot override reserved OAuth parameter: state"
    );

    let mut protected = base.clone();
    protected["attribute_mapping"] = json!({"role": "admin"});
    let r = create(protected).await;
    assert_eq!(r.body["msg"], "Cannot map to protected system field: role");

    let mut local = base.clone();
    local["authorization_url"] = json!("https://localhost/u");
    let r = create(local).await;
    assert_eq!(
        r.body["msg"],
        "URL cannot point to localhost or loopback addresses"
    );

    let r = app
        .call(
            "GET",
            "/admin/custom-providers/custom:nope",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "custom_provider_not_found");

    let r = app
        .call("GET", "/admin/custom-providers", None, Value::Null)
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    let off = App::new(&["--custom-oauth-enabled", "false"]).await;
    let r = off
        .call(
            "GET",
            "/admin/custom-providers",
            Some(&off.keys.service_role_key.clone()),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error_code"], "feature_disabled");
    assert_eq!(r.body["msg"], "Custom OAuth providers are disabled");
}

#[tokio::test]
async fn registered_oidc_provider_is_listed_changed_and_signs_users_in() {
    let app = App::new(LOCAL).await;
    let admin = app.keys.service_role_key.clone();
    let (issuer, seen) = stand_in_provider().await;
    let r = app
        .call(
            "POST",
            "/admin/custom-providers",
            Some(&admin),
            json!({
                "provider_type": "oidc", "identifier": "custom:corp", "name": "Corp SSO",
                "client_id": "corp-client", "client_secret": "corp-secret",
                "issuer": issuer, "scopes": ["email"],
                "attribute_mapping": {"sub": "id"},
                "custom_claims_allowlist": ["name"],
                "authorization_params": {"prompt": "consent"},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["scopes"], json!(["openid", "email"]));
    assert_eq!(
        r.body["discovery_document"]["token_endpoint"],
        format!("{issuer}/token")
    );
    assert!(r.body.get("client_secret").is_none());

    let again = app
        .call("POST", "/admin/custom-providers", Some(&admin), {
            let mut b = r.body.clone();
            b["client_secret"] = json!("s");
            b
        })
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body["error_code"], "conflict");

    let list = app
        .call(
            "GET",
            "/admin/custom-providers?type=oidc",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(list.body["providers"].as_array().unwrap().len(), 1);
    let none = app
        .call(
            "GET",
            "/admin/custom-providers?type=oauth2",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(none.body["providers"], json!([]));

    let updated = app
        .call(
            "PUT",
            "/admin/custom-providers/custom:corp",
            Some(&admin),
            json!({"name": "Corp", "enabled": true}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["name"], "Corp");
    assert_eq!(updated.body["pkce_enabled"], true);

    // Sign-in: /authorize sends the browser to the discovered endpoint with the extra params.
    let r = app
        .raw("GET", "/authorize?provider=custom:corp", None, None)
        .await;
    assert_eq!(r.status, 302);
    let location = url::Url::parse(r.headers["location"].to_str().unwrap()).unwrap();
    assert!(location
        .as_str()
        .starts_with(&format!("{issuer}/authorize?")));
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "corp-client");
    assert_eq!(query["prompt"], "consent");
    assert_eq!(query["scope"], "openid email");
    let back = format!("/callback?code=c0de&state={}", query["state"]);
    let r = app.raw("GET", &back, None, None).await;
    assert_eq!(r.status, 302);
    // PKCE towards the provider: the verifier sent with the code matches the challenge.
    let form = seen.lock().unwrap().pop().unwrap();
    let form: std::collections::HashMap<_, _> = url::form_urlencoded::parse(form.as_bytes())
        .into_owned()
        .collect();
    let verifier = &form["code_verifier"];
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(query["code_challenge"], challenge);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        app.count("select count(*) from auth.oauth_client_states")
            .await,
        0,
        "a verifier serves one exchange"
    );
    let landing = r.headers["location"].to_str().unwrap();
    assert!(landing.contains("#access_token="), "{landing}");
    let row = app
        .db
        .superuser()
        .await
        .query_one(
            "select i.provider, i.provider_id, u.email, \
               i.identity_data->'custom_claims'->>'name' from auth.identities i \
             join auth.users u on u.id = i.user_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "custom:corp");
    assert_eq!(row.get::<_, String>(1), "7");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("custom@example.com")
    );
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("Cus Tom"));

    let gone = app
        .call(
            "DELETE",
            "/admin/custom-providers/custom:corp",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(gone.status, 204);
    let r = app
        .raw("GET", "/authorize?provider=custom:corp", None, None)
        .await;
    assert_eq!(r.status, 400);
}
