//! `grant_type=refresh_token`: rotation with reuse detection, exactly as §2.5 of the wire
//! reference describes it.
//!
//! The session row is locked first, so refreshes of one session run one at a time: the first
//! rotates, and the others then find the presented token revoked with the session's active
//! token as its direct child, and get that same child back.

use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::AuthError;
use crate::redirect::Origin;
use crate::session::{self, new_refresh_token};
use crate::user::User;
use crate::AuthState;

/// The body of a refresh.
#[derive(Deserialize)]
pub struct RefreshGrant {
    refresh_token: Option<String>,
    /// The OAuth client that authenticated at `/oauth/token`; never read from the body.
    #[serde(skip)]
    pub client: Option<Uuid>,
}

/// What a refresh leads to, decided under the session lock.
enum Outcome {
    /// Hand out this (possibly existing) token.
    Issue(String),
    /// The token came back too late: the family was revoked.
    Reused,
}

pub async fn grant(
    state: &AuthState,
    origin: &Origin,
    body: RefreshGrant,
) -> Result<Value, AuthError> {
    let Some(token) = body.refresh_token.filter(|t| !t.is_empty()) else {
        return Err(AuthError::OAuth {
            error: "invalid_request",
            description: "refresh_token required".into(),
        });
    };
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let found = tx
        .query_opt(
            "select id, session_id from auth.refresh_tokens where token = $1",
            &[&token],
        )
        .await?;
    let Some(found) = found else {
        return Err(AuthError::RefreshTokenNotFound);
    };
    let token_id: i64 = found.get(0);
    let Some(session_id) = found.get::<_, Option<Uuid>>(1) else {
        return Err(AuthError::RefreshSessionNotFound);
    };
    let session = tx
        .query_opt(
            "select user_id, oauth_client_id, (not_after is not null and not_after <= now()) \
               or ($2::float8 > 0 and now() > created_at + make_interval(secs => $2::float8)) \
               or ($3::float8 > 0 and now() > coalesce(refreshed_at at time zone 'utc', created_at) \
                   + make_interval(secs => $3::float8)) \
             from auth.sessions where id = $1 for update",
            &[
                &session_id,
                &(state.settings.sessions_timebox as f64),
                &(state.settings.sessions_inactivity_timeout as f64),
            ],
        )
        .await?;
    let Some(session) = session else {
        return Err(AuthError::RefreshSessionNotFound);
    };
    let user_id: Uuid = session.get(0);
    check_client(session.get(1), body.client)?;
    if session.get::<_, bool>(2) {
        return Err(AuthError::SessionExpired);
    }
    let user = User::find(&tx, user_id)
        .await?
        .ok_or(AuthError::RefreshSessionNotFound)?;
    if user.is_banned() {
        return Err(AuthError::UserBanned);
    }
    match decide(state, &tx, token_id, &token, session_id, &user).await? {
        Outcome::Issue(child) => {
            tx.execute(
                "update auth.sessions set refreshed_at = now() at time zone 'utc', \
                 updated_at = now() where id = $1",
                &[&session_id],
            )
            .await?;
            let issued = session::issue(state, &tx, origin, &user, session_id, child).await?;
            tx.commit().await?;
            Ok(issued.to_json(state))
        }
        Outcome::Reused => {
            // The revocation must stick even though the request fails.
            tx.commit().await?;
            Err(AuthError::RefreshTokenAlreadyUsed)
        }
    }
}

/// A session an OAuth client obtained is refreshed by that client only, at `/oauth/token`;
/// other sessions only at `/token`.
fn check_client(session: Option<Uuid>, caller: Option<Uuid>) -> Result<(), AuthError> {
    let refuse = |description: &'static str| AuthError::OAuth {
        error: "invalid_client",
        description: description.into(),
    };
    match (session, caller) {
        (Some(_), None) => Err(refuse("Client authentication required for OAuth session")),
        (Some(s), Some(c)) if s != c => {
            Err(refuse("Client does not match the session's OAuth client"))
        }
        (None, Some(_)) => Err(refuse(
            "Client authentication not allowed for non-OAuth session",
        )),
        _ => Ok(()),
    }
}

/// Rotation and reuse detection for the presented token, under the session lock.
async fn decide(
    state: &AuthState,
    tx: &impl GenericClient,
    token_id: i64,
    token: &str,
    session_id: Uuid,
    user: &User,
) -> Result<Outcome, AuthError> {
    let row = tx
        .query_one(
            "select revoked is true, now() < updated_at + make_interval(secs => $2) \
             from auth.refresh_tokens where id = $1",
            &[
                &token_id,
                &(state.settings.refresh_token_reuse_interval as f64),
            ],
        )
        .await?;
    let (revoked, within_interval): (bool, bool) = (row.get(0), row.get(1));
    if !revoked || !state.settings.refresh_token_rotation_enabled {
        if !state.settings.refresh_token_rotation_enabled && revoked {
            return Ok(Outcome::Reused);
        }
        return Ok(Outcome::Issue(
            rotate(tx, token_id, token, session_id, user).await?,
        ));
    }
    let active = tx
        .query_opt(
            "select token, parent from auth.refresh_tokens \
             where session_id = $1 and revoked is not true order by id desc limit 1",
            &[&session_id],
        )
        .await?;
    if let Some(active) = &active {
        if active.get::<_, Option<String>>(1).as_deref() == Some(token) {
            // A concurrent or retried refresh of the same token: the same child again.
            return Ok(Outcome::Issue(active.get(0)));
        }
    }
    // Only a token that was rotated (it has a child) may be reused within the interval; one
    // revoked along with its family stays dead.
    let rotated = tx
        .query_opt(
            "select 1 from auth.refresh_tokens where parent = $1 limit 1",
            &[&token],
        )
        .await?
        .is_some();
    if within_interval && rotated {
        tx.execute(
            "update auth.refresh_tokens set revoked = true, updated_at = now() \
             where session_id = $1 and revoked is not true",
            &[&session_id],
        )
        .await?;
        return Ok(Outcome::Issue(
            insert_child(tx, token, session_id, user).await?,
        ));
    }
    tx.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() \
         where session_id = $1 and revoked is not true",
        &[&session_id],
    )
    .await?;
    Ok(Outcome::Reused)
}

/// Revokes the presented token and adds its child.
async fn rotate(
    tx: &impl GenericClient,
    token_id: i64,
    token: &str,
    session_id: Uuid,
    user: &User,
) -> Result<String, AuthError> {
    tx.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1",
        &[&token_id],
    )
    .await?;
    insert_child(tx, token, session_id, user).await
}

async fn insert_child(
    tx: &impl GenericClient,
    parent: &str,
    session_id: Uuid,
    user: &User,
) -> Result<String, AuthError> {
    let child = new_refresh_token();
    tx.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, \
           updated_at, parent, session_id) \
         values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)",
        &[&child, &user.id.to_string(), &parent, &session_id],
    )
    .await?;
    Ok(child)
}
