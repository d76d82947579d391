//! Asymmetric signing of access tokens. `GOTRUE_JWT_KEYS` holds JWKs as Supabase's does; its
//! private EC P-256 or RSA key (the one whose `key_ops` has `sign`, else the first private one)
//! signs ES256 or RS256 tokens with its `kid`, and `/.well-known/jwks.json` publishes the public
//! halves of every listed key, so auth-js `getClaims()` and other services verify without the
//! secret and rotated-out keys keep verifying. Without it, tokens are HS256 and the JWKS is empty.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// PKCS#8 DER of a P-256 private key up to its 32-byte scalar `d`.
const P256_PKCS8_PREFIX: [u8; 35] = [
    0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x27, 0x30, 0x25, 0x02, 0x01,
    0x01, 0x04, 0x20,
];

/// The RSA private-key members, in PKCS#1 `RSAPrivateKey` order after the version.
const RSA_MEMBERS: [&str; 8] = ["n", "e", "d", "p", "q", "dp", "dq", "qi"];

/// The key access tokens are signed with, and the public keys the JWKS lists.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    published: Vec<Value>,
}

impl SigningKey {
    /// The signing key of a JWK list (`[...]` or `{"keys": [...]}`), if it has a private one.
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
        let asymmetric: Vec<&Value> = list.iter().filter(|k| kind(k).is_some()).collect();
        let private = |k: &&&Value| k["d"].is_string();
        let signs = |k: &&&Value| {
            k["key_ops"]
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o == "sign"))
        };
        let Some(jwk) = asymmetric
            .iter()
            .filter(private)
            .find(signs)
            .or_else(|| asymmetric.iter().find(private))
        else {
            return Ok(None);
        };
        let alg = kind(jwk).unwrap_or(Algorithm::ES256);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_der(&rsa_pkcs1_der(jwk)?),
            _ => EncodingKey::from_ec_der(&p256_pkcs8_der(jwk)?),
        };
        let published = asymmetric
            .iter()
            .map(|k| public_half(k))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let kid = key_id(jwk)?;
        let signing = SigningKey {
            kid,
            alg,
            key,
            published,
        };
        // A malformed private key shows at start, not on the first sign-in.
        signing
            .sign(&json!({"probe": true}))
            .map_err(|e| anyhow::anyhow!("the signing key cannot sign: {e}"))?;
        Ok(Some(signing))
    }

    /// Signs `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }

    /// The public JWKs, as the JWKS lists them, in `GOTRUE_JWT_KEYS` order.
    pub fn public_jwks(&self) -> &[Value] {
        &self.published
    }
}

/// The algorithm a JWK signs with, for the key types auth signs with.
fn kind(jwk: &Value) -> Option<Algorithm> {
    match jwk["kty"].as_str()? {
        "EC" if jwk["crv"] == "P-256" => Some(Algorithm::ES256),
        "RSA" => Some(Algorithm::RS256),
        _ => None,
    }
}

fn member(jwk: &Value, name: &str) -> anyhow::Result<String> {
    jwk[name]
        .as_str()
        .map(|s| s.trim_end_matches('=').to_owned())
        .ok_or_else(|| anyhow::anyhow!("the {} key has no {name}", jwk["kty"]))
}

/// The key's `kid`, or one derived from its public part when it has none.
fn key_id(jwk: &Value) -> anyhow::Result<String> {
    if let Some(kid) = jwk["kid"].as_str() {
        return Ok(kid.to_owned());
    }
    let public = match kind(jwk) {
        Some(Algorithm::RS256) => format!("{}.{}", member(jwk, "n")?, member(jwk, "e")?),
        _ => format!("{}.{}", member(jwk, "x")?, member(jwk, "y")?),
    };
    Ok(URL_SAFE_NO_PAD.encode(&Sha256::digest(public.as_bytes())[..12]))
}

/// The public members of a key, marked for verification only.
fn public_half(jwk: &Value) -> anyhow::Result<Value> {
    let alg = kind(jwk).unwrap_or(Algorithm::ES256);
    let mut out = Map::new();
    let (kty, members, alg_name): (&str, &[&str], &str) = match alg {
        Algorithm::RS256 => ("RSA", &["n", "e"], "RS256"),
        _ => ("EC", &["crv", "x", "y"], "ES256"),
    };
    out.insert("kty".into(), json!(kty));
    for name in members {
        out.insert((*name).into(), json!(member(jwk, name)?));
    }
    out.insert("kid".into(), json!(key_id(jwk)?));
    out.insert("alg".into(), json!(alg_name));
    out.insert("use".into(), json!("sig"));
    out.insert("key_ops".into(), json!(["verify"]));
    Ok(Value::Object(out))
}

fn p256_pkcs8_der(jwk: &Value) -> anyhow::Result<Vec<u8>> {
    let scalar = URL_SAFE_NO_PAD.decode(member(jwk, "d")?)?;
    anyhow::ensure!(scalar.len() == 32, "the EC key's d is not 32 bytes");
    let mut der = P256_PKCS8_PREFIX.to_vec();
    der.extend(scalar);
    Ok(der)
}

/// PKCS#1 `RSAPrivateKey` DER (what `EncodingKey::from_rsa_der` reads) from the JWK members.
fn rsa_pkcs1_der(jwk: &Value) -> anyhow::Result<Vec<u8>> {
    let mut body = der_integer(&[0]);
    for name in RSA_MEMBERS {
        let bytes = URL_SAFE_NO_PAD.decode(member(jwk, name).map_err(|_| {
            anyhow::anyhow!(
                "the RSA key has no {name} (signing needs all of n, e, d, p, q, dp, dq, qi)"
            )
        })?)?;
        body.extend(der_integer(&bytes));
    }
    Ok(der_tlv(0x30, &body))
}

/// A DER INTEGER of an unsigned big-endian number.
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut value = bytes[start..].to_vec();
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    der_tlv(0x02, &value)
}

fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_integer(&[0]), vec![2, 1, 0]);
        assert_eq!(der_integer(&[0, 0, 5]), vec![2, 1, 5]);
        assert_eq!(der_integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(der_tlv(0x30, &[0; 200])[..3], [0x30, 0x81, 200]);
        assert_eq!(der_tlv(0x30, &[0; 300])[..4], [0x30, 0x82, 1, 44]);
    }
}
