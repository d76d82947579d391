//! Waiting for the slot: the benches that measure decoding against a ceiling.

use std::time::Duration;

/// Waits until the slots of the database have confirmed everything written so far (what was
/// written has been decoded).
pub async fn caught_up(sql: &tokio_postgres::Client) {
    let target: String = sql
        .query_one("select pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    loop {
        let caught: bool = sql
            .query_one(
                "select bool_and(confirmed_flush_lsn >= $1::text::pg_lsn) from pg_replication_slots
                 where database = current_database()",
                &[&target],
            )
            .await
            .unwrap()
            .get(0);
        if caught {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
