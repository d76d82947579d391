//! Checking the tokens a socket and its channels present (§3.1, §3.4).

use craftbase_shared::{Claims, JwtError, JwtVerifier, RoleSwitch};

use crate::identity::Identity;

/// A verified token: the database identity it grants and when it expires (unix seconds).
#[derive(Debug, Clone)]
pub struct Grant {
    pub identity: Identity,
    pub claims: Claims,
    pub exp: Option<i64>,
}

/// Why a token was refused, with the texts Supabase sends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("Token has expired {0} seconds ago")]
    Expired(i64),
    #[error("Fields `role` and `exp` are required in JWT")]
    MissingClaims,
    #[error("The token provided is not a valid JWT")]
    NotAJwt,
    #[error("Failed to validate JWT signature")]
    Signature,
    #[error("Invalid role: the token's role may not be used")]
    Role,
}

/// Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Verifies `token` and resolves its role.
pub fn check(jwt: &JwtVerifier, roles: &RoleSwitch, token: &str) -> Result<Grant, TokenError> {
    if token.split('.').count() != 3 {
        return Err(TokenError::NotAJwt);
    }
    let claims = jwt.verify_access_token(token).map_err(|e| match e {
        JwtError::Expired => {
            TokenError::Expired(unverified_exp(token).map_or(0, |exp| (now() - exp).max(0)))
        }
        JwtError::MissingClaim(_) => TokenError::MissingClaims,
        _ => TokenError::Signature,
    })?;
    let exp = claims.get("exp").and_then(|e| e.as_i64());
    let (Some(exp), Some(_)) = (exp, claims.get("role").and_then(|r| r.as_str())) else {
        return Err(TokenError::MissingClaims);
    };
    // The verifier allows clock skew; a channel is closed at `exp` itself.
    if exp <= now() {
        return Err(TokenError::Expired(now() - exp));
    }
    let role = roles
        .resolve(Some(&claims))
        .map_err(|_| TokenError::Role)?
        .to_owned();
    Ok(Grant {
        identity: Identity {
            role,
            claims: serde_json::Value::Object(claims.clone()).to_string(),
            uid: claims
                .get("sub")
                .and_then(|s| s.as_str())
                .and_then(crate::identity::owner_id),
        },
        claims,
        exp: Some(exp),
    })
}

/// The `exp` of a token whose signature was already checked or that is only being described.
fn unverified_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_i64()
}

fn base64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use craftbase_shared::keys::sign;

    const SECRET: &str = "a-secret-of-enough-length-for-hs256-0123";

    fn setup() -> (JwtVerifier, RoleSwitch) {
        (
            JwtVerifier::hs256(SECRET, None),
            RoleSwitch::new(["anon", "authenticated", "service_role"].map(String::from)),
        )
    }

    #[test]
    fn valid_expired_and_forged_tokens() {
        let (jwt, roles) = setup();
        let good = sign(
            SECRET,
            &serde_json::json!({"role":"authenticated","sub":"u","exp": now() + 60}),
        )
        .unwrap();
        let g = check(&jwt, &roles, &good).unwrap();
        assert_eq!(g.identity.role, "authenticated");
        let expired = sign(
            SECRET,
            &serde_json::json!({"role":"anon","exp": now() - 100}),
        )
        .unwrap();
        match check(&jwt, &roles, &expired) {
            Err(TokenError::Expired(n)) => assert!((99..=102).contains(&n), "{n}"),
            other => panic!("{other:?}"),
        }
        let just_expired =
            sign(SECRET, &serde_json::json!({"role":"anon","exp": now() - 1})).unwrap();
        assert!(matches!(
            check(&jwt, &roles, &just_expired),
            Err(TokenError::Expired(_))
        ));
        let no_exp = sign(SECRET, &serde_json::json!({"role":"anon"})).unwrap();
        assert_eq!(
            check(&jwt, &roles, &no_exp).unwrap_err(),
            TokenError::MissingClaims
        );
        let forged = sign(
            "another-secret-another-secret-another",
            &serde_json::json!({"role":"anon","exp": now()+60}),
        )
        .unwrap();
        assert_eq!(
            check(&jwt, &roles, &forged).unwrap_err(),
            TokenError::Signature
        );
        assert_eq!(check(&jwt, &roles, "abc").unwrap_err(), TokenError::NotAJwt);
        let postgres = sign(
            SECRET,
            &serde_json::json!({"role":"postgres","exp": now()+60}),
        )
        .unwrap();
        assert_eq!(
            check(&jwt, &roles, &postgres).unwrap_err(),
            TokenError::Role
        );
    }
}
