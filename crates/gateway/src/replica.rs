//! A read replica: REST reads (GET and HEAD, which run in read-only transactions) go to a
//! standby's pool while it is at most `max_lag` behind the primary, and to the primary
//! otherwise, so a lagging, paused or unreachable standby only costs the primary the reads.
//!
//! Lag is measured by WAL position, not by `pg_last_xact_replay_timestamp()` (which reads as
//! ever-growing lag when the primary is merely idle): every tick the primary's
//! `pg_current_wal_lsn()` is sampled, then the standby's `pg_last_wal_replay_lsn()`; the standby
//! has replayed everything the primary had written at the newest sample it has reached, so its
//! staleness is that sample's age. The estimate errs by up to one tick, on the side of the
//! primary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::time::Instant;

/// Samples of the primary's position kept at most (an hour of ticks at the fastest rate).
const MAX_SAMPLES: usize = 72_000;

/// The standby's pool and whether it is fresh enough to read from now.
pub struct ReadReplica {
    pool: Pool,
    max_lag: Duration,
    fresh: AtomicBool,
}

impl std::fmt::Debug for ReadReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadReplica")
            .field("max_lag", &self.max_lag)
            .field("fresh", &self.fresh.load(Ordering::Relaxed))
            .finish()
    }
}

impl ReadReplica {
    /// Reads go to `replica` (connections as `authenticator` to the standby) while it keeps up
    /// with `primary` within `max_lag`; watched from a task that ends with the last handle.
    pub fn start(replica: Pool, primary: Pool, max_lag: Duration) -> Arc<ReadReplica> {
        let this = Arc::new(ReadReplica {
            pool: replica,
            max_lag,
            fresh: AtomicBool::new(false),
        });
        tokio::spawn(watch(Arc::downgrade(&this), primary));
        this
    }

    /// The standby's pool, if reads may go there now.
    pub fn pool(&self) -> Option<&Pool> {
        self.fresh.load(Ordering::Relaxed).then_some(&self.pool)
    }

    /// The longest staleness reads accept.
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }
}

/// How often positions are compared: a quarter of the accepted lag, within 50 ms to 1 s.
fn tick(max_lag: Duration) -> Duration {
    (max_lag / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

async fn watch(replica: Weak<ReadReplica>, primary: Pool) {
    let Some(first) = replica.upgrade() else {
        return;
    };
    let mut interval = tokio::time::interval(tick(first.max_lag));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    drop(first);
    let mut samples: VecDeque<(Instant, f64)> = VecDeque::new();
    let mut was_fresh = false;
    let mut warned_not_standby = false;
    loop {
        interval.tick().await;
        let Some(replica) = replica.upgrade() else {
            return;
        };
        let sampled = Instant::now();
        match primary_position(&primary).await {
            Ok(position) => samples.push_back((sampled, position)),
            Err(e) => tracing::debug!(error = %e, "cannot read the primary's WAL position"),
        }
        let fresh = match standby_position(&replica.pool).await {
            Ok(Some(replayed)) => {
                // The newest sample the standby has reached; older ones are no longer needed.
                let reached = samples.iter().rposition(|(_, p)| *p <= replayed);
                if let Some(i) = reached {
                    samples.drain(..i);
                }
                reached.is_some_and(|_| samples[0].0.elapsed() <= replica.max_lag)
            }
            Ok(None) => {
                if !warned_not_standby {
                    tracing::warn!("the read replica is not a standby (not in recovery); reads stay on the primary");
                    warned_not_standby = true;
                }
                false
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the read replica's position");
                false
            }
        };
        while samples.len() > MAX_SAMPLES {
            samples.pop_front();
        }
        if fresh != was_fresh {
            match fresh {
                true => tracing::info!("read replica within its maximum lag: REST reads go to it"),
                false => tracing::warn!(
                    max_lag_ms = replica.max_lag.as_millis() as u64,
                    "read replica lagging or unreachable: REST reads go to the primary"
                ),
            }
            was_fresh = fresh;
        }
        replica.fresh.store(fresh, Ordering::Relaxed);
    }
}

/// The primary's current WAL position, in bytes.
async fn primary_position(primary: &Pool) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    let client = primary.get().await?;
    let row = client
        .query_one("select (pg_current_wal_lsn() - '0/0')::float8", &[])
        .await?;
    Ok(row.get(0))
}

/// The standby's replayed WAL position in bytes; `None` when the server is not a standby.
async fn standby_position(
    standby: &Pool,
) -> Result<Option<f64>, Box<dyn std::error::Error + Send + Sync>> {
    let client = standby.get().await?;
    let row = client
        .query_one(
            "select pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::float8",
            &[],
        )
        .await?;
    let in_recovery: bool = row.get(0);
    Ok(if in_recovery { row.get(1) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_accepted_lag_within_bounds() {
        assert_eq!(tick(Duration::from_secs(1)), Duration::from_millis(250));
        assert_eq!(tick(Duration::from_millis(10)), Duration::from_millis(50));
        assert_eq!(tick(Duration::from_secs(60)), Duration::from_secs(1));
    }
}
