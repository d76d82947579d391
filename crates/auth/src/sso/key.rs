//! The service provider's RSA key (GoTrue's `GOTRUE_SAML_PRIVATE_KEY`: base64 of PKCS#1 DER)
//! and the self-signed certificate the SP metadata publishes, built from it as GoTrue builds
//! its own (fixed validity, so the certificate is the same at every start).

use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::settings::Settings;

/// GoTrue refuses smaller keys.
const MIN_BITS: usize = 2048;

/// The SP's signing key and certificate.
pub struct SpKey {
    signer: SigningKey<Sha256>,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for SpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpKey(..)")
    }
}

impl SpKey {
    /// The key of `settings` when SAML is on (an error without one, as GoTrue refuses to
    /// start); `Ok(None)` when SAML is off.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let saml = &settings.saml;
        match (&saml.saml_enabled, &saml.saml_private_key) {
            (true, Some(encoded)) => {
                let external = saml
                    .saml_external_url
                    .as_deref()
                    .or(settings.api_external_url.as_deref())
                    .unwrap_or(crate::redirect::DEFAULT_EXTERNAL_URL);
                let host = url::Url::parse(external)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "localhost".into());
                Ok(Some(Self::from_base64_der(encoded, &host)?))
            }
            (true, None) => anyhow::bail!(
                "GOTRUE_SAML_PRIVATE_KEY is required when GOTRUE_SAML_ENABLED is true \
                 (craftbase start generates one into secrets.json)"
            ),
            (false, _) => Ok(None),
        }
    }

    /// Reads a base64 PKCS#1 DER RSA key and certifies it for `host`.
    pub fn from_base64_der(encoded: &str, host: &str) -> anyhow::Result<Self> {
        let der = STANDARD.decode(encoded.trim())?;
        let key = RsaPrivateKey::from_pkcs1_der(&der)?;
        anyhow::ensure!(
            key.size() * 8 >= MIN_BITS,
            "the SAML private key must be at least RSA 2048"
        );
        let signer = SigningKey::<Sha256>::new(key.clone());
        let subject = Name::from_str(&format!("CN=SAML 2.0 Certificate for {host}"))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key())?;
        let validity = Validity {
            not_before: Time::UtcTime(UtcTime::from_unix_duration(Duration::ZERO)?),
            not_after: Time::GeneralTime(GeneralizedTime::from_unix_duration(
                Duration::from_secs(200 * 365 * 86_400),
            )?),
        };
        let cert = CertificateBuilder::new(
            Profile::Leaf {
                issuer: subject.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            SerialNumber::from(1u32),
            validity,
            subject,
            spki,
            &signer,
        )?
        .build::<rsa::pkcs1v15::Signature>()?;
        Ok(SpKey {
            signer,
            cert_der: cert.to_der()?,
        })
    }

    /// A new 2048-bit key, as `GOTRUE_SAML_PRIVATE_KEY` holds it.
    pub fn generate() -> anyhow::Result<String> {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, MIN_BITS)?;
        Ok(STANDARD.encode(key.to_pkcs1_der()?.as_bytes()))
    }

    /// RSA-SHA256 (PKCS#1 v1.5) over `data`: the HTTP-Redirect binding's request signature.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.signer.sign(data).to_vec()
    }

    /// The certificate, base64 DER, as `<ds:X509Certificate>` carries it.
    pub fn certificate_base64(&self) -> String {
        STANDARD.encode(&self.cert_der)
    }
}

#[cfg(test)]
mod tests {
    use super::SpKey;

    #[test]
    fn a_generated_key_is_certified_and_signs() {
        let encoded = SpKey::generate().unwrap();
        let key = SpKey::from_base64_der(&encoded, "127.0.0.1").unwrap();
        assert!(key.certificate_base64().len() > 500);
        assert_eq!(key.sign(b"x").len(), 256);
        assert!(SpKey::from_base64_der("bm90IGEga2V5", "h").is_err());
    }
}
