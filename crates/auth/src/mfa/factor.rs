//! A user's MFA factors (`auth.mfa_factors`), as the user JSON, `listFactors()` and the admin API
//! show them.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::error::AuthError;

/// One factor row.
pub struct Factor {
    pub id: Uuid,
    pub friendly_name: Option<String>,
    pub factor_type: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub secret: Option<String>,
    pub phone: Option<String>,
    pub last_challenged_at: Option<DateTime<Utc>>,
    /// A WebAuthn factor's last ceremony (GoTrue's `last_webauthn_challenge_data`).
    pub last_webauthn_challenge_data: Option<Value>,
}

const COLUMNS: &str = "id, friendly_name, factor_type::text, status::text, created_at, \
                       updated_at, secret, phone, last_challenged_at, \
                       last_webauthn_challenge_data";

impl Factor {
    fn from_row(r: &tokio_postgres::Row) -> Factor {
        Factor {
            id: r.get(0),
            friendly_name: r.get(1),
            factor_type: r.get(2),
            status: r.get(3),
            created_at: r.get(4),
            updated_at: r.get(5),
            secret: r.get(6),
            phone: r.get(7),
            last_challenged_at: r.get(8),
            last_webauthn_challenge_data: r.get(9),
        }
    }

    /// The user's factors, oldest first.
    pub async fn of_user(db: &impl GenericClient, user_id: Uuid) -> Result<Vec<Factor>, AuthError> {
        let sql = format!(
            "select {COLUMNS} from auth.mfa_factors where user_id = $1 order by created_at"
        );
        let rows = db.query(&sql, &[&user_id]).await?;
        Ok(rows.iter().map(Factor::from_row).collect())
    }

    /// The factor `id` if `user_id` owns it: GoTrue answers 404 for a malformed id too.
    pub async fn owned(
        db: &impl GenericClient,
        user_id: Uuid,
        id: &str,
    ) -> Result<Factor, AuthError> {
        let id = Uuid::parse_str(id).map_err(|_| AuthError::FactorIdInvalid)?;
        let sql = format!("select {COLUMNS} from auth.mfa_factors where id = $1 and user_id = $2");
        db.query_opt(&sql, &[&id, &user_id])
            .await?
            .as_ref()
            .map(Factor::from_row)
            .ok_or(AuthError::MfaFactorNotFound)
    }

    pub fn is_verified(&self) -> bool {
        self.status == "verified"
    }

    /// GoTrue's factor JSON: the secret never, the name only when set.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        if let Some(name) = self.friendly_name.as_deref().filter(|n| !n.is_empty()) {
            m.insert("friendly_name".into(), json!(name));
        }
        m.insert("factor_type".into(), json!(self.factor_type));
        m.insert("status".into(), json!(self.status));
        m.insert("created_at".into(), json!(self.created_at));
        m.insert("updated_at".into(), json!(self.updated_at));
        m.insert(
            "phone".into(),
            json!(self.phone.clone().unwrap_or_default()),
        );
        m.insert("last_challenged_at".into(), json!(self.last_challenged_at));
        if let Some(last) = &self.last_webauthn_challenge_data {
            m.insert("last_webauthn_challenge_data".into(), last.clone());
        }
        Value::Object(m)
    }
}

/// The `factors` of the user JSON; GoTrue leaves the key out when there are none.
pub async fn factors_json(
    db: &impl GenericClient,
    user_id: Uuid,
) -> Result<Option<Value>, AuthError> {
    let factors = Factor::of_user(db, user_id).await?;
    Ok((!factors.is_empty()).then(|| Value::Array(factors.iter().map(Factor::to_json).collect())))
}
