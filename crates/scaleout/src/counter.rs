//! Shared fixed-window counters in a NATS KV bucket: one key per (counter, window), updated by
//! compare-and-set on its revision, so concurrent nodes never lose a hit.
//!
//! Why NATS KV and not PostgreSQL: these counters are for limits checked on hot paths (realtime
//! messages per second per tenant, joins) where a database write per event would cost more than
//! the event; a KV update is one round trip to NATS. Auth's limits stay in PostgreSQL
//! (`auth.craftbase_rate_limits`): an auth request writes the database anyway, and they were
//! already shared by every node on one database.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bytes::Bytes;

use crate::error::{boxed, valid_key, ScaleoutError};

/// Compare-and-set attempts before a count is refused as contended.
const MAX_ATTEMPTS: usize = 64;

/// The counters of one bucket.
#[derive(Clone)]
pub struct Counters {
    store: kv::Store,
    max_window: Duration,
}

/// A counter's hits in the current window, this request's included, and the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hits {
    pub hits: u64,
    /// Time left in the window (by this node's clock).
    pub resets_in: Duration,
}

impl Hits {
    /// Whether a limit of `limit` per window still allows this request.
    pub fn within(&self, limit: u64) -> bool {
        self.hits <= limit
    }
}

impl Counters {
    pub(crate) fn new(store: kv::Store, max_window: Duration) -> Counters {
        Counters { store, max_window }
    }

    /// Adds `n` hits to `key` in its current `window` (windows aligned to the Unix epoch, so
    /// every node with a synchronised clock agrees which window a moment is in).
    pub async fn add(&self, key: &str, n: u64, window: Duration) -> Result<Hits, ScaleoutError> {
        if !valid_key(key) {
            return Err(ScaleoutError::InvalidKey(key.to_owned()));
        }
        if window > self.max_window || window.is_zero() {
            return Err(ScaleoutError::WindowTooLong {
                window,
                max: self.max_window,
            });
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let width = window.as_millis().max(1);
        let index = now.as_millis() / width;
        let resets_in = Duration::from_millis(((index + 1) * width - now.as_millis()) as u64);
        let entry_key = format!("{key}.w{}_{index}", width);
        for _ in 0..MAX_ATTEMPTS {
            if let Some(hits) = self.try_add(&entry_key, n).await? {
                return Ok(Hits { hits, resets_in });
            }
        }
        Err(ScaleoutError::Contended(key.to_owned()))
    }

    /// One compare-and-set; `None` when another node wrote first.
    async fn try_add(&self, key: &str, n: u64) -> Result<Option<u64>, ScaleoutError> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| ScaleoutError::nats("read counter")(boxed(e)))?;
        let current = entry.filter(|e| e.operation == kv::Operation::Put);
        match current {
            None => {
                let value = Bytes::from(n.to_string());
                match self.store.create(key, value).await {
                    Ok(_) => Ok(Some(n)),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                    Err(e) => Err(ScaleoutError::nats("create counter")(boxed(e))),
                }
            }
            Some(entry) => {
                let hits = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
                    .saturating_add(n);
                let value = Bytes::from(hits.to_string());
                match self.store.update(key, value, entry.revision).await {
                    Ok(_) => Ok(Some(hits)),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                    Err(e) => Err(ScaleoutError::nats("update counter")(boxed(e))),
                }
            }
        }
    }
}
