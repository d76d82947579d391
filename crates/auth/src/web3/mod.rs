//! `grant_type=web3` (auth-js `signInWithWeb3`): a wallet signs a Sign-In with Ethereum
//! (EIP-4361) or Sign-In with Solana message and the signature buys a session. The message must
//! name this app (its URI an allowed redirect, its domain the URI's host) and be fresh; the
//! user is found or created by the identity `web3:<chain>:<address>`.

pub mod message;
pub mod signature;

use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AuthError;
use crate::linking::{self, ProviderUser};
use crate::redirect::{self, Origin};
use crate::session::{self, Device};
use crate::AuthState;
use message::{Chain, Message};

/// The provider name of web3 identities, and the `amr` method of their sessions.
const PROVIDER: &str = "web3";

/// The body auth-js sends.
#[derive(Deserialize)]
pub struct Web3Grant {
    #[serde(default)]
    chain: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    signature: String,
}

fn invalid_grant(description: &'static str) -> AuthError {
    AuthError::OAuth {
        error: "invalid_grant",
        description: description.into(),
    }
}

/// Refuses every web3 request, whatever its body, while both chains are off.
pub fn any_enabled(state: &AuthState) -> Result<(), AuthError> {
    let s = &state.settings;
    if s.web3_ethereum_enabled || s.web3_solana_enabled {
        Ok(())
    } else {
        Err(AuthError::Web3Disabled("Web3 provider is disabled"))
    }
}

/// Checks the signed message and starts a session for its wallet.
pub async fn grant(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    body: Web3Grant,
) -> Result<Value, AuthError> {
    let s = &state.settings;
    let chain = match body.chain.as_str() {
        "ethereum" if s.web3_ethereum_enabled => Chain::Ethereum,
        "ethereum" => {
            return Err(AuthError::Web3Disabled(
                "Ethereum Web3 provider is disabled",
            ))
        }
        "solana" if s.web3_solana_enabled => Chain::Solana,
        "solana" => return Err(AuthError::Web3Disabled("Solana Web3 provider is disabled")),
        _ => return Err(AuthError::Web3UnsupportedChain),
    };
    if body.message.len() < 64 {
        return Err(AuthError::Validation("message is too short".into()));
    }
    if body.message.len() > 20 * 1024 {
        return Err(AuthError::Validation("message must not exceed 20KB".into()));
    }
    let message = match chain {
        Chain::Ethereum => verify_ethereum(&body)?,
        Chain::Solana => verify_solana(&body)?,
    };
    check_audience(state, chain, &message)?;
    check_times(state, chain, &message)?;
    let account = account(&body.chain, &message);
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = linking::link_or_create(state, &tx, PROVIDER, &account).await?;
    let issued = session::create(state, &tx, origin, device, &user, PROVIDER).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, chain = %body.chain, "web3 sign-in");
    Ok(issued.to_json(state))
}

fn parse(chain: Chain, raw: &str) -> Result<Message, AuthError> {
    message::parse(chain, raw).map_err(|e| AuthError::Validation(e.0))
}

fn verify_ethereum(body: &Web3Grant) -> Result<Message, AuthError> {
    let hex = body.signature.strip_prefix("0x").unwrap_or(&body.signature);
    if hex.len() != 130 {
        return Err(AuthError::Validation(
            "signature must be 65 bytes long, encoded as a 130 character-long hexadecimal string"
                .into(),
        ));
    }
    let message = parse(Chain::Ethereum, &body.message)?;
    let signer = signature::ethereum_signer(&message.raw, &body.signature);
    if !signer.is_some_and(|a| a.eq_ignore_ascii_case(&message.address)) {
        return Err(invalid_grant("Signature does not match address in message"));
    }
    Ok(message)
}

fn verify_solana(body: &Web3Grant) -> Result<Message, AuthError> {
    if !matches!(body.signature.len(), 86 | 88) {
        return Err(AuthError::Validation(
            "signature must be 64 bytes encoded as base64 with or without padding".into(),
        ));
    }
    let url_safe = body
        .signature
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(url_safe)
        .map_err(|_| {
            AuthError::Validation("signature does not contain valid base64 characters".into())
        })?;
    let message = parse(Chain::Solana, &body.message)?;
    if !signature::solana_signed(&message.address, &message.domain, &message.raw, &bytes) {
        return Err(invalid_grant("Signature does not match address in message"));
    }
    Ok(message)
}

/// The message must have been signed for this app: an https (or localhost) URI that is an
/// allowed redirect, on the host the domain line names.
fn check_audience(state: &AuthState, chain: Chain, m: &Message) -> Result<(), AuthError> {
    let eth = chain == Chain::Ethereum;
    let localhost = m.uri.host_str() == Some("localhost");
    if m.uri.scheme() != "https" && !localhost {
        return Err(invalid_grant(if eth {
            "Signed Ethereum message is using URI which does not use HTTPS"
        } else {
            "Signed Solana message is using URI which does not use HTTPS"
        }));
    }
    if !redirect::is_allowed(&state.settings, m.uri.as_str()) {
        return Err(invalid_grant(if eth {
            "Signed Ethereum message is using URI which is not allowed on this server, message was signed for another app"
        } else {
            "Signed Solana message is using URI which is not allowed on this server, message was signed for another app"
        }));
    }
    let host = match (m.uri.host_str(), m.uri.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    let domain_allowed = redirect::is_allowed(&state.settings, &format!("https://{}/", m.domain));
    if !localhost && (host != m.domain || !domain_allowed) {
        return Err(invalid_grant(if eth {
            "Signed Ethereum message is using a Domain that does not match the one in URI which is not allowed on this server"
        } else {
            "Signed Solana message is using a Domain that does not match the one in URI which is not allowed on this server"
        }));
    }
    Ok(())
}

/// Not before its `Not Before`, not after its `Expiration Time`, and issued no further than the
/// chain's maximum validity from now either way.
fn check_times(state: &AuthState, chain: Chain, m: &Message) -> Result<(), AuthError> {
    let now = Utc::now();
    let eth = chain == Chain::Ethereum;
    let pick = |e: &'static str, s: &'static str| invalid_grant(if eth { e } else { s });
    if m.not_before.is_some_and(|nb| now < nb) {
        return Err(pick(
            "Signed Ethereum message becomes valid in the future",
            "Signed Solana message becomes valid in the future",
        ));
    }
    if m.expiration_time.is_some_and(|e| now > e) {
        return Err(pick(
            "Signed Ethereum message is expired",
            "Signed Solana message is expired",
        ));
    }
    let validity = if eth {
        state.settings.web3_ethereum_maximum_validity_duration
    } else {
        state.settings.web3_solana_maximum_validity_duration
    };
    let validity = chrono::TimeDelta::from_std(validity).unwrap_or(chrono::TimeDelta::MAX);
    let age = now.signed_duration_since(m.issued_at);
    if age > validity {
        return Err(pick(
            "Ethereum message was issued too long ago",
            "Solana message was issued too long ago",
        ));
    }
    if -age > validity {
        return Err(pick(
            "Ethereum message was issued too far in the future",
            "Solana message was issued too far in the future",
        ));
    }
    Ok(())
}

/// The wallet as an identity: `web3:<chain>:<address>`, with what the message said about it.
fn account(chain: &str, m: &Message) -> ProviderUser {
    let id = format!("{PROVIDER}:{chain}:{}", m.address);
    ProviderUser {
        data: json!({
            "sub": id,
            "address": m.address,
            "chain": chain,
            "network": m.chain_id.clone().unwrap_or_default(),
            "domain": m.domain,
            "statement": m.statement.clone().unwrap_or_default(),
            "email_verified": false,
            "phone_verified": false,
        }),
        id,
        email: None,
        email_verified: false,
    }
}
