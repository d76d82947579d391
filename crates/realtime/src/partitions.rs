//! Keeps `realtime.messages`' daily partitions: tomorrow's exist before tomorrow (an insert into
//! a day without one would fail, and with it `realtime.send` and private-channel checks), and
//! days past the retention are dropped whole, which costs nothing like deleting rows.

use std::time::Duration;

use deadpool_postgres::Pool;

/// Days of partitions made ahead of today.
const DAYS_AHEAD: i32 = 3;
/// Days of messages kept before today (broadcast replay reads at most this far back).
const RETENTION_DAYS: i32 = 3;
/// How often the partitions are checked.
const EVERY: Duration = Duration::from_secs(3600);

/// Runs forever: once now, then every hour. A failure (say the database is down) is logged and
/// retried at the next turn; three days of partitions ahead leave plenty of turns.
pub async fn maintain(pool: Pool) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match run_once(&pool).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, "dropped expired realtime.messages partitions"),
            Err(e) => tracing::warn!(error = %e, "cannot maintain realtime.messages partitions"),
        }
    }
}

/// Makes the partitions ahead and drops the expired ones; returns how many were dropped.
pub async fn run_once(pool: &Pool) -> anyhow::Result<i32> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "select realtime.craftbase_maintain_partitions($1, $2)",
            &[&DAYS_AHEAD, &RETENTION_DAYS],
        )
        .await?;
    Ok(row.get(0))
}
