//! Guesses at emailed codes (craftbase's own; GoTrue counts none): every `POST /verify` with an
//! email and a code counts, before the code is checked, against each user holding a code sent
//! to that address, whatever client sends it. Past the limit, those users' emailed codes are
//! void; a new code (sent by `/otp`, `/resend`, ...) starts the count again, and so does a right
//! code. The count is committed on its own, so a failed verification cannot roll it back.
//! Wrong reauthentication nonces given to `PUT /user` count the same way, per user.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::error::AuthError;
use crate::AuthState;

/// The `one_time_tokens` kinds a code mailed to an address redeems.
const EMAILED: &str = "('confirmation_token', 'recovery_token', 'email_change_token_new', \
                       'email_change_token_current')";

/// Counts a guess at the codes sent to `email`; past the limit, voids them and refuses.
pub async fn count(
    state: &AuthState,
    db: &impl GenericClient,
    email: &str,
) -> Result<(), AuthError> {
    let rows = db
        .query(
            &format!(
                "insert into auth.otp_failures as f (user_id, failures, last_failed_at) \
                   select distinct user_id, 1, now() from auth.one_time_tokens \
                   where relates_to = $1 and token_type in {EMAILED} \
                 on conflict (user_id) do update set failures = f.failures + 1, \
                   last_failed_at = now() \
                 returning user_id, failures"
            ),
            &[&email],
        )
        .await?;
    let max = state.settings.otp_max_failed_attempts.max(1);
    let over: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.get::<_, i32>(1) > max)
        .map(|r| r.get(0))
        .collect();
    if over.is_empty() {
        return Ok(());
    }
    db.execute(
        "update auth.users set confirmation_token = '', recovery_token = '', \
           email_change_token_new = '', email_change_token_current = '' where id = any($1)",
        &[&over],
    )
    .await?;
    db.execute(
        &format!(
            "delete from auth.one_time_tokens where user_id = any($1) and token_type in {EMAILED}"
        ),
        &[&over],
    )
    .await?;
    tracing::warn!(
        users = over.len(),
        "emailed codes voided after repeated wrong guesses"
    );
    Err(AuthError::OtpExpired)
}

/// A wrong reauthentication nonce of `user_id` (`PUT /user`): counted on a connection of its
/// own, since the request's transaction rolls back; past the limit the nonce is void.
pub async fn count_nonce(state: &AuthState, user_id: Uuid) -> Result<(), AuthError> {
    let db = state.ctx.admin.get().await?;
    let failures: i32 = db
        .query_one(
            "insert into auth.otp_failures as f (user_id, failures, last_failed_at) \
               values ($1, 1, now()) \
             on conflict (user_id) do update set failures = f.failures + 1, \
               last_failed_at = now() \
             returning failures",
            &[&user_id],
        )
        .await?
        .get(0);
    if failures >= state.settings.otp_max_failed_attempts.max(1) {
        db.execute(
            "update auth.users set reauthentication_token = '' where id = $1",
            &[&user_id],
        )
        .await?;
        db.execute(
            "delete from auth.one_time_tokens where user_id = $1 \
               and token_type = 'reauthentication_token'",
            &[&user_id],
        )
        .await?;
        tracing::warn!(%user_id, "reauthentication nonce voided after repeated wrong guesses");
    }
    Ok(())
}

/// A new code was sent to `user_id`, or one was redeemed: the count starts again.
pub async fn reset(db: &impl GenericClient, user_id: Uuid) -> Result<(), AuthError> {
    db.execute(
        "delete from auth.otp_failures where user_id = $1",
        &[&user_id],
    )
    .await?;
    Ok(())
}
