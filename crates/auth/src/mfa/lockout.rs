//! A factor's lockout after repeated wrong codes (craftbase's own; GoTrue leaves it to a hook):
//! every verification attempt counts in `auth.mfa_factor_failures` before its code is checked,
//! so parallel guesses cannot overtake the count; a right code clears it. Past the limit within
//! the lockout duration, attempts are refused until that long after the last counted one.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::error::AuthError;
use crate::AuthState;

/// Counts one attempt at `factor_id`; refuses it when the factor is locked.
pub async fn count_attempt(
    state: &AuthState,
    db: &impl GenericClient,
    factor_id: Uuid,
) -> Result<(), AuthError> {
    let s = &state.settings;
    let window = s.mfa_lockout_duration.as_secs_f64();
    let max = s.mfa_max_failed_verifications.max(1);
    // A locked factor's count grows but its clock does not move, so the lock ends on time.
    let row = db
        .query_one(
            "insert into auth.mfa_factor_failures as f (factor_id, failures, last_failed_at) \
               values ($1, 1, now()) \
             on conflict (factor_id) do update set \
               failures = case when f.last_failed_at + make_interval(secs => $2) < now() \
                 then 1 else f.failures + 1 end, \
               last_failed_at = case when f.failures >= $3 \
                 and f.last_failed_at + make_interval(secs => $2) >= now() \
                 then f.last_failed_at else now() end \
             returning failures",
            &[&factor_id, &window, &max],
        )
        .await?;
    let attempts: i32 = row.get(0);
    if attempts > max {
        tracing::warn!(%factor_id, "mfa factor locked after repeated wrong codes");
        return Err(AuthError::MfaVerificationRejected);
    }
    Ok(())
}

/// A right code: the factor's count starts again.
pub async fn clear(db: &impl GenericClient, factor_id: Uuid) -> Result<(), AuthError> {
    db.execute(
        "delete from auth.mfa_factor_failures where factor_id = $1",
        &[&factor_id],
    )
    .await?;
    Ok(())
}
