//! Passkey ceremonies between their options and their verification (`auth.webauthn_challenges`):
//! the ceremony state stays on the server, expires, and is deleted by the verification that
//! reads it, so a challenge verifies at most once.

use deadpool_postgres::GenericClient;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::error::WebAuthnError;
use crate::error::AuthError;
use crate::sweep::{self, Expiring};
use crate::AuthState;

/// Open ceremonies one user may have of a kind (each options request writes one).
const OPEN_PER_USER: i64 = 10;

/// Which ceremony a challenge belongs to, as GoTrue's `challenge_type` names it.
#[derive(Debug, Clone, Copy)]
pub enum Ceremony {
    Registration,
    Authentication,
}

impl Ceremony {
    fn as_str(self) -> &'static str {
        match self {
            Ceremony::Registration => "registration",
            Ceremony::Authentication => "authentication",
        }
    }
}

/// A stored ceremony: its id and expiry (Unix seconds) for the options response.
pub struct Stored {
    pub id: Uuid,
    pub expires_at: i64,
}

/// Stores `state` for `user_id` (none for a sign-in, where the user is not known yet).
pub async fn store(
    state: &AuthState,
    ceremony: Ceremony,
    user_id: Option<Uuid>,
    session: &impl Serialize,
) -> Result<Stored, AuthError> {
    let data = serde_json::to_value(session)
        .map_err(|e| AuthError::Internal(format!("webauthn state: {e}")))?;
    let db = state.ctx.admin.get().await?;
    sweep::before_insert(&db, Expiring::WebAuthnChallenge).await?;
    if let Some(user_id) = user_id {
        // A user's open ceremonies are bounded: asking for options again drops the oldest.
        db.execute(
            "delete from auth.webauthn_challenges where id in (select id from \
               auth.webauthn_challenges where user_id = $1 and challenge_type = $2 \
               order by created_at desc offset $3)",
            &[&user_id, &ceremony.as_str(), &(OPEN_PER_USER - 1)],
        )
        .await?;
    }
    let seconds = state
        .settings
        .webauthn
        .webauthn_challenge_expiry_duration
        .as_secs_f64();
    let id = Uuid::new_v4();
    let row = db
        .query_one(
            "insert into auth.webauthn_challenges (id, user_id, challenge_type, session_data, \
               created_at, expires_at) \
             values ($1, $2, $3, $4, now(), now() + make_interval(secs => $5)) \
             returning extract(epoch from expires_at)::bigint",
            &[&id, &user_id, &ceremony.as_str(), &data, &seconds],
        )
        .await?;
    Ok(Stored {
        id,
        expires_at: row.get(0),
    })
}

/// Deletes and returns the ceremony `id` of `ceremony` for `user_id`: unknown, used, of another
/// user or another kind is `webauthn_challenge_not_found`; past its expiry, `_expired`.
pub async fn consume<T: DeserializeOwned>(
    db: &impl GenericClient,
    ceremony: Ceremony,
    user_id: Option<Uuid>,
    id: &str,
) -> Result<T, AuthError> {
    let id = parse_challenge_id(id)?;
    let row = db
        .query_opt(
            "delete from auth.webauthn_challenges where id = $1 and challenge_type = $2 \
               and user_id is not distinct from $3 \
             returning session_data, expires_at < now()",
            &[&id, &ceremony.as_str(), &user_id],
        )
        .await?
        .ok_or(WebAuthnError::ChallengeNotFound)?;
    let (data, expired): (Value, bool) = (row.get(0), row.get(1));
    if expired {
        return Err(WebAuthnError::ChallengeExpired.into());
    }
    serde_json::from_value(data).map_err(|e| AuthError::Internal(format!("webauthn state: {e}")))
}

/// GoTrue's checks of `challenge_id`: present, then a UUID.
pub fn parse_challenge_id(id: &str) -> Result<Uuid, AuthError> {
    if id.is_empty() {
        return Err(WebAuthnError::Invalid("challenge_id is required").into());
    }
    Uuid::parse_str(id)
        .map_err(|_| WebAuthnError::Invalid("challenge_id must be a valid UUID").into())
}
