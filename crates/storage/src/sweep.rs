//! The sweep of orphaned bytes: versions in the store that no `storage.objects` row names.
//!
//! They are what a crash leaves between writing bytes and their row, or between a row's delete
//! and its bytes' (rows never outlive their bytes). Only bytes older than a grace period are
//! taken, so an upload whose row is being written right now is never touched. The last path
//! segment of every key is a version (a UUID), which finds the rows in batches.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;

use crate::error::StorageError;
use crate::{key, Storage};

/// How old unclaimed bytes must be before the sweep deletes them.
pub const GRACE: Duration = Duration::from_secs(3600);
/// How often `craftbase start` sweeps.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// Keys looked up per query.
const BATCH: usize = 500;

/// Deletes the bytes no row names that are older than `grace`; returns how many went.
pub async fn sweep(s: &Storage, grace: Duration) -> Result<usize, StorageError> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or_default();
    let mut listing = s.store.list(None);
    let mut batch = Vec::with_capacity(BATCH);
    let mut deleted = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if meta.last_modified < cutoff {
            batch.push(meta.location);
        }
        if batch.len() == BATCH {
            deleted += sweep_batch(s, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        deleted += sweep_batch(s, batch).await?;
    }
    Ok(deleted)
}

async fn sweep_batch(
    s: &Storage,
    batch: Vec<object_store::path::Path>,
) -> Result<usize, StorageError> {
    let versions: Vec<String> = batch
        .iter()
        .filter_map(|p| p.filename().map(str::to_owned))
        .collect();
    let client = s.ctx.admin.get().await?;
    let rows = client
        .query(
            "select bucket_id, name, version from storage.objects where version = any($1)",
            &[&versions],
        )
        .await?;
    let claimed: HashSet<object_store::path::Path> = rows
        .iter()
        .map(|r| key::location(r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut deleted = 0;
    for location in batch.into_iter().filter(|l| !claimed.contains(l)) {
        match s.store.delete(&location).await {
            Ok(()) => deleted += 1,
            Err(e) => tracing::warn!(error = %e, "cannot delete orphaned bytes"),
        }
    }
    Ok(deleted)
}

/// Sweeps every [`INTERVAL`] for as long as the runtime lives.
pub fn spawn(s: Storage) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tick.tick().await;
            match sweep(&s, GRACE).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "storage sweep removed orphaned bytes"),
                Err(e) => tracing::warn!(error = %e, "storage sweep failed"),
            }
        }
    });
}
