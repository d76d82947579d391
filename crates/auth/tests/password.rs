//! Passwords: GoTrue's bcrypt hashes sign in; wrong passwords and unknown users look alike.

use serde_json::json;

use crate::support::App;

/// `$2a$10$` hash of "imported-from-supabase", made by another bcrypt implementation, as a
/// Supabase dump holds them.
const IMPORTED_HASH: &str = "$2a$10$e9xG.lXtGNYA37eSOqn1/.FsgY6cLKrivbdG5DTwh0Mj7TIXvzjPG";

#[tokio::test]
async fn a_user_imported_with_a_gotrue_hash_signs_in() {
    let app = App::new(&[]).await;
    let db = app.db.superuser().await;
    db.execute(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, \
           email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at) \
         values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', \
           'authenticated', 'imported@example.com', $1, now(), \
           '{\"provider\":\"email\",\"providers\":[\"email\"]}', '{}', now(), now())",
        &[&IMPORTED_HASH],
    )
    .await
    .unwrap();
    let ok = app
        .call(
            "POST",
            "/token?grant_type=password",
            None,
            json!({"email": "Imported@Example.com", "password": "imported-from-supabase"}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["token_type"], "bearer");
    assert_eq!(ok.body["user"]["email"], "imported@example.com");

    let wrong = app
        .call(
            "POST",
            "/token?grant_type=password",
            None,
            json!({"email": "imported@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["error_code"], "invalid_credentials");
    let unknown = app
        .call(
            "POST",
            "/token?grant_type=password",
            None,
            json!({"email": "nobody@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body, wrong.body);
}

#[tokio::test]
async fn new_hashes_are_2a_cost_10() {
    let app = App::new(&[]).await;
    app.sign_up("hash@example.com").await;
    let hash: String = app
        .db
        .superuser()
        .await
        .query_one(
            "select encrypted_password from auth.users where email = 'hash@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$2a$10$"), "{hash}");
}

#[tokio::test]
async fn weak_passwords_are_refused_with_reasons() {
    let app = App::new(&["--password-min-length", "8"]).await;
    let r = app
        .call(
            "POST",
            "/signup",
            None,
            json!({"email": "weak@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error_code"], "weak_password");
    assert_eq!(r.body["weak_password"]["reasons"], json!(["length"]));
    assert_eq!(app.count("select count(*) from auth.users").await, 0);
}
