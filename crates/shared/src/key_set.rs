//! The project's JWT keys: the keys tokens are verified with, by `kid`, each pinned to its own
//! algorithm; the public halves the JWKS publishes; and the one key access tokens are signed
//! with. Built from JWKs as `GOTRUE_JWT_KEYS` holds them (and as craftbase keeps its generated
//! keys), so a token's header never chooses how it is checked: an ES256 `kid` is never checked
//! as HS256, and HMAC (`oct`) keys are never published.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
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

/// Why a key list was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid JWT signing keys: {0}")]
pub struct KeySetError(pub String);

fn invalid(e: impl std::fmt::Display) -> KeySetError {
    KeySetError(e.to_string())
}

/// A key tokens are verified with.
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The key access tokens are signed with.
pub struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
}

impl Signer {
    /// Signs `claims` with this key's algorithm and `kid`.
    pub fn sign(&self, claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// True for ES256 and RS256 keys, which others can verify from the JWKS.
    pub fn is_asymmetric(&self) -> bool {
        self.alg != Algorithm::HS256
    }
}

/// Verification keys, published keys and the signing key, replaced as a whole on rotation.
#[derive(Default)]
pub struct KeySet {
    pub(crate) verify: Vec<VerifyKey>,
    published: Vec<Value>,
    signer: Option<std::sync::Arc<Signer>>,
}

impl KeySet {
    /// Reads a JWK list (`[...]` or `{"keys": [...]}`).
    pub fn from_jwks(jwks: &str) -> Result<KeySet, KeySetError> {
        let value: Value = serde_json::from_str(jwks).map_err(invalid)?;
        let list = match value {
            Value::Array(list) => list,
            Value::Object(mut o) => match o.remove("keys") {
                Some(Value::Array(list)) => list,
                _ => return Err(invalid("expected an array of JWKs")),
            },
            _ => return Err(invalid("expected an array of JWKs")),
        };
        KeySet::from_list(&list)
    }

    /// Builds the set from JWKs. The signing key is the private key whose `key_ops` has `sign`
    /// (an `oct` one included: it signs HS256), as GoTrue picks it; when none is marked, the
    /// first private EC or RSA key. A key marked for `verify` only never signs.
    pub fn from_list(list: &[Value]) -> Result<KeySet, KeySetError> {
        let mut set = KeySet::default();
        for jwk in list {
            let alg = kind(jwk).ok_or_else(|| {
                invalid("only EC P-256, RSA and oct keys are supported".to_owned())
            })?;
            let kid = key_id(jwk, alg)?;
            let key = match alg {
                Algorithm::HS256 => DecodingKey::from_secret(&secret_bytes(jwk)?),
                _ => {
                    let public: Jwk =
                        serde_json::from_value(public_half(jwk, alg, &kid)?).map_err(invalid)?;
                    DecodingKey::from_jwk(&public).map_err(invalid)?
                }
            };
            set.verify.push(VerifyKey {
                // A kid derived from the key (none was given) names it in the JWKS, but a
                // token without a kid still finds it by algorithm.
                kid: Some(kid.clone()),
                alg,
                key,
            });
            if alg != Algorithm::HS256 {
                set.published.push(public_half(jwk, alg, &kid)?);
            }
        }
        let private = |k: &&Value| k["d"].is_string() || (k["kty"] == "oct" && k["k"].is_string());
        let ops = |k: &Value, op: &str| {
            k["key_ops"]
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o == op))
        };
        let chosen = list
            .iter()
            .filter(private)
            .find(|k| ops(k, "sign"))
            .or_else(|| {
                list.iter()
                    .filter(private)
                    .find(|k| k["kty"] != "oct" && k["key_ops"].is_null())
            });
        if let Some(jwk) = chosen {
            let alg = kind(jwk).unwrap_or(Algorithm::ES256);
            let key = match alg {
                Algorithm::HS256 => EncodingKey::from_secret(&secret_bytes(jwk)?),
                Algorithm::RS256 => EncodingKey::from_rsa_der(&rsa_pkcs1_der(jwk)?),
                _ => EncodingKey::from_ec_der(&p256_pkcs8_der(jwk)?),
            };
            let signer = Signer {
                kid: key_id(jwk, alg)?,
                alg,
                key,
            };
            // A malformed private key shows at start, not on the first sign-in.
            signer
                .sign(&json!({"probe": true}))
                .map_err(|e| invalid(format!("the signing key cannot sign: {e}")))?;
            set.signer = Some(std::sync::Arc::new(signer));
        }
        Ok(set)
    }

    /// Both sets' keys; `self`'s signing key wins, `other`'s signs only when `self` has none.
    pub fn merge(mut self, other: KeySet) -> KeySet {
        for key in other.verify {
            if !self.verify.iter().any(|k| k.kid == key.kid) {
                self.verify.push(key);
            }
        }
        for jwk in other.published {
            if !self.published.iter().any(|p| p["kid"] == jwk["kid"]) {
                self.published.push(jwk);
            }
        }
        self.signer = self.signer.or(other.signer);
        self
    }

    /// The key access tokens are signed with, when there is one (else HS256 with the secret).
    pub fn signer(&self) -> Option<std::sync::Arc<Signer>> {
        self.signer.clone()
    }

    /// The public JWKs the JWKS lists: EC and RSA keys only, never HMAC ones.
    pub fn published(&self) -> &[Value] {
        &self.published
    }

    pub fn is_empty(&self) -> bool {
        self.verify.is_empty()
    }

    pub(crate) fn by_kid(&self, kid: &str) -> Option<&VerifyKey> {
        self.verify.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    pub(crate) fn by_alg(&self, alg: Algorithm) -> Option<&VerifyKey> {
        self.verify.iter().find(|k| k.alg == alg)
    }
}

/// The algorithm a JWK signs with.
fn kind(jwk: &Value) -> Option<Algorithm> {
    match jwk["kty"].as_str()? {
        "EC" if jwk["crv"] == "P-256" => Some(Algorithm::ES256),
        "RSA" => Some(Algorithm::RS256),
        "oct" => Some(Algorithm::HS256),
        _ => None,
    }
}

fn member(jwk: &Value, name: &str) -> Result<String, KeySetError> {
    jwk[name]
        .as_str()
        .map(|s| s.trim_end_matches('=').to_owned())
        .ok_or_else(|| invalid(format!("the {} key has no {name}", jwk["kty"])))
}

fn secret_bytes(jwk: &Value) -> Result<Vec<u8>, KeySetError> {
    let bytes = URL_SAFE_NO_PAD.decode(member(jwk, "k")?).map_err(invalid)?;
    if bytes.is_empty() {
        return Err(invalid("an oct key has an empty k"));
    }
    Ok(bytes)
}

/// The key's `kid`, or one derived from its public part when it has none.
fn key_id(jwk: &Value, alg: Algorithm) -> Result<String, KeySetError> {
    if let Some(kid) = jwk["kid"].as_str() {
        return Ok(kid.to_owned());
    }
    let material = match alg {
        Algorithm::RS256 => format!("{}.{}", member(jwk, "n")?, member(jwk, "e")?),
        Algorithm::HS256 => member(jwk, "k")?,
        _ => format!("{}.{}", member(jwk, "x")?, member(jwk, "y")?),
    };
    Ok(URL_SAFE_NO_PAD.encode(&Sha256::digest(material.as_bytes())[..12]))
}

/// The public members of an EC or RSA key, marked for verification only.
fn public_half(jwk: &Value, alg: Algorithm, kid: &str) -> Result<Value, KeySetError> {
    let mut out = Map::new();
    let (kty, members, alg_name): (&str, &[&str], &str) = match alg {
        Algorithm::RS256 => ("RSA", &["n", "e"], "RS256"),
        _ => ("EC", &["crv", "x", "y"], "ES256"),
    };
    out.insert("kty".into(), json!(kty));
    for name in members {
        out.insert((*name).into(), json!(member(jwk, name)?));
    }
    out.insert("kid".into(), json!(kid));
    out.insert("alg".into(), json!(alg_name));
    out.insert("use".into(), json!("sig"));
    out.insert("key_ops".into(), json!(["verify"]));
    Ok(Value::Object(out))
}

fn p256_pkcs8_der(jwk: &Value) -> Result<Vec<u8>, KeySetError> {
    let scalar = URL_SAFE_NO_PAD.decode(member(jwk, "d")?).map_err(invalid)?;
    if scalar.len() != 32 {
        return Err(invalid("the EC key's d is not 32 bytes"));
    }
    let mut der = P256_PKCS8_PREFIX.to_vec();
    der.extend(scalar);
    Ok(der)
}

/// PKCS#1 `RSAPrivateKey` DER (what `EncodingKey::from_rsa_der` reads) from the JWK members.
fn rsa_pkcs1_der(jwk: &Value) -> Result<Vec<u8>, KeySetError> {
    let mut body = der_integer(&[0]);
    for name in RSA_MEMBERS {
        let text = member(jwk, name).map_err(|_| {
            invalid(format!(
                "the RSA key has no {name} (signing needs all of n, e, d, p, q, dp, dq, qi)"
            ))
        })?;
        body.extend(der_integer(&URL_SAFE_NO_PAD.decode(text).map_err(invalid)?));
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
