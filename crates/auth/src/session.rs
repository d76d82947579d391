//! Sessions: creating one (a row in `auth.sessions`, its first refresh token and the access
//! token), the session JSON of §2.3, and `POST /logout`.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use deadpool_postgres::GenericClient;
use rand::distr::{Alphanumeric, SampleString};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bearer::Bearer;
use crate::error::AuthError;
use crate::jwt::{self, Amr};
use crate::redirect::Origin;
use crate::user::User;
use crate::AuthState;

/// Where a session is started from, kept on `auth.sessions` as GoTrue keeps it.
#[derive(Debug, Clone, Default)]
pub struct Device {
    user_agent: Option<String>,
    ip: Option<std::net::IpAddr>,
}

impl FromRequestParts<AuthState> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AuthState,
    ) -> Result<Self, Self::Rejection> {
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(512).collect());
        let ip = crate::limit::address(parts, &state.settings);
        Ok(Device { user_agent, ip })
    }
}

/// A refresh token in GoTrue v1's format: 12 alphanumeric characters.
pub fn new_refresh_token() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}

/// What a client is told about a session.
pub struct Issued {
    pub access_token: String,
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: Value,
}

impl Issued {
    /// The AccessTokenResponse body.
    pub fn to_json(&self, state: &AuthState) -> Value {
        json!({
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": state.settings.jwt_exp,
            "expires_at": self.expires_at,
            "refresh_token": self.refresh_token,
            "user": self.user,
        })
    }

    /// The same, as the fragment (or query) of a redirect after an email link.
    pub fn to_fragment(&self, state: &AuthState, kind: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", &self.access_token)
            .append_pair("expires_at", &self.expires_at.to_string())
            .append_pair("expires_in", &state.settings.jwt_exp.to_string())
            .append_pair("refresh_token", &self.refresh_token)
            .append_pair("token_type", "bearer")
            .append_pair("type", kind)
            .finish()
    }
}

/// Starts a session for `user` authenticated by `method`, inside the caller's transaction.
pub async fn create(
    state: &AuthState,
    db: &impl GenericClient,
    origin: &Origin,
    device: &Device,
    user: &User,
    method: &str,
) -> Result<Issued, AuthError> {
    if user.is_banned() {
        return Err(AuthError::UserBanned);
    }
    let session_id = Uuid::new_v4();
    db.execute(
        "insert into auth.sessions (id, user_id, created_at, updated_at, aal, refreshed_at, \
           user_agent, ip) values ($1, $2, now(), now(), 'aal1', null, $3, $4)",
        &[&session_id, &user.id, &device.user_agent, &device.ip],
    )
    .await?;
    db.execute(
        "insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, \
           authentication_method) values ($1, $2, now(), now(), $3)",
        &[&Uuid::new_v4(), &session_id, &method],
    )
    .await?;
    let refresh_token = new_refresh_token();
    db.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, \
           updated_at, parent, session_id) \
         values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), null, $3)",
        &[&refresh_token, &user.id.to_string(), &session_id],
    )
    .await?;
    db.execute(
        "update auth.users set last_sign_in_at = now() where id = $1",
        &[&user.id],
    )
    .await?;
    let user = User::find(db, user.id).await?.ok_or(AuthError::UserGone)?;
    issue(state, db, origin, &user, session_id, refresh_token).await
}

/// Signs an access token for an existing session and pairs it with `refresh_token`.
pub async fn issue(
    state: &AuthState,
    db: &impl GenericClient,
    origin: &Origin,
    user: &User,
    session_id: Uuid,
    refresh_token: String,
) -> Result<Issued, AuthError> {
    // The session's OAuth client and its methods, in one round trip.
    let rows = db
        .query(
            "select s.oauth_client_id, c.authentication_method, \
               extract(epoch from c.updated_at)::bigint \
             from auth.sessions s left join auth.mfa_amr_claims c on c.session_id = s.id \
             where s.id = $1 order by c.updated_at desc",
            &[&session_id],
        )
        .await?;
    let client_id: Option<Uuid> = rows.first().and_then(|r| r.get(0));
    let amr = rows
        .iter()
        .filter_map(|r| {
            Some(Amr {
                method: r.get::<_, Option<String>>(1)?,
                timestamp: r.get::<_, Option<i64>>(2)?,
            })
        })
        .collect::<Vec<_>>();
    let issuer = origin.issuer(&state.settings);
    let (access_token, expires_at) =
        jwt::sign_access_token(state, &issuer, user, session_id, &amr, client_id)?;
    Ok(Issued {
        access_token,
        expires_at,
        refresh_token,
        user: user.to_json(db).await?,
    })
}

/// `?scope=` of `POST /logout`.
#[derive(Deserialize, Default)]
pub struct LogoutQuery {
    scope: Option<String>,
}

/// `POST /logout?scope=global|local|others`: ends sessions of the caller; 204.
pub async fn logout(
    State(state): State<AuthState>,
    Query(query): Query<LogoutQuery>,
    bearer: Bearer,
) -> Result<StatusCode, AuthError> {
    // A live session of a user who still exists: a token without one cannot end sessions.
    let user_id = crate::user::in_session(&state, &bearer).await?.id;
    let session_id = bearer.session_id();
    let db = state.ctx.admin.get().await?;
    match query.scope.as_deref().unwrap_or("global") {
        "global" => {
            db.execute("delete from auth.sessions where user_id = $1", &[&user_id])
                .await?;
        }
        "local" => {
            if let Some(id) = session_id {
                db.execute(
                    "delete from auth.sessions where id = $1 and user_id = $2",
                    &[&id, &user_id],
                )
                .await?;
            }
        }
        "others" => {
            db.execute(
                "delete from auth.sessions where user_id = $1 and id is distinct from $2",
                &[&user_id, &session_id],
            )
            .await?;
        }
        _ => {
            return Err(AuthError::Validation(
                "Unsupported logout scope, must be one of global, local or others".into(),
            ))
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
