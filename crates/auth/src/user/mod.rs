//! Users: the `auth.users` row, its JSON (§2.3) and creation; `account` serves the signed-in
//! user's own endpoints.

mod account;

pub use account::{get, reauthenticate, update};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::bearer::Bearer;
use crate::error::AuthError;
use crate::AuthState;

/// The columns [`User::from_row`] reads, in order.
pub const COLUMNS: &str = "id, coalesce(aud, ''), coalesce(role, ''), email, phone, \
    encrypted_password, email_confirmed_at, phone_confirmed_at, confirmed_at, \
    confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at, invited_at, \
    last_sign_in_at, coalesce(raw_app_meta_data, '{}'), coalesce(raw_user_meta_data, '{}'), \
    created_at, updated_at, banned_until, deleted_at, is_anonymous, is_sso_user";

/// One row of `auth.users`.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub aud: String,
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub encrypted_password: Option<String>,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub phone_confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    pub recovery_sent_at: Option<DateTime<Utc>>,
    pub email_change: Option<String>,
    pub email_change_sent_at: Option<DateTime<Utc>>,
    pub invited_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub banned_until: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub is_anonymous: bool,
    pub is_sso_user: bool,
}

impl User {
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> User {
        User {
            id: row.get(0),
            aud: row.get(1),
            role: row.get(2),
            email: row.get(3),
            phone: row.get(4),
            encrypted_password: row.get(5),
            email_confirmed_at: row.get(6),
            phone_confirmed_at: row.get(7),
            confirmed_at: row.get(8),
            confirmation_sent_at: row.get(9),
            recovery_sent_at: row.get(10),
            email_change: row.get(11),
            email_change_sent_at: row.get(12),
            invited_at: row.get(13),
            last_sign_in_at: row.get(14),
            app_metadata: row.get(15),
            user_metadata: row.get(16),
            created_at: row.get(17),
            updated_at: row.get(18),
            banned_until: row.get(19),
            deleted_at: row.get(20),
            is_anonymous: row.get(21),
            is_sso_user: row.get(22),
        }
    }

    /// The user with `id`, if any.
    pub async fn find(db: &impl GenericClient, id: Uuid) -> Result<Option<User>, AuthError> {
        let sql = format!("select {COLUMNS} from auth.users where id = $1");
        Ok(db
            .query_opt(&sql, &[&id])
            .await?
            .as_ref()
            .map(User::from_row))
    }

    /// The user with `id`, locked for the rest of the transaction.
    pub async fn lock(db: &impl GenericClient, id: Uuid) -> Result<Option<User>, AuthError> {
        let sql = format!("select {COLUMNS} from auth.users where id = $1 for update");
        Ok(db
            .query_opt(&sql, &[&id])
            .await?
            .as_ref()
            .map(User::from_row))
    }

    /// The (non-SSO) user with this normalised email, if any.
    pub async fn find_by_email(
        db: &impl GenericClient,
        email: &str,
    ) -> Result<Option<User>, AuthError> {
        let sql =
            format!("select {COLUMNS} from auth.users where lower(email) = $1 and not is_sso_user");
        Ok(db
            .query_opt(&sql, &[&email])
            .await?
            .as_ref()
            .map(User::from_row))
    }

    /// Users in creation order, for the admin list.
    pub async fn page(
        db: &impl GenericClient,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<User>, AuthError> {
        let sql = format!(
            "select {COLUMNS} from auth.users order by created_at desc, id limit $1 offset $2"
        );
        Ok(db
            .query(&sql, &[&limit, &offset])
            .await?
            .iter()
            .map(User::from_row)
            .collect())
    }

    /// True while a ban is in force.
    pub fn is_banned(&self) -> bool {
        self.banned_until.is_some_and(|until| until > Utc::now())
    }

    /// The user as GoTrue serialises it, with its identities.
    pub async fn to_json(&self, db: &impl GenericClient) -> Result<Value, AuthError> {
        // Both queries go out pipelined on the one connection.
        let (identities, factors) = tokio::try_join!(
            identities_json(db, self.id),
            crate::mfa::factor::factors_json(db, self.id)
        )?;
        let mut json = self.json_with(identities);
        if let Some(factors) = factors {
            json["factors"] = factors;
        }
        Ok(json)
    }

    /// The user JSON with the given `identities` array.
    pub fn json_with(&self, identities: Value) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("aud".into(), json!(self.aud));
        m.insert("role".into(), json!(self.role));
        m.insert(
            "email".into(),
            json!(self.email.clone().unwrap_or_default()),
        );
        let mut time = |key: &str, t: &Option<DateTime<Utc>>| {
            if let Some(t) = t {
                m.insert(key.into(), json!(t));
            }
        };
        time("email_confirmed_at", &self.email_confirmed_at);
        time("phone_confirmed_at", &self.phone_confirmed_at);
        time("confirmation_sent_at", &self.confirmation_sent_at);
        time("confirmed_at", &self.confirmed_at);
        time("recovery_sent_at", &self.recovery_sent_at);
        time("email_change_sent_at", &self.email_change_sent_at);
        time("invited_at", &self.invited_at);
        time("last_sign_in_at", &self.last_sign_in_at);
        time("banned_until", &self.banned_until);
        time("deleted_at", &self.deleted_at);
        m.insert(
            "phone".into(),
            json!(self.phone.clone().unwrap_or_default()),
        );
        if let Some(new_email) = self.email_change.as_deref().filter(|e| !e.is_empty()) {
            m.insert("new_email".into(), json!(new_email));
        }
        m.insert("app_metadata".into(), self.app_metadata.clone());
        m.insert("user_metadata".into(), self.user_metadata.clone());
        m.insert("identities".into(), identities);
        m.insert("created_at".into(), json!(self.created_at));
        m.insert("updated_at".into(), json!(self.updated_at));
        m.insert("is_anonymous".into(), json!(self.is_anonymous));
        m.insert("is_sso_user".into(), json!(self.is_sso_user));
        Value::Object(m)
    }
}

/// The user's identities as §2.3 lists them.
async fn identities_json(db: &impl GenericClient, user_id: Uuid) -> Result<Value, AuthError> {
    let rows = db
        .query(
            "select id, provider_id, user_id, identity_data, provider, last_sign_in_at, \
             created_at, updated_at, email from auth.identities where user_id = $1 \
             order by created_at",
            &[&user_id],
        )
        .await?;
    let list = rows
        .iter()
        .map(|r| {
            json!({
                "identity_id": r.get::<_, Uuid>(0),
                "id": r.get::<_, String>(1),
                "user_id": r.get::<_, Uuid>(2),
                "identity_data": r.get::<_, Value>(3),
                "provider": r.get::<_, String>(4),
                "last_sign_in_at": r.get::<_, Option<DateTime<Utc>>>(5),
                "created_at": r.get::<_, Option<DateTime<Utc>>>(6),
                "updated_at": r.get::<_, Option<DateTime<Utc>>>(7),
                "email": r.get::<_, Option<String>>(8),
            })
        })
        .collect();
    Ok(Value::Array(list))
}

/// Inserts a user and, when it has an email, its `email` identity. Returns the new user.
pub struct NewUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub email: Option<&'a str>,
    pub encrypted_password: Option<&'a str>,
    pub confirmed: bool,
    pub user_metadata: &'a Value,
    pub app_metadata: &'a Value,
    pub role: &'a str,
    pub is_anonymous: bool,
    pub invited: bool,
    /// An external provider the user signs up through; its identity is the caller's to add.
    pub provider: Option<&'a str>,
}

impl<'a> NewUser<'a> {
    /// The user a mailed link or code creates for a new address: unconfirmed, signing in by
    /// email, with a password only when one was given.
    pub fn unconfirmed_email(
        aud: &'a str,
        email: &'a str,
        encrypted_password: Option<&'a str>,
        user_metadata: &'a Value,
        invited: bool,
    ) -> NewUser<'a> {
        NewUser {
            id: Uuid::new_v4(),
            aud,
            email: Some(email),
            encrypted_password,
            confirmed: false,
            user_metadata,
            app_metadata: &Value::Null,
            role: "authenticated",
            is_anonymous: false,
            invited,
            provider: None,
        }
    }

    pub async fn insert(&self, db: &impl GenericClient) -> Result<User, AuthError> {
        let provider = match self.provider {
            Some(p) => p,
            None if self.is_anonymous => "anonymous",
            None => "email",
        };
        let mut app_metadata = json!({"provider": provider, "providers": [provider]});
        if let (Some(extra), Some(target)) =
            (self.app_metadata.as_object(), app_metadata.as_object_mut())
        {
            for (k, v) in extra {
                target.insert(k.clone(), v.clone());
            }
        }
        db.execute(
            "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, \
               email_confirmed_at, invited_at, raw_app_meta_data, raw_user_meta_data, created_at, \
               updated_at, is_anonymous, is_super_admin, confirmation_token, recovery_token, \
               email_change_token_new, email_change) \
             values ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, \
               case when $6 then now() end, case when $10 then now() end, $7, $8, now(), now(), \
               $9, false, '', '', '', '')",
            &[
                &self.id,
                &self.aud,
                &self.role,
                &self.email,
                &self.encrypted_password,
                &self.confirmed,
                &app_metadata,
                self.user_metadata,
                &self.is_anonymous,
                &self.invited,
            ],
        )
        .await?;
        if let (Some(email), None) = (self.email, self.provider) {
            let data = json!({
                "sub": self.id.to_string(),
                "email": email,
                "email_verified": self.confirmed,
                "phone_verified": false,
            });
            db.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, \
                   last_sign_in_at, created_at, updated_at) \
                 values ($1, $2, $3, 'email', now(), now(), now())",
                &[&self.id.to_string(), &self.id, &data],
            )
            .await?;
        }
        User::find(db, self.id)
            .await?
            .ok_or_else(|| AuthError::Internal("inserted user vanished".into()))
    }
}

/// Merges `patch` into the object `base`; a null value removes the key, as GoTrue does.
pub fn merge_metadata(base: &Value, patch: &Map<String, Value>) -> Value {
    let mut out = base.as_object().cloned().unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The signed-in user of a request, checked against its session.
pub async fn current(state: &AuthState, bearer: &Bearer) -> Result<User, AuthError> {
    let user_id = bearer.user_id()?;
    let db = state.ctx.admin.get().await?;
    if let Some(session_id) = bearer.session_id() {
        let live = db
            .query_opt(
                "select 1 from auth.sessions where id = $1 and user_id = $2 \
                 and (not_after is null or not_after > now())",
                &[&session_id, &user_id],
            )
            .await?;
        if live.is_none() {
            return Err(AuthError::SessionGone);
        }
    }
    User::find(&db, user_id).await?.ok_or(AuthError::UserGone)
}

/// The signed-in user of a request that changes the account or ends sessions (`PUT /user`,
/// `/logout`, `/reauthenticate`): its token must name a session that is still live. A token
/// without one (signed outside a sign-in) is refused rather than trusted with the account.
pub async fn in_session(state: &AuthState, bearer: &Bearer) -> Result<User, AuthError> {
    if bearer.session_id().is_none() {
        return Err(AuthError::SessionGone);
    }
    current(state, bearer).await
}

/// `?redirect_to=` of requests that may send mail.
#[derive(Deserialize, Default)]
pub struct RedirectQuery {
    pub redirect_to: Option<String>,
}
