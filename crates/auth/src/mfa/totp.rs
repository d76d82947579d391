//! TOTP factors' secrets and codes, as authenticator apps expect them: 20 random bytes shown
//! in base32, SHA-1, six digits, 30-second steps, and one step of clock drift either way
//! (GoTrue's settings, so factors enrolled with GoTrue keep working).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::error::AuthError;

/// What enrolment shows the user: the secret, its `otpauth://` URI and that URI as a QR code.
pub struct Enrolment {
    pub secret: String,
    pub uri: String,
    pub qr_code: String,
}

/// A fresh secret for `account` (the user's email) issued by `issuer`.
pub fn enrol(issuer: &str, account: &str) -> Result<Enrolment, AuthError> {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    let secret = match Secret::Raw(raw.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => unreachable!("to_encoded always encodes"),
    };
    let label = format!("{issuer}:{account}");
    let mut uri = url::Url::parse("otpauth://totp/")
        .map_err(|e| AuthError::Internal(format!("otpauth url: {e}")))?;
    uri.set_path(&label);
    uri.query_pairs_mut()
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("issuer", issuer)
        .append_pair("period", "30")
        .append_pair("secret", &secret);
    let uri = uri.to_string();
    let qr_code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::H)
        .map_err(|e| AuthError::Internal(format!("Error generating QR Code: {e}")))?
        .render::<svg::Color>()
        .module_dimensions(3, 3)
        .build();
    Ok(Enrolment {
        secret,
        uri,
        qr_code,
    })
}

/// True when `code` is the factor's code now, a step before or a step after.
pub fn check(secret: &str, code: &str) -> Result<bool, AuthError> {
    let bytes = Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|e| AuthError::Internal(format!("a stored TOTP secret is invalid: {e:?}")))?;
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes)
        .map_err(|e| AuthError::Internal(format!("a stored TOTP secret is invalid: {e}")))?;
    totp.check_current(code)
        .map_err(|e| AuthError::Internal(format!("system clock: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolment_codes_check_and_others_do_not() {
        let e = enrol("example.com", "a@example.com").unwrap();
        assert_eq!(e.secret.len(), 32);
        assert!(e
            .uri
            .starts_with("otpauth://totp/example.com:a@example.com?algorithm=SHA1"));
        assert!(e.qr_code.contains("<svg"));
        let bytes = Secret::Encoded(e.secret.clone()).to_bytes().unwrap();
        let now = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes)
            .unwrap()
            .generate_current()
            .unwrap();
        assert!(check(&e.secret, &now).unwrap());
        let wrong = format!("{:06}", (now.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!check(&e.secret, &wrong).unwrap());
    }
}
