//! Expiry of rows that requests without a session write (`/authorize` and PKCE flow states,
//! verifiers towards providers, OAuth-server authorizations, MFA challenges): each kind is
//! deleted in bounded batches when a new row of it is written, and by a task every few
//! minutes (passkey ceremonies once they expire). GoTrue's own cleanup keeps flow states, provider verifiers and challenges for
//! 24 hours; craftbase drops flow states no user ever reached (an abandoned `/authorize`)
//! and provider verifiers after an hour, and authorizations once they expire. Rate-limit
//! counters whose window has ended go too.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool, PoolError};

use crate::error::AuthError;

/// Rows one statement deletes at most.
const BATCH: i64 = 1000;
/// Rows deleted at most before each insert.
const ON_INSERT: i64 = 100;
/// How often the task sweeps.
const EVERY: Duration = Duration::from_secs(300);

/// An expiring kind of row.
#[derive(Debug, Clone, Copy)]
pub enum Expiring {
    FlowState,
    ProviderVerifier,
    OAuthAuthorization,
    MfaChallenge,
    RateLimitWindow,
    WebAuthnChallenge,
}

impl Expiring {
    const ALL: [Expiring; 6] = [
        Expiring::FlowState,
        Expiring::ProviderVerifier,
        Expiring::OAuthAuthorization,
        Expiring::MfaChallenge,
        Expiring::RateLimitWindow,
        Expiring::WebAuthnChallenge,
    ];

    /// Deletes up to `$1` expired rows; `skip locked` leaves rows in use alone.
    fn statement(self) -> &'static str {
        match self {
            Expiring::FlowState => {
                "delete from auth.flow_state where id in (select id from auth.flow_state \
                   where created_at < now() - interval '24 hours' \
                      or (user_id is null and created_at < now() - interval '1 hour') \
                   limit $1 for update skip locked)"
            }
            Expiring::ProviderVerifier => {
                "delete from auth.oauth_client_states where id in (select id from \
                   auth.oauth_client_states where created_at < now() - interval '1 hour' \
                   limit $1 for update skip locked)"
            }
            Expiring::OAuthAuthorization => {
                "delete from auth.oauth_authorizations where id in (select id from \
                   auth.oauth_authorizations where expires_at < now() \
                   limit $1 for update skip locked)"
            }
            Expiring::MfaChallenge => {
                "delete from auth.mfa_challenges where id in (select id from \
                   auth.mfa_challenges where created_at < now() - interval '24 hours' \
                   limit $1 for update skip locked)"
            }
            Expiring::RateLimitWindow => {
                "delete from auth.craftbase_rate_limits where (bucket, key) in (select bucket, key \
                   from auth.craftbase_rate_limits where expires_at < now() \
                   limit $1 for update skip locked)"
            }
            Expiring::WebAuthnChallenge => {
                "delete from auth.webauthn_challenges where id in (select id from \
                   auth.webauthn_challenges where expires_at < now() \
                   limit $1 for update skip locked)"
            }
        }
    }
}

/// Before writing a row of `kind`: drops a bounded number of expired ones.
pub async fn before_insert(db: &impl GenericClient, kind: Expiring) -> Result<(), AuthError> {
    db.execute(kind.statement(), &[&ON_INSERT]).await?;
    Ok(())
}

/// Sweeps every kind once, batch after batch while batches come back full (at most ten).
pub async fn all(db: &impl GenericClient) -> Result<u64, AuthError> {
    let mut total = 0;
    for kind in Expiring::ALL {
        for _ in 0..10 {
            let n = db.execute(kind.statement(), &[&BATCH]).await?;
            total += n;
            if n < BATCH as u64 {
                break;
            }
        }
    }
    Ok(total)
}

/// Sweeps every [`EVERY`] until the pool closes (craftbase shutting down).
pub fn spawn(pool: Pool) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(EVERY);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let db = match pool.get().await {
                Ok(db) => db,
                Err(PoolError::Closed) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "sweep skipped: no connection");
                    continue;
                }
            };
            match all(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(rows = n, "expired auth rows swept"),
                Err(e) => tracing::warn!(error = %e, "sweeping expired auth rows failed"),
            }
        }
    });
}
