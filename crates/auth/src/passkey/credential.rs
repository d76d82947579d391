//! A user's passkeys (`auth.webauthn_credentials`): GoTrue's columns for what apps and admins
//! read, and the verifier's own form of the credential in `credential`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Map, Value};
use uuid::Uuid;
use webauthn_rs::prelude::Passkey;

use super::error::WebAuthnError;
use crate::error::AuthError;

/// Longest friendly name, as GoTrue allows.
pub const MAX_FRIENDLY_NAME_CHARS: usize = 120;

/// One passkey as listed.
pub struct Listed {
    pub id: Uuid,
    pub friendly_name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

const LISTED: &str = "id, friendly_name, created_at, last_used_at";

impl Listed {
    fn from_row(r: &tokio_postgres::Row) -> Listed {
        Listed {
            id: r.get(0),
            friendly_name: r.get(1),
            created_at: r.get(2),
            last_used_at: r.get(3),
        }
    }

    /// GoTrue's passkey JSON: the name and last use only when there are some.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if !self.friendly_name.is_empty() {
            m.insert("friendly_name".into(), json!(self.friendly_name));
        }
        m.insert("created_at".into(), json!(self.created_at));
        if let Some(at) = self.last_used_at {
            m.insert("last_used_at".into(), json!(at));
        }
        Value::Object(m)
    }
}

/// The user's passkeys, oldest first.
pub async fn of_user(db: &impl GenericClient, user_id: Uuid) -> Result<Vec<Listed>, AuthError> {
    let sql = format!(
        "select {LISTED} from auth.webauthn_credentials where user_id = $1 order by created_at, id"
    );
    let rows = db.query(&sql, &[&user_id]).await?;
    Ok(rows.iter().map(Listed::from_row).collect())
}

/// How many passkeys the user has.
pub async fn count(db: &impl GenericClient, user_id: Uuid) -> Result<i64, AuthError> {
    let row = db
        .query_one(
            "select count(*) from auth.webauthn_credentials where user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.get(0))
}

/// The raw ids of the user's passkeys (the authenticator is told not to register them again).
pub async fn ids_of_user(
    db: &impl GenericClient,
    user_id: Uuid,
) -> Result<Vec<Vec<u8>>, AuthError> {
    let rows = db
        .query(
            "select credential_id from auth.webauthn_credentials where user_id = $1",
            &[&user_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The passkey `id` of `user_id`; a malformed id is not found, as in GoTrue.
pub async fn owned(db: &impl GenericClient, user_id: Uuid, id: &str) -> Result<Uuid, AuthError> {
    let id = Uuid::parse_str(id).map_err(|_| WebAuthnError::PasskeyNotFound)?;
    db.query_opt(
        "select id from auth.webauthn_credentials where id = $1 and user_id = $2",
        &[&id, &user_id],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| WebAuthnError::PasskeyNotFound.into())
}

/// The stored passkey with raw id `credential_id`, if `user_id` owns it: its row id and the
/// verifier's credential.
pub async fn by_credential_id(
    db: &impl GenericClient,
    user_id: Uuid,
    credential_id: &[u8],
) -> Result<Option<(Uuid, Passkey)>, AuthError> {
    let row = db
        .query_opt(
            "select id, credential from auth.webauthn_credentials \
             where credential_id = $1 and user_id = $2",
            &[&credential_id, &user_id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(stored): Option<Value> = row.get(1) else {
        return Ok(None);
    };
    let passkey = serde_json::from_value(stored)
        .map_err(|e| AuthError::Internal(format!("stored passkey: {e}")))?;
    Ok(Some((row.get(0), passkey)))
}

/// The flags and counter GoTrue keeps in columns, read from the verifier's credential.
struct Columns {
    sign_count: i64,
    transports: Value,
    backup_eligible: bool,
    backed_up: bool,
}

fn columns(stored: &Value) -> Columns {
    let cred = &stored["cred"];
    Columns {
        sign_count: cred["counter"].as_i64().unwrap_or(0),
        transports: match &cred["transports"] {
            Value::Array(a) => Value::Array(a.clone()),
            _ => json!([]),
        },
        backup_eligible: cred["backup_eligible"].as_bool().unwrap_or(false),
        backed_up: cred["backup_state"].as_bool().unwrap_or(false),
    }
}

fn to_value(passkey: &Passkey) -> Result<Value, AuthError> {
    serde_json::to_value(passkey).map_err(|e| AuthError::Internal(format!("passkey: {e}")))
}

/// Saves a newly registered passkey; an id some user already registered is
/// `webauthn_credential_exists`.
pub async fn insert(
    db: &impl GenericClient,
    user_id: Uuid,
    passkey: &Passkey,
    friendly_name: &str,
) -> Result<Listed, AuthError> {
    let stored = to_value(passkey)?;
    let c = columns(&stored);
    let public_key = serde_json::to_vec(passkey.get_public_key())
        .map_err(|e| AuthError::Internal(format!("passkey key: {e}")))?;
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    let sql = format!(
        "insert into auth.webauthn_credentials (id, user_id, credential_id, public_key, \
           attestation_type, sign_count, transports, backup_eligible, backed_up, friendly_name, \
           credential) values ($1, $2, $3, $4, 'none', $5, $6, $7, $8, $9, $10) \
         on conflict (credential_id) do nothing returning {LISTED}"
    );
    let row = db
        .query_opt(
            &sql,
            &[
                &Uuid::new_v4(),
                &user_id,
                &credential_id,
                &public_key,
                &c.sign_count,
                &c.transports,
                &c.backup_eligible,
                &c.backed_up,
                &friendly_name,
                &stored,
            ],
        )
        .await?
        .ok_or(WebAuthnError::CredentialExists)?;
    Ok(Listed::from_row(&row))
}

/// Records a sign-in with passkey `id`: when it was used, and its counter and backup state
/// as the verifier updated them.
pub async fn record_use(
    db: &impl GenericClient,
    id: Uuid,
    passkey: &Passkey,
) -> Result<(), AuthError> {
    let stored = to_value(passkey)?;
    let c = columns(&stored);
    db.execute(
        "update auth.webauthn_credentials set last_used_at = now(), updated_at = now(), \
           sign_count = $2, backed_up = $3, credential = $4 where id = $1",
        &[&id, &c.sign_count, &c.backed_up, &stored],
    )
    .await?;
    Ok(())
}
