//! API keys and JWT verification.
//!
//! The algorithm is pinned to HS256 with the project's secret: a token's own `alg` header never
//! chooses how it is checked, so `alg: none` and key-confusion tricks fail.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

/// A verified token's claims, kept whole because `request.jwt.claims` passes them all on.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// Leeway on `exp`, `nbf` and `iat`, as PostgREST allows for clock skew.
pub const CLOCK_SKEW_SECONDS: u64 = 30;

/// How long the anon and service_role keys live: ten years, like Supabase's.
const API_KEY_LIFETIME_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// The project's secret and the two long-lived keys signed with it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKeys {
    pub jwt_secret: String,
    pub anon_key: String,
    pub service_role_key: String,
}

impl ApiKeys {
    /// Mints the anon and service_role keys for `jwt_secret`, issued at `now` (unix seconds).
    pub fn mint(jwt_secret: &str, now: u64) -> Result<Self, JwtError> {
        Ok(Self {
            jwt_secret: jwt_secret.to_owned(),
            anon_key: mint_api_key(jwt_secret, "anon", now)?,
            service_role_key: mint_api_key(jwt_secret, "service_role", now)?,
        })
    }

    /// True when `key` is exactly one of the two keys.
    pub fn is_known(&self, key: &str) -> bool {
        key == self.anon_key || key == self.service_role_key
    }
}

/// A fresh random secret, long enough for HS256.
pub fn generate_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 48)
}

/// Signs an API key JWT for `role`, shaped like Supabase's (`iss`, `ref`, `role`, `iat`, `exp`).
pub fn mint_api_key(secret: &str, role: &str, now: u64) -> Result<String, JwtError> {
    let claims = serde_json::json!({
        "iss": "supabase",
        "ref": "craftbase",
        "role": role,
        "iat": now,
        "exp": now + API_KEY_LIFETIME_SECONDS,
    });
    sign(secret, &claims)
}

/// Signs arbitrary claims with HS256.
pub fn sign(secret: &str, claims: &serde_json::Value) -> Result<String, JwtError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(JwtError::from)
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("JWT expired")]
    Expired,
    #[error("JWT not yet valid")]
    NotYetValid,
    #[error("JWT has the wrong audience")]
    Audience,
    #[error("JWT is missing the required claim {0}")]
    MissingClaim(String),
    #[error("JWT could not be decoded or its signature is invalid")]
    Invalid,
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidAudience => JwtError::Audience,
            ErrorKind::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
            _ => JwtError::Invalid,
        }
    }
}

/// Verifies HS256 tokens signed with the project's secret.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier for `secret`; `audience`, when set, must match the token's `aud`.
    pub fn hs256(secret: &str, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        // PostgREST accepts tokens without `exp`; the key check below asks for it separately.
        validation.required_spec_claims.clear();
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        Ok(decode::<Claims>(token, &self.key, &self.validation)?.claims)
    }

    /// Verifies an API key: a valid token that has an `exp` and the role anon or service_role.
    pub fn verify_api_key(&self, token: &str) -> Result<Claims, JwtError> {
        let claims = self.verify(token)?;
        if !claims.get("exp").is_some_and(|e| e.is_number()) {
            return Err(JwtError::MissingClaim("exp".into()));
        }
        match claims.get("role").and_then(|r| r.as_str()) {
            Some("anon" | "service_role") => Ok(claims),
            _ => Err(JwtError::MissingClaim("role".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn minted_keys_verify_as_api_keys() {
        let keys = ApiKeys::mint("a-secret-of-enough-length-for-hs256-0123", now()).unwrap();
        let v = JwtVerifier::hs256(&keys.jwt_secret, None);
        assert_eq!(v.verify_api_key(&keys.anon_key).unwrap()["role"], "anon");
        assert_eq!(
            v.verify_api_key(&keys.service_role_key).unwrap()["role"],
            "service_role"
        );
    }

    #[test]
    fn other_secret_none_alg_expired_and_user_role_are_refused() {
        let secret = "a-secret-of-enough-length-for-hs256-0123";
        let v = JwtVerifier::hs256(secret, None);
        let forged = mint_api_key("another-secret-another-secret-another", "anon", now()).unwrap();
        assert_eq!(v.verify(&forged), Err(JwtError::Invalid));

        // alg none: header {"alg":"none","typ":"JWT"}, payload {"role":"service_role"}.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.";
        assert_eq!(v.verify(none), Err(JwtError::Invalid));

        let expired = sign(
            secret,
            &serde_json::json!({"role": "anon", "exp": now() - 120}),
        )
        .unwrap();
        assert_eq!(v.verify(&expired), Err(JwtError::Expired));

        let user = sign(
            secret,
            &serde_json::json!({"role": "authenticated", "exp": now() + 60}),
        )
        .unwrap();
        assert!(v.verify(&user).is_ok());
        assert!(v.verify_api_key(&user).is_err());
        assert_eq!(v.verify("not.a.jwt"), Err(JwtError::Invalid));
    }

    #[test]
    fn audience_is_enforced_when_configured() {
        let secret = "a-secret-of-enough-length-for-hs256-0123";
        let v = JwtVerifier::hs256(secret, Some("authenticated"));
        let wrong = sign(
            secret,
            &serde_json::json!({"aud": "other", "exp": now() + 60}),
        )
        .unwrap();
        assert_eq!(v.verify(&wrong), Err(JwtError::Audience));
        let right = sign(
            secret,
            &serde_json::json!({"aud": "authenticated", "exp": now() + 60}),
        )
        .unwrap();
        assert!(v.verify(&right).is_ok());
    }
}
