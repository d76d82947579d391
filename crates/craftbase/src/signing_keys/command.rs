//! `craftbase signing-keys list|new|promote|revoke`: edits the data directory's
//! `secrets.json`, which a running craftbase follows ([`super::watch`]).
//!
//! A rotation that logs no one out: `new` (a standby key, published in the JWKS at once), wait
//! for clients' cached JWKS to expire (ten minutes), `promote` it (new tokens carry its `kid`;
//! the old key's keep verifying), and once the old tokens have expired (`GOTRUE_JWT_EXP`, an
//! hour by default), `revoke` the old key.

use std::path::PathBuf;

use clap::Subcommand;

use super::{generate, promote, revoke, KeyStatus, StoredSigningKey};
use crate::datadir::DataDir;

#[derive(Subcommand, Debug, Clone)]
pub enum SigningKeysCommand {
    /// List the keys (kid, status, algorithm, dates); private halves are never printed.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
    /// Create a standby ES256 key (published and verifying, not yet signing); prints its kid.
    New {
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
    /// Make a standby key the one new tokens are signed with; the current key becomes previous
    /// (its tokens keep verifying).
    Promote {
        /// The key's kid (or at least 4 leading characters of it).
        kid: String,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
    /// Revoke a standby or previous key: tokens it signed stop verifying at once.
    Revoke {
        /// The key's kid (or at least 4 leading characters of it).
        kid: String,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
}

pub fn run(command: &SigningKeysCommand) -> anyhow::Result<()> {
    match command {
        SigningKeysCommand::List { json, data_dir } => {
            let keys = DataDir::existing(data_dir)?.stored_secrets()?.signing_keys;
            if *json {
                let list: Vec<serde_json::Value> = keys.iter().map(listed).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<36}  {:<8}  {:<9}  {:<32}  REVOKED",
                    "KID", "ALG", "STATUS", "CREATED"
                );
                for key in &keys {
                    println!(
                        "{:<36}  {:<8}  {:<9}  {:<32}  {}",
                        key.kid,
                        key.algorithm,
                        key.status.to_string(),
                        key.created_at,
                        key.revoked_at.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        SigningKeysCommand::New { data_dir } => {
            let key = DataDir::existing(data_dir)?.update_signing_keys(|keys| {
                let key = generate(KeyStatus::Standby, chrono::Utc::now());
                keys.push(key.clone());
                Ok(key)
            })?;
            eprintln!("created standby signing key (ES256); promote it with `craftbase signing-keys promote {}`", key.kid);
            println!("{}", key.kid);
            Ok(())
        }
        SigningKeysCommand::Promote { kid, data_dir } => {
            let kid = DataDir::existing(data_dir)?.update_signing_keys(|keys| {
                let at = promote(keys, kid)?;
                Ok(keys[at].kid.clone())
            })?;
            println!("{kid} is now the current signing key");
            Ok(())
        }
        SigningKeysCommand::Revoke { kid, data_dir } => {
            let kid = DataDir::existing(data_dir)?.update_signing_keys(|keys| {
                let at = revoke(keys, kid, chrono::Utc::now())?;
                Ok(keys[at].kid.clone())
            })?;
            println!("revoked signing key {kid}");
            Ok(())
        }
    }
}

/// A key as `list --json` shows it: never its private half.
fn listed(key: &StoredSigningKey) -> serde_json::Value {
    serde_json::json!({
        "kid": key.kid,
        "algorithm": key.algorithm,
        "status": key.status,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    })
}
