//! The sign-in message a wallet signs: EIP-4361 (Sign-In with Ethereum) and its Solana
//! twin, which share one layout. Parsed leniently in the same places GoTrue is lenient, so a
//! message one accepts the other does too.

use chrono::{DateTime, Utc};

/// Which wallet family a message is for: its header, address syntax and chain ids differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Ethereum,
    Solana,
}

impl Chain {
    /// The prefix of parse errors, as GoTrue words them.
    fn tag(self) -> &'static str {
        match self {
            Chain::Ethereum => "siwe",
            Chain::Solana => "siws",
        }
    }

    fn header_suffix(self) -> &'static str {
        match self {
            Chain::Ethereum => " wants you to sign in with your Ethereum account:",
            Chain::Solana => " wants you to sign in with your Solana account:",
        }
    }

    fn valid_address(self, a: &str) -> bool {
        match self {
            Chain::Ethereum => {
                a.len() == 42
                    && a.starts_with("0x")
                    && a[2..].bytes().all(|b| b.is_ascii_hexdigit())
            }
            Chain::Solana => {
                (32..=44).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_alphanumeric())
            }
        }
    }

    /// Ethereum: a positive EIP-155 chain id (required). Solana: `solana:<main|dev|test|local>net`.
    fn valid_chain_id(self, id: &str) -> bool {
        match self {
            Chain::Ethereum => id.parse::<i64>().is_ok_and(|n| n > 0),
            Chain::Solana => id
                .strip_prefix("solana:")
                .is_some_and(|n| matches!(n, "mainnet" | "devnet" | "testnet" | "localnet")),
        }
    }
}

/// A parsed sign-in message; `raw` is what was signed.
#[derive(Debug, Clone)]
pub struct Message {
    pub raw: String,
    pub domain: String,
    pub address: String,
    pub statement: Option<String>,
    pub uri: url::Url,
    pub chain_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expiration_time: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
}

/// A message that does not follow the format; the text is the client's `msg`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// `localhost` or a dotted host name, with an optional port.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if host == "localhost" {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let Some((tld, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && rest.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn timestamp(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses `raw` as a sign-in message for `chain`.
pub fn parse(chain: Chain, raw: &str) -> Result<Message, ParseError> {
    let tag = chain.tag();
    let fail = |what: &str| ParseError(format!("{tag}: {what}"));
    let lines: Vec<&str> = raw.split('\n').collect();
    if lines.len() < 6 {
        return Err(fail("message needs at least 6 lines"));
    }
    let suffix = chain.header_suffix();
    let domain = lines[0]
        .strip_suffix(suffix)
        .ok_or_else(|| fail(&format!("message first line does not end in {suffix:?}")))?
        .trim();
    if !valid_domain(domain) {
        return Err(fail("domain in first line of message is not valid"));
    }
    let address = lines[1].trim();
    if !chain.valid_address(address) {
        return Err(fail(match chain {
            Chain::Ethereum => "wallet address is not a valid Ethereum address",
            Chain::Solana => "wallet address is not in base58 format",
        }));
    }
    if !lines[2].is_empty() {
        return Err(fail("third line must be empty"));
    }
    let mut statement = None;
    let mut start = 3;
    if !lines[3].is_empty() && lines[4].is_empty() {
        statement = Some(lines[3].to_owned());
        start = 5;
    }
    let (mut uri, mut version, mut chain_id, mut issued_at) = (None, None, None, None);
    let (mut expiration_time, mut not_before) = (None, None);
    let mut in_resources = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let line = line.trim();
        if in_resources {
            if let Some(resource) = line.strip_prefix("- ") {
                if url::Url::parse(resource.trim()).is_err() {
                    return Err(fail("Resource has invalid URI"));
                }
                continue;
            }
            in_resources = false;
        }
        if line == "Resources:" {
            in_resources = true;
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(fail(&format!("encountered unparsable line at index {i}")));
        };
        let value = value.trim();
        match key {
            "URI" => uri = Some(url::Url::parse(value).map_err(|_| fail("URI is not valid"))?),
            "Version" => version = Some(value.to_owned()),
            "Chain ID" => {
                let required = chain == Chain::Ethereum;
                if (required || !value.is_empty()) && !chain.valid_chain_id(value) {
                    return Err(fail("Chain ID is not valid"));
                }
                chain_id = Some(value.to_owned()).filter(|v| !v.is_empty());
            }
            "Issued At" => {
                issued_at = Some(
                    timestamp(value)
                        .ok_or_else(|| fail("Issued At is not a valid ISO8601 timestamp"))?,
                )
            }
            "Expiration Time" => {
                expiration_time = Some(
                    timestamp(value)
                        .ok_or_else(|| fail("Expiration Time is not a valid ISO8601 timestamp"))?,
                )
            }
            "Not Before" => {
                not_before = Some(
                    timestamp(value)
                        .ok_or_else(|| fail("Not Before is not a valid ISO8601 timestamp"))?,
                )
            }
            _ => {}
        }
    }
    let version = version.unwrap_or_default();
    if version != "1" {
        return Err(fail(&format!(
            "Version value is not supported, expected 1 got {version:?}"
        )));
    }
    let issued_at = issued_at.ok_or_else(|| fail("Issued At is not specified"))?;
    let uri = uri.ok_or_else(|| fail("URI is not specified"))?;
    if expiration_time.is_some_and(|e| issued_at > e) {
        return Err(fail("Issued At is after Expiration Time"));
    }
    if let (Some(nb), Some(e)) = (not_before, expiration_time) {
        if nb > e {
            return Err(fail("Not Before is after Expiration Time"));
        }
    }
    Ok(Message {
        raw: raw.to_owned(),
        domain: domain.to_owned(),
        address: address.to_owned(),
        statement,
        uri,
        chain_id,
        issued_at,
        expiration_time,
        not_before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIWE: &str = "example.com wants you to sign in with your Ethereum account:\n\
        0x71C7656EC7ab88b098defB751B7401B5f6d8976F\n\nSign in please\n\n\
        URI: https://example.com/login\nVersion: 1\nChain ID: 1\nNonce: abcdefgh\n\
        Issued At: 2025-01-01T00:00:00Z\nResources:\n- https://example.com/a";

    #[test]
    fn reads_every_field_of_an_ethereum_message() {
        let m = parse(Chain::Ethereum, SIWE).unwrap();
        assert_eq!(m.domain, "example.com");
        assert_eq!(m.address, "0x71C7656EC7ab88b098defB751B7401B5f6d8976F");
        assert_eq!(m.statement.as_deref(), Some("Sign in please"));
        assert_eq!(m.uri.as_str(), "https://example.com/login");
        assert_eq!(m.chain_id.as_deref(), Some("1"));
        assert_eq!(m.issued_at.timestamp(), 1_735_689_600);
    }

    #[test]
    fn refuses_what_gotrue_refuses() {
        let wrong = |m: &str| parse(Chain::Ethereum, m).unwrap_err().0;
        assert_eq!(wrong("a\nb"), "siwe: message needs at least 6 lines");
        assert!(wrong(&SIWE.replace("Ethereum", "Solana")).contains("does not end in"));
        assert!(wrong(&SIWE.replace("Chain ID: 1", "Chain ID: 0")).contains("Chain ID"));
        assert!(wrong(&SIWE.replace("Version: 1", "Version: 2")).contains("expected 1"));
        assert!(wrong(&SIWE.replace("0x71C7", "0xZZC7")).contains("not a valid Ethereum"));
        assert!(wrong(&SIWE.replace("example.com wants", "exa mple wants")).contains("domain"));
        assert!(
            wrong(&SIWE.replace("Issued At: 2025-01-01T00:00:00Z", "Issued At: yesterday"))
                .contains("Issued At")
        );
        let expired_first = SIWE.replace(
            "Resources:",
            "Expiration Time: 2024-01-01T00:00:00Z\nResources:",
        );
        assert_eq!(
            wrong(&expired_first),
            "siwe: Issued At is after Expiration Time"
        );
    }

    #[test]
    fn solana_chain_ids_are_cluster_names() {
        let msg = "localhost:3000 wants you to sign in with your Solana account:\n\
            7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv\n\nURI: http://localhost:3000/\n\
            Version: 1\nChain ID: solana:devnet\nIssued At: 2025-01-01T00:00:00.123Z";
        let m = parse(Chain::Solana, msg).unwrap();
        assert_eq!(m.chain_id.as_deref(), Some("solana:devnet"));
        assert!(m.statement.is_none());
        let bad = msg.replace("solana:devnet", "solana:moonnet");
        assert_eq!(
            parse(Chain::Solana, &bad).unwrap_err().0,
            "siws: Chain ID is not valid"
        );
    }
}
