//! `craftbase keys list|new|revoke`: edits the data directory's `secrets.json`, which a running
//! craftbase watches ([`super::ring::KeyRing::watch`]).

use crate::config::KeysCommand;
use crate::datadir::DataDir;

use super::{new_key, revoke, KeyKind, StoredKey};

/// Longest name a key may be given.
const MAX_NAME_CHARS: usize = 64;

pub fn run(command: &KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { json, data_dir } => {
            let keys = DataDir::existing(data_dir)?.stored_secrets()?.api_keys;
            if *json {
                let list: Vec<serde_json::Value> = keys.iter().map(listed).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                print_table(&keys);
            }
            Ok(())
        }
        KeysCommand::New {
            secret,
            name,
            data_dir,
            ..
        } => {
            let kind = if *secret {
                KeyKind::Secret
            } else {
                KeyKind::Publishable
            };
            let name = name.clone().unwrap_or_else(|| kind.to_string());
            anyhow::ensure!(
                !name.trim().is_empty()
                    && name.chars().count() <= MAX_NAME_CHARS
                    && !name.chars().any(char::is_control),
                "a key's name is 1 to {MAX_NAME_CHARS} printable characters"
            );
            let key = DataDir::existing(data_dir)?.update_api_keys(|keys| {
                let key = new_key(kind, &name, chrono::Utc::now());
                keys.push(key.clone());
                Ok(key)
            })?;
            eprintln!("created {kind} key {} ({})", key.id, key.name);
            println!("{}", key.key.unwrap_or_default());
            Ok(())
        }
        KeysCommand::Revoke { which, data_dir } => {
            let revoked = DataDir::existing(data_dir)?.update_api_keys(|keys| {
                let at = revoke(keys, which, chrono::Utc::now())?;
                Ok(keys[at].clone())
            })?;
            println!(
                "revoked {} key {} ({}, {}…)",
                revoked.kind, revoked.id, revoked.name, revoked.prefix
            );
            Ok(())
        }
    }
}

/// A key as `list` shows it: a publishable key whole (it is public anyway), a secret key by
/// its prefix only.
fn listed(key: &StoredKey) -> serde_json::Value {
    let shown = match (key.kind, &key.key) {
        (KeyKind::Publishable, Some(value)) => serde_json::Value::String(value.clone()),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "id": key.id,
        "kind": key.kind,
        "name": key.name,
        "prefix": key.prefix,
        "key": shown,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    })
}

fn print_table(keys: &[StoredKey]) {
    println!(
        "{:<12}  {:<11}  {:<16}  {:<46}  {:<20}  REVOKED",
        "ID", "KIND", "NAME", "KEY", "CREATED"
    );
    for key in keys {
        let shown = match (key.kind, &key.key) {
            (KeyKind::Publishable, Some(value)) => value.clone(),
            _ => format!("{}…", key.prefix),
        };
        println!(
            "{:<12}  {:<11}  {:<16}  {:<46}  {:<20}  {}",
            key.id,
            key.kind.to_string(),
            key.name,
            shown,
            key.created_at,
            key.revoked_at.as_deref().unwrap_or("-")
        );
    }
}
