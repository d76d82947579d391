//! Rate-limit counters in PostgreSQL (`auth.craftbase_rate_limits`), so every craftbase node on
//! one database enforces one limit: a request's counts are one upsert of fixed-window rows that
//! returns each row's hits. A refusal is also remembered in this process until its window ends,
//! which spares the database while a client keeps hammering and cannot let anyone through: a
//! window's hits only grow until it ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use crate::error::AuthError;

/// Refusals remembered at most before expired ones are dropped (then all, if still too many).
const MAX_REMEMBERED: usize = 10_000;
/// Hits stop growing here, so a flood never overflows the column.
const HITS_CAP: i32 = 1_000_000_000;

/// Adds one hit to each `(bucket, key)` row, starting a new window where the last has ended;
/// answers each row's hits and the seconds left in its window.
const TAKE: &str = "insert into auth.craftbase_rate_limits as r (bucket, key, hits, expires_at)
  select t.bucket, t.key, 1, now() + make_interval(secs => t.seconds)
    from unnest($1::text[], $2::text[], $3::float8[]) as t(bucket, key, seconds)
  on conflict (bucket, key) do update set
    hits = case when r.expires_at <= now() then 1
                when r.hits >= $4 then r.hits
                else r.hits + 1 end,
    expires_at = case when r.expires_at <= now() then excluded.expires_at
                      else r.expires_at end
  returning r.bucket, r.key, r.hits, extract(epoch from r.expires_at - now())::float8";

/// One count a request makes: `limit` hits of `bucket` per `window` for `key`.
#[derive(Debug, Clone)]
pub struct Count {
    pub bucket: &'static str,
    pub key: String,
    pub limit: u32,
    pub window: Duration,
}

/// A count that went over its limit, and how long until its window ends.
#[derive(Debug, Clone)]
pub struct Refused {
    pub bucket: &'static str,
    pub wait: Duration,
}

/// The shared counters, and this process's memory of refusals.
pub struct Counters {
    db: Pool,
    refused: Mutex<HashMap<(&'static str, String), Instant>>,
}

impl Counters {
    pub fn new(db: Pool) -> Counters {
        Counters {
            db,
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Counts every one of `counts` (one statement); the first over its limit, if any.
    pub async fn take(&self, counts: &[Count]) -> Result<Option<Refused>, AuthError> {
        if counts.is_empty() {
            return Ok(None);
        }
        if let Some(refused) = self.remembered(counts) {
            return Ok(Some(refused));
        }
        // One order for every statement, so two requests locking the same rows cannot deadlock.
        let mut sorted: Vec<&Count> = counts.iter().collect();
        sorted.sort_by(|a, b| (a.bucket, &a.key).cmp(&(b.bucket, &b.key)));
        sorted.dedup_by(|a, b| a.bucket == b.bucket && a.key == b.key);
        let buckets: Vec<&str> = sorted.iter().map(|c| c.bucket).collect();
        let keys: Vec<&str> = sorted.iter().map(|c| c.key.as_str()).collect();
        let seconds: Vec<f64> = sorted.iter().map(|c| c.window.as_secs_f64()).collect();
        let db = self.db.get().await?;
        let rows = db
            .query(TAKE, &[&buckets, &keys, &seconds, &HITS_CAP])
            .await?;
        let now = Instant::now();
        let mut first: Option<Refused> = None;
        for count in counts {
            let Some(row) = rows
                .iter()
                .find(|r| r.get::<_, &str>(0) == count.bucket && r.get::<_, &str>(1) == count.key)
            else {
                continue;
            };
            let hits: i32 = row.get(2);
            if i64::from(hits) <= i64::from(count.limit) {
                continue;
            }
            let wait = Duration::from_secs_f64(row.get::<_, f64>(3).max(0.0));
            self.remember(count, now + wait);
            first.get_or_insert(Refused {
                bucket: count.bucket,
                wait,
            });
        }
        Ok(first)
    }

    /// A refusal this process already saw for one of `counts`, whose window has not ended.
    fn remembered(&self, counts: &[Count]) -> Option<Refused> {
        let now = Instant::now();
        let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        counts.iter().find_map(|c| {
            let until = *refused.get(&(c.bucket, c.key.clone()))?;
            (until > now).then(|| Refused {
                bucket: c.bucket,
                wait: until - now,
            })
        })
    }

    fn remember(&self, count: &Count, until: Instant) {
        let now = Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() >= MAX_REMEMBERED {
            refused.retain(|_, until| *until > now);
            if refused.len() >= MAX_REMEMBERED {
                refused.clear();
            }
        }
        refused.insert((count.bucket, count.key.clone()), until);
    }
}
