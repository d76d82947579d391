//! Whether a wallet really signed a message: Ethereum's `personal_sign` (secp256k1 with public
//! key recovery, the address being the last 20 bytes of the key's Keccak-256) and Solana's
//! ed25519 over the message, raw or wrapped as an off-chain message.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

/// The Ethereum address (`0x` and 40 lowercase hex digits) that signed `message` with
/// `personal_sign`, or `None` when the signature is malformed or recovers no key.
pub fn ethereum_signer(message: &str, signature_hex: &str) -> Option<String> {
    let hex = signature_hex
        .strip_prefix("0x")
        .or_else(|| signature_hex.strip_prefix("0X"))
        .unwrap_or(signature_hex);
    let bytes = decode_hex(hex)?;
    if bytes.len() != 65 {
        return None;
    }
    let v = match bytes[64] {
        v @ 27.. => v - 27,
        v => v,
    };
    let mut recovery = RecoveryId::from_byte(v)?;
    let mut signature = Signature::from_slice(&bytes[..64]).ok()?;
    // Wallets sign with a low `s`; a high one is the same signature mirrored, so flip it back
    // (and the parity of the recovered point with it) rather than refuse it.
    if let Some(low) = signature.normalize_s() {
        signature = low;
        recovery = RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced());
    }
    let prefixed = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
    let digest = Keccak256::digest(prefixed.as_bytes());
    let key = VerifyingKey::recover_from_prehash(&digest, &signature, recovery).ok()?;
    Some(address_of(&key))
}

/// `0x` and the lowercase hex of the last 20 bytes of Keccak-256 over the uncompressed key.
fn address_of(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", encode_hex(&hash[12..]))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the ed25519 key behind the base58 `address` signed `message` as it is, or as the
/// off-chain message some wallets wrap it in (`\xffsolana offchain`, version 0, the domain
/// padded to 32 bytes, ASCII format, one signer, the key, the length, the message).
pub fn solana_signed(address: &str, domain: &str, message: &str, signature: &[u8]) -> bool {
    let Ok(key) = bs58::decode(address).into_vec() else {
        return false;
    };
    let (Ok(key), Ok(signature)) = (
        <[u8; 32]>::try_from(key.as_slice()),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&signature);
    if key.verify_strict(message.as_bytes(), &signature).is_ok() {
        return true;
    }
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    let mut wrapped = Vec::with_capacity(message.len() + 85);
    wrapped.extend_from_slice(b"\xffsolana offchain\x00");
    let mut padded = [0u8; 32];
    let n = domain.len().min(32);
    padded[..n].copy_from_slice(&domain.as_bytes()[..n]);
    wrapped.extend_from_slice(&padded);
    wrapped.extend_from_slice(&[0, 1]);
    wrapped.extend_from_slice(key.as_bytes());
    wrapped.extend_from_slice(&len.to_le_bytes());
    wrapped.extend_from_slice(message.as_bytes());
    key.verify_strict(&wrapped, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use k256::ecdsa::SigningKey;

    /// Signs as a wallet's `personal_sign` does: `r ‖ s ‖ (27 + recovery id)`.
    fn personal_sign(key: &SigningKey, message: &str) -> String {
        let prefixed = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
        let (sig, recid) = key
            .sign_prehash_recoverable(&Keccak256::digest(prefixed.as_bytes()))
            .unwrap();
        format!(
            "0x{}{:02x}",
            encode_hex(&sig.to_bytes()),
            27 + recid.to_byte()
        )
    }

    #[test]
    fn recovers_the_signing_address() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let address = address_of(key.verifying_key());
        let signature = personal_sign(&key, "hello");
        assert_eq!(
            ethereum_signer("hello", &signature).as_deref(),
            Some(address.as_str())
        );
        assert_ne!(
            ethereum_signer("hellO", &signature).as_deref(),
            Some(address.as_str())
        );
        assert_eq!(ethereum_signer("hello", "0x1234"), None);
        assert_eq!(ethereum_signer("hello", &"zz".repeat(65)), None);
    }

    #[test]
    fn knows_a_published_address() {
        // The key 0x…01's address, as every Ethereum tool derives it.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = SigningKey::from_slice(&one).unwrap();
        assert_eq!(
            address_of(key.verifying_key()),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
    }

    #[test]
    fn checks_solana_signatures_raw_and_wrapped() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let address = bs58::encode(key.verifying_key().as_bytes()).into_string();
        let signature = key.sign(b"sign me").to_bytes();
        assert!(solana_signed(
            &address,
            "example.com",
            "sign me",
            &signature
        ));
        assert!(!solana_signed(
            &address,
            "example.com",
            "sign me!",
            &signature
        ));
        assert!(!solana_signed(
            "not-base58-0OIl",
            "example.com",
            "sign me",
            &signature
        ));
        assert!(!solana_signed(
            &address,
            "example.com",
            "sign me",
            &signature[..10]
        ));
    }
}
