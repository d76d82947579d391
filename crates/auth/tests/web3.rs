//! `grant_type=web3`: wallets signing Sign-In with Ethereum / Solana messages, and GoTrue's
//! refusals (switched off, unknown chain, wrong signer, another app's URI, stale messages).

use base64::Engine;
use ed25519_dalek::Signer;
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use sha3::{Digest, Keccak256};

use crate::support::App;

const ON: &[&str] = &[
    "--web3-ethereum-enabled",
    "true",
    "--web3-solana-enabled",
    "true",
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A wallet's Ethereum address: the last 20 bytes of Keccak-256 over the public key.
fn eth_address(key: &SigningKey) -> String {
    let point = key.verifying_key().to_encoded_point(false);
    format!(
        "0x{}",
        hex(&Keccak256::digest(&point.as_bytes()[1..])[12..])
    )
}

/// `personal_sign`: `r ‖ s ‖ 27 + v` over the prefixed message's Keccak-256.
fn personal_sign(key: &SigningKey, message: &str) -> String {
    let prefixed = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
    let (sig, recid) = key
        .sign_prehash_recoverable(&Keccak256::digest(prefixed.as_bytes()))
        .unwrap();
    format!("0x{}{:02x}", hex(&sig.to_bytes()), 27 + recid.to_byte())
}

fn siwe(address: &str, uri: &str, issued_at: &str) -> String {
    let host = url::Url::parse(uri).unwrap();
    let domain = match host.port() {
        Some(p) => format!("{}:{p}", host.host_str().unwrap()),
        None => host.host_str().unwrap().to_owned(),
    };
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to the test app\n\nURI: {uri}\nVersion: 1\nChain ID: 1\nNonce: 12345678\n\
         Issued At: {issued_at}"
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn web3(app: &App, body: Value) -> crate::support::Reply {
    app.call("POST", "/token?grant_type=web3", None, body).await
}

#[tokio::test]
async fn ethereum_wallet_signs_in_and_comes_back_as_the_same_user() {
    let app = App::new(ON).await;
    let key = SigningKey::from_slice(&[42u8; 32]).unwrap();
    let address = eth_address(&key);
    let message = siwe(&address, "http://localhost:3000/", &now());
    let signature = personal_sign(&key, &message);
    let r = web3(
        &app,
        json!({"chain": "ethereum", "message": message, "signature": signature}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let user = &r.body["user"];
    assert_eq!(user["app_metadata"]["provider"], "web3");
    assert_eq!(user["identities"][0]["provider"], "web3");
    assert_eq!(
        user["identities"][0]["identity_data"]["sub"],
        format!("web3:ethereum:{address}")
    );
    assert_eq!(user["user_metadata"]["address"], address.as_str());
    let part = r.body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"][0]["method"], "web3");

    let again = siwe(&address, "http://localhost:3000/", &now());
    let r2 = web3(
        &app,
        json!({"chain": "ethereum", "message": again, "signature": personal_sign(&key, &again)}),
    )
    .await;
    assert_eq!(r2.status, 200, "{}", r2.body);
    assert_eq!(r2.body["user"]["id"], user["id"]);
    assert_eq!(app.count("select count(*) from auth.users").await, 1);
}

#[tokio::test]
async fn ethereum_refusals_match_gotrue() {
    let app = App::new(ON).await;
    let key = SigningKey::from_slice(&[43u8; 32]).unwrap();
    let other = SigningKey::from_slice(&[44u8; 32]).unwrap();
    let address = eth_address(&key);
    let send = |message: String, signature: String| {
        web3(
            &app,
            json!({"chain": "ethereum", "message": message, "signature": signature}),
        )
    };
    let message = siwe(&address, "http://localhost:3000/", &now());

    let r = send(message.clone(), personal_sign(&other, &message)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(
        r.body["error_description"],
        "Signature does not match address in message"
    );

    let r = send(message.clone(), "0x1234".into()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "validation_failed");

    let elsewhere = siwe(&address, "https://evil.example.com/", &now());
    let r = send(elsewhere.clone(), personal_sign(&key, &elsewhere)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error_description"],
        "Signed Ethereum message is using URI which is not allowed on this server, message was signed for another app"
    );

    let plain = siwe(&address, "http://example.com/", &now());
    let r = send(plain.clone(), personal_sign(&key, &plain)).await;
    assert_eq!(
        r.body["error_description"],
        "Signed Ethereum message is using URI which does not use HTTPS"
    );

    let stale = siwe(&address, "http://localhost:3000/", "2020-01-01T00:00:00Z");
    let r = send(stale.clone(), personal_sign(&key, &stale)).await;
    assert_eq!(
        r.body["error_description"],
        "Ethereum message was issued too long ago"
    );

    let r = send("too short".into(), personal_sign(&key, "too short")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["msg"], "message is too short");

    let r = web3(
        &app,
        json!({"chain": "bitcoin", "message": "x", "signature": "y"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "web3_unsupported_chain");
    assert_eq!(app.count("select count(*) from auth.users").await, 0);
}

#[tokio::test]
async fn switched_off_by_default_and_per_chain() {
    let app = App::new(&[]).await;
    let r = web3(
        &app,
        json!({"chain": "ethereum", "message": "m", "signature": "s"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error_code"], "web3_provider_disabled");
    assert_eq!(r.body["msg"], "Web3 provider is disabled");
    let r = app
        .call("POST", "/token?grant_type=web3", None, json!({"chain": 1}))
        .await;
    assert_eq!(
        r.body["error_code"], "web3_provider_disabled",
        "before the body is read"
    );

    let app = App::new(&["--web3-ethereum-enabled", "true"]).await;
    let r = web3(
        &app,
        json!({"chain": "solana", "message": "m", "signature": "s"}),
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["msg"], "Solana Web3 provider is disabled");
}

#[tokio::test]
async fn solana_wallet_signs_in() {
    let app = App::new(ON).await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let address = bs58::encode(key.verifying_key().as_bytes()).into_string();
    let message = format!(
        "localhost:3000 wants you to sign in with your Solana account:\n{address}\n\n\
         URI: http://localhost:3000/\nVersion: 1\nChain ID: solana:devnet\nIssued At: {}",
        now()
    );
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(key.sign(message.as_bytes()).to_bytes());
    let r = web3(
        &app,
        json!({"chain": "solana", "message": message, "signature": signature}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["user"]["identities"][0]["identity_data"]["sub"],
        format!("web3:solana:{address}")
    );
    assert_eq!(
        r.body["user"]["identities"][0]["identity_data"]["network"],
        "solana:devnet"
    );

    let tampered = message.replace("Version: 1", "Version: 1\nRequest ID: x");
    let r = web3(
        &app,
        json!({"chain": "solana", "message": tampered, "signature": signature}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_grant");
}
