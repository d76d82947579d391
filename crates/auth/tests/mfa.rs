//! TOTP factors: enrol, challenge, verify (aal2 and the `totp` amr), unenrol, and GoTrue's
//! refusals along the way.

use base64::Engine;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::support::App;

fn claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The factor's current code, as an authenticator app shows it.
pub(crate) fn code(secret: &str) -> String {
    let bytes = Secret::Encoded(secret.into()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate_current()
        .unwrap()
}

/// A code that is none of the accepted three (previous, current, next step).
pub(crate) fn wrong_code(secret: &str) -> String {
    let bytes = Secret::Encoded(secret.into()).to_bytes().unwrap();
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp.generate(*t))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

pub(crate) async fn sign_in(app: &App, email: &str) -> Value {
    let r = app
        .call(
            "POST",
            "/token?grant_type=password",
            None,
            json!({"email": email, "password": "secret-pw-1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[tokio::test]
async fn totp_enrol_challenge_verify_reaches_aal2_and_unenrol_needs_it() {
    let app = App::new(&[]).await;
    let session = app.sign_up("mfa@example.com").await;
    let access = session["access_token"].as_str().unwrap();

    let enrolled = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "totp", "friendly_name": "phone app"}),
        )
        .await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    assert_eq!(enrolled.body["type"], "totp");
    assert_eq!(enrolled.body["friendly_name"], "phone app");
    let secret = enrolled.body["totp"]["secret"].as_str().unwrap().to_owned();
    assert!(enrolled.body["totp"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/localhost:3000:mfa@example.com?"));
    assert!(enrolled.body["totp"]["qr_code"]
        .as_str()
        .unwrap()
        .contains("<svg"));
    let factor = enrolled.body["id"].as_str().unwrap().to_owned();

    let same_name = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "totp", "friendly_name": "phone app"}),
        )
        .await;
    assert_eq!(same_name.status, 422);
    assert_eq!(same_name.body["error_code"], "mfa_factor_name_conflict");

    let challenge = app
        .call(
            "POST",
            &format!("/factors/{factor}/challenge"),
            Some(access),
            json!({}),
        )
        .await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    assert_eq!(challenge.body["type"], "totp");
    assert!(challenge.body["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    let challenge_id = challenge.body["id"].as_str().unwrap().to_owned();
    let verify = |code: String, challenge: String| {
        let factor = factor.clone();
        let app = &app;
        async move {
            app.call(
                "POST",
                &format!("/factors/{factor}/verify"),
                Some(access),
                json!({"challenge_id": challenge, "code": code}),
            )
            .await
        }
    };

    let wrong = verify(wrong_code(&secret), challenge_id.clone()).await;
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.body["error_code"], "mfa_verification_failed");
    assert_eq!(wrong.body["msg"], "Invalid TOTP code entered");
    let empty = verify(String::new(), challenge_id.clone()).await;
    assert_eq!(empty.body["error_code"], "validation_failed");
    // The wrong code spent that challenge (craftbase is stricter than GoTrue here).
    let spent = verify(code(&secret), challenge_id.clone()).await;
    assert_eq!(spent.status, 422, "{}", spent.body);
    let challenge = app
        .call(
            "POST",
            &format!("/factors/{factor}/challenge"),
            Some(access),
            json!({}),
        )
        .await;
    let challenge_id = challenge.body["id"].as_str().unwrap().to_owned();

    let ok = verify(code(&secret), challenge_id.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let aal2 = ok.body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&aal2);
    assert_eq!(c["aal"], "aal2");
    assert_eq!(c["amr"][0]["method"], "totp");
    assert_eq!(c["amr"][1]["method"], "password");
    assert_eq!(c["session_id"], claims(access)["session_id"]);
    assert_eq!(ok.body["user"]["factors"][0]["status"], "verified");
    assert!(ok.body["user"]["factors"][0].get("secret").is_none());

    // A challenge verifies once.
    let again = verify(code(&secret), challenge_id).await;
    assert_eq!(again.body["error_code"], "mfa_ip_address_mismatch");

    // The refreshed session stays aal2; the refresh token handed out before verifying is spent.
    let refreshed = app
        .refresh(ok.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(
        claims(refreshed.body["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );

    // A new aal1 session may neither enrol another factor nor remove the verified one.
    let other = sign_in(&app, "mfa@example.com").await;
    let aal1 = other["access_token"].as_str().unwrap();
    assert_eq!(claims(aal1)["aal"], "aal1");
    let enrol = app
        .call(
            "POST",
            "/factors",
            Some(aal1),
            json!({"factor_type": "totp", "friendly_name": "second"}),
        )
        .await;
    assert_eq!(enrol.status, 403);
    assert_eq!(enrol.body["error_code"], "insufficient_aal");
    let remove = app
        .raw("DELETE", &format!("/factors/{factor}"), Some(aal1), None)
        .await;
    assert_eq!(remove.status, 422);
    assert_eq!(remove.body["error_code"], "insufficient_aal");

    let me = app.raw("GET", "/user", Some(aal1), None).await;
    assert_eq!(me.body["factors"][0]["id"], factor.as_str());

    let removed = app
        .raw("DELETE", &format!("/factors/{factor}"), Some(&aal2), None)
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.body["id"], factor.as_str());
    let me = app.raw("GET", "/user", Some(&aal2), None).await;
    assert!(me.body.get("factors").is_none(), "{}", me.body);
    // The session that stepped up with it is aal1 again.
    let refreshed = app
        .refresh(refreshed.body["refresh_token"].as_str().unwrap())
        .await;
    let c = claims(refreshed.body["access_token"].as_str().unwrap());
    assert_eq!(c["aal"], "aal1");
    assert_eq!(c["amr"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn factor_errors_are_gotrues() {
    let app = App::new(&[]).await;
    let session = app.sign_up("mfa-errors@example.com").await;
    let access = session["access_token"].as_str().unwrap();

    let phone = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "phone", "phone": "+15555550100"}),
        )
        .await;
    assert_eq!(phone.status, 422);
    assert_eq!(phone.body["error_code"], "mfa_phone_enroll_not_enabled");
    assert_eq!(phone.body["msg"], "MFA enroll is disabled for Phone");
    let other = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "sms"}),
        )
        .await;
    assert_eq!(other.status, 400);
    assert_eq!(
        other.body["msg"],
        "factor_type needs to be totp, phone, or webauthn"
    );

    let unknown = "00000000-0000-4000-8000-000000000000";
    let missing = app
        .call(
            "POST",
            &format!("/factors/{unknown}/challenge"),
            Some(access),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error_code"], "mfa_factor_not_found");
    let malformed = app
        .raw("DELETE", "/factors/not-a-uuid", Some(access), None)
        .await;
    assert_eq!(malformed.status, 404);
    assert_eq!(malformed.body["msg"], "factor_id must be an UUID");

    let enrolled = app
        .call(
            "POST",
            "/factors",
            Some(access),
            json!({"factor_type": "totp"}),
        )
        .await;
    let factor = enrolled.body["id"].as_str().unwrap().to_owned();
    let secret = enrolled.body["totp"]["secret"].as_str().unwrap().to_owned();
    let unknown_challenge = app
        .call(
            "POST",
            &format!("/factors/{factor}/verify"),
            Some(access),
            json!({"challenge_id": unknown, "code": code(&secret)}),
        )
        .await;
    assert_eq!(unknown_challenge.status, 422);
    assert_eq!(unknown_challenge.body["error_code"], "mfa_factor_not_found");

    let challenge = app
        .call(
            "POST",
            &format!("/factors/{factor}/challenge"),
            Some(access),
            json!({}),
        )
        .await;
    let challenge_id = challenge.body["id"].as_str().unwrap().to_owned();
    app.db
        .superuser()
        .await
        .execute(
            "update auth.mfa_challenges set created_at = now() - interval '301 seconds'",
            &[],
        )
        .await
        .unwrap();
    let expired = app
        .call(
            "POST",
            &format!("/factors/{factor}/verify"),
            Some(access),
            json!({"challenge_id": challenge_id, "code": code(&secret)}),
        )
        .await;
    assert_eq!(expired.status, 422);
    assert_eq!(expired.body["error_code"], "mfa_challenge_expired");
    assert_eq!(
        app.count("select count(*) from auth.mfa_challenges").await,
        0
    );

    // Admins see the unverified factor and remove it.
    let user = session["user"]["id"].as_str().unwrap();
    let service = app.keys.service_role_key.clone();
    let listed = app
        .raw(
            "GET",
            &format!("/admin/users/{user}/factors"),
            Some(&service),
            None,
        )
        .await;
    assert_eq!(listed.body[0]["id"], factor.as_str());
    assert_eq!(listed.body[0]["status"], "unverified");
    let deleted = app
        .raw(
            "DELETE",
            &format!("/admin/users/{user}/factors/{factor}"),
            Some(&service),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(app.count("select count(*) from auth.mfa_factors").await, 0);
}
