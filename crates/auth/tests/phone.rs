//! Phone sign-ups, sign-ins and codes without an SMS provider: GoTrue's answers with the phone
//! provider off, and nothing written.

use serde_json::json;

use crate::support::App;

#[tokio::test]
async fn phone_requests_get_phone_provider_disabled_and_write_nothing() {
    let app = App::new(&[]).await;
    let phone = "+15555550100";
    let cases = [
        (
            "/signup",
            json!({"phone": phone, "password": "secret-pw-1"}),
            400,
            "Phone signups are disabled",
        ),
        (
            "/token?grant_type=password",
            json!({"phone": phone, "password": "secret-pw-1"}),
            422,
            "Phone logins are disabled",
        ),
        (
            "/otp",
            json!({"phone": phone}),
            400,
            "Unsupported phone provider",
        ),
        (
            "/resend",
            json!({"phone": phone, "type": "sms"}),
            400,
            "Phone logins are disabled",
        ),
    ];
    for (uri, body, status, msg) in cases {
        let r = app.call("POST", uri, None, body).await;
        assert_eq!(r.status.as_u16(), status, "{uri}: {}", r.body);
        assert_eq!(r.body["error_code"], "phone_provider_disabled", "{uri}");
        assert_eq!(r.body["msg"], msg, "{uri}");
    }
    let verify = app
        .call(
            "POST",
            "/verify",
            None,
            json!({"phone": phone, "token": "123456", "type": "sms"}),
        )
        .await;
    assert_eq!(verify.status, 403);
    assert_eq!(verify.body["error_code"], "otp_expired");
    let both = app
        .call(
            "POST",
            "/signup",
            None,
            json!({"email": "both@example.com", "phone": phone, "password": "secret-pw-1"}),
        )
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.body["error_code"], "validation_failed");
    assert_eq!(app.count("select count(*) from auth.users").await, 0);
}
