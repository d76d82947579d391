//! API keys and JWT verification.
//!
//! The algorithm is pinned to HS256 with the project's secret: a token's own `alg` header never
//! chooses how it is checked, so `alg: none` and key-confusion tricks fail. When asymmetric
//! signing keys are configured (`GOTRUE_JWT_KEYS`), a token may instead be ES256 or RS256 signed
//! by one of them: its `alg` must be the configured key's own, found by `kid`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};

pub use crate::key_set::{KeySet, KeySetError};
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

/// Verifies HS256 tokens signed with the project's secret, and tokens signed by the project's
/// other keys ([`KeySet`]), which a running craftbase replaces on rotation.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    keys: RwLock<Arc<KeySet>>,
    /// Bumped by every [`Self::set_keys`], so caches of verified tokens know to forget them.
    generation: AtomicU64,
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
            keys: RwLock::new(Arc::new(KeySet::default())),
            generation: AtomicU64::new(0),
        }
    }

    /// Also accepts tokens signed by the keys of `jwks` (a JSON array of JWKs, or `{"keys":
    /// [...]}`, as `GOTRUE_JWT_KEYS` holds them): EC P-256 keys verify ES256, RSA keys RS256,
    /// `oct` keys HS256 under their `kid`; the key marked `sign` signs access tokens.
    pub fn with_jwks(self, jwks: &str) -> Result<Self, KeySetError> {
        self.set_keys(KeySet::from_jwks(jwks)?);
        Ok(self)
    }

    /// Replaces the keys (a rotation): tokens of keys no longer listed stop verifying.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes with every [`Self::set_keys`]: a token verified under another generation must be
    /// verified again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Verifies `token` and returns its claims. A token with a `kid` of a known key is checked
    /// with that key and its algorithm only (an ES256 key's `kid` on an HS256 token fails);
    /// asymmetric tokens must carry `exp`. HS256 tokens of no known key use the secret.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = decode_header(token)?;
        let keys = self.keys();
        let known = match &header.kid {
            Some(kid) => keys.by_kid(kid),
            None if header.alg != Algorithm::HS256 => keys.by_alg(header.alg),
            None => None,
        };
        match known {
            Some(key) => {
                if key.alg != header.alg {
                    return Err(JwtError::Invalid);
                }
                let mut validation = self.validation.clone();
                validation.algorithms = vec![key.alg];
                if key.alg != Algorithm::HS256 {
                    validation.set_required_spec_claims(&["exp"]);
                }
                Ok(decode::<Claims>(token, &key.key, &validation)?.claims)
            }
            None if header.alg == Algorithm::HS256 => {
                Ok(decode::<Claims>(token, &self.key, &self.validation)?.claims)
            }
            None => Err(JwtError::Invalid),
        }
    }

    /// Verifies a token presented as an access token (a bearer to REST, auth or realtime): as
    /// [`Self::verify`], and refused as not meant for this audience when it is a token
    /// craftbase signs for another purpose: one with a `purpose` claim (the OAuth `state`), or
    /// an OpenID Connect ID token, whose `aud` names the OAuth client it was issued to (its
    /// `client_id`). Access tokens of OAuth clients' sessions carry `client_id` too, but their
    /// `aud` is the users' audience.
    pub fn verify_access_token(&self, token: &str) -> Result<Claims, JwtError> {
        let claims = self.verify(token)?;
        if is_access_token(&claims) {
            Ok(claims)
        } else {
            Err(JwtError::Audience)
        }
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

/// False for the tokens craftbase signs for other purposes; see
/// [`JwtVerifier::verify_access_token`].
pub fn is_access_token(claims: &Claims) -> bool {
    if claims.contains_key("purpose") {
        return false;
    }
    let Some(client) = claims.get("client_id").and_then(|c| c.as_str()) else {
        return true;
    };
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud != client,
        Some(serde_json::Value::Array(list)) => !list.iter().any(|a| a.as_str() == Some(client)),
        _ => true,
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
    fn tokens_for_other_purposes_are_not_access_tokens() {
        let secret = "a-secret-of-enough-length-for-hs256-0123";
        let v = JwtVerifier::hs256(secret, None);
        let exp = now() + 60;
        let client = "7b1d6f8e-2a43-4c1e-9d35-0f6a1c2b3d4e";
        let token = |claims: serde_json::Value| sign(secret, &claims).unwrap();
        let access = token(
            serde_json::json!({"role": "authenticated", "aud": "authenticated",
            "sub": "u", "exp": exp, "client_id": client}),
        );
        assert!(v.verify_access_token(&access).is_ok());
        let id_token = token(
            serde_json::json!({"sub": "u", "aud": [client], "client_id": client, "exp": exp}),
        );
        assert!(v.verify(&id_token).is_ok());
        assert_eq!(v.verify_access_token(&id_token), Err(JwtError::Audience));
        let state = token(serde_json::json!({"purpose": "oauth_state", "exp": exp}));
        assert_eq!(v.verify_access_token(&state), Err(JwtError::Audience));
    }

    /// A P-256 key made for these tests (Node's crypto.generateKeyPairSync, exported as JWK).
    const TEST_EC_JWK: &str = r#"{"kty":"EC","kid":"test-key","crv":"P-256","x":"fFUu02VEGhIi4LAwpYU7QiinMAtDynaQoJyaMSWx5Fo","y":"aJo527ZWOT86g8KnlbimmiZt4ofNvmwQzJxCKOkMdXM","d":"iuV7I28zTMsDyN0P3G0su2yGLfWgNw-ZXhC35W7hRt0"}"#;
    /// The same private key as PKCS#8 DER: a fixed P-256 prefix, then `d`.
    fn test_ec_signing_key() -> EncodingKey {
        use base64::Engine;
        let d = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("iuV7I28zTMsDyN0P3G0su2yGLfWgNw-ZXhC35W7hRt0")
            .unwrap();
        let mut der = vec![
            0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
            0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27,
            0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20,
        ];
        der.extend(d);
        EncodingKey::from_ec_der(&der)
    }

    #[test]
    fn configured_asymmetric_keys_verify_their_own_tokens_only() {
        let secret = "a-secret-of-enough-length-for-hs256-0123";
        let v = JwtVerifier::hs256(secret, None)
            .with_jwks(&format!("[{TEST_EC_JWK}]"))
            .unwrap();
        let claims = serde_json::json!({"role": "authenticated", "exp": now() + 60});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("test-key".into());
        let es = encode(&header, &claims, &test_ec_signing_key()).unwrap();
        assert_eq!(v.verify(&es).unwrap()["role"], "authenticated");
        header.kid = Some("other".into());
        let wrong_kid = encode(&header, &claims, &test_ec_signing_key()).unwrap();
        assert_eq!(v.verify(&wrong_kid), Err(JwtError::Invalid));
        // No algorithm confusion: an HS256 token naming the ES256 key's kid is refused, even
        // signed with the secret, and so is one HMAC'd with the public key's coordinates.
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some("test-key".into());
        for key in [secret.as_bytes(), TEST_EC_JWK.as_bytes()] {
            let forged = encode(&hs, &claims, &EncodingKey::from_secret(key)).unwrap();
            assert_eq!(v.verify(&forged), Err(JwtError::Invalid));
        }
        // An ES256 token without exp is refused; an expired one too.
        header.kid = Some("test-key".into());
        let no_exp = serde_json::json!({"role": "authenticated"});
        let forever = encode(&header, &no_exp, &test_ec_signing_key()).unwrap();
        assert!(v.verify(&forever).is_err());
        let old = serde_json::json!({"role": "authenticated", "exp": now() - 120});
        let expired = encode(&header, &old, &test_ec_signing_key()).unwrap();
        assert_eq!(v.verify(&expired), Err(JwtError::Expired));
        // Replacing the keys (a revocation) stops the key's tokens at once.
        v.set_keys(KeySet::default());
        assert_eq!(v.verify(&es), Err(JwtError::Invalid));
        v.set_keys(KeySet::from_jwks(&format!("[{TEST_EC_JWK}]")).unwrap());
        // HS256 with the secret still works; without configured keys ES256 is refused.
        assert!(v.verify(&sign(secret, &claims).unwrap()).is_ok());
        assert_eq!(
            JwtVerifier::hs256(secret, None).verify(&es),
            Err(JwtError::Invalid)
        );
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
