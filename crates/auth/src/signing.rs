//! Asymmetric signing of access tokens: with `GOTRUE_JWT_KEYS` holding an EC P-256 private JWK,
//! tokens are ES256 with its `kid`, and `/.well-known/jwks.json` publishes the public half so
//! auth-js `getClaims()` and other services verify without the secret. Without it, tokens are
//! HS256 with the project secret and the JWKS is empty.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// PKCS#8 DER of a P-256 private key up to its 32-byte scalar `d`.
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

/// The key access tokens are signed with.
pub struct SigningKey {
    kid: String,
    key: EncodingKey,
    public: Value,
}

impl SigningKey {
    /// The first private EC P-256 key of a JWK list (`[...]` or `{"keys": [...]}`), if any.
    pub fn from_jwks(jwks: &str) -> anyhow::Result<Option<SigningKey>> {
        let value: Value = serde_json::from_str(jwks)?;
        let list = match &value {
            Value::Array(list) => list.clone(),
            Value::Object(o) => o
                .get("keys")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => anyhow::bail!("GOTRUE_JWT_KEYS must be a JSON array of JWKs"),
        };
        let Some(jwk) = list
            .iter()
            .find(|k| k["kty"] == "EC" && k["crv"] == "P-256" && k["d"].is_string())
        else {
            return Ok(None);
        };
        let field = |name: &str| -> anyhow::Result<String> {
            jwk[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("the EC key has no {name}"))
        };
        let (x, y, d) = (field("x")?, field("y")?, field("d")?);
        let scalar = URL_SAFE_NO_PAD.decode(d.trim_end_matches('='))?;
        anyhow::ensure!(scalar.len() == 32, "the EC key's d is not 32 bytes");
        let mut der = P256_PKCS8_PREFIX.to_vec();
        der.extend(scalar);
        let kid = match jwk["kid"].as_str() {
            Some(kid) => kid.to_owned(),
            None => {
                let digest = Sha256::digest(format!("{x}.{y}").as_bytes());
                URL_SAFE_NO_PAD.encode(&digest[..12])
            }
        };
        let public = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "alg": "ES256", "use": "sig", "key_ops": ["verify"],
        });
        Ok(Some(SigningKey {
            kid,
            key: EncodingKey::from_ec_der(&der),
            public,
        }))
    }

    /// Signs `claims` as ES256 with this key's `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }

    /// The public JWK, as the JWKS lists it.
    pub fn public_jwk(&self) -> &Value {
        &self.public
    }
}
