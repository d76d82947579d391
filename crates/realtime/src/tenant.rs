//! The project-wide limit of client events per second (`REALTIME_TENANT_MAX_EVENTS_PER_SECOND`):
//! broadcasts and presence calls from every socket, and REST broadcast messages, counted
//! together in fixed one-second windows aligned to the Unix epoch.
//!
//! Alone, the count is this process's. In cluster mode it is shared through a NATS KV counter
//! (`node.counters`), but not one round trip per message: a node takes budget from the shared
//! counter in batches (a tenth of the limit, 1 to 100 events) and spends it locally. The
//! counter's compare-and-set is exact, and a claim that overshoots the limit is granted only
//! the part below it, so the nodes together never spend more than the limit in a window: the
//! bound on overshoot is zero. The price is undershoot: budget a node claimed and did not spend
//! is lost when the window ends, so the project may be refused after `limit − (nodes − 1) ×
//! (batch − 1)` events at worst. Windows are fixed, so a burst across a window boundary may
//! pass up to twice the limit within one second (as the per-socket limits), and a node whose
//! clock is `s` ahead counts into the next window `s` early.
//!
//! NATS failing (an error, or no answer within [`CLAIM_TIMEOUT`]) fails open: the node logs it
//! and for [`DEGRADED_FOR`] counts alone against the whole limit, so while NATS is down `N`
//! nodes pass at most `N × limit` events per second.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use craftbase_scaleout::{Counters, Node};
use tokio::sync::{Mutex, OnceCell};

/// The shared counter's key in the `craftbase_counters` bucket.
const KEY: &str = "realtime.tenant_events";
/// One window: the limit is per second.
const WINDOW: Duration = Duration::from_secs(1);
/// The longest window the counters bucket is opened for (its keys live twice as long). Shared
/// with any other user of the bucket, so not the one-second window itself.
const BUCKET_WINDOW: Duration = Duration::from_secs(60);
/// How long one claim may wait for NATS before the node fails open.
const CLAIM_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a node counts alone after NATS failed, before it tries the counter again.
const DEGRADED_FOR: Duration = Duration::from_secs(5);

/// Whether events may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Nothing is left in this window.
    Exhausted,
    /// Something is left, but fewer than the events asked for (a REST batch).
    TooMany,
}

/// The project's events in the current window, counted in this process or across the cluster.
pub struct TenantEvents {
    /// Events per second; `None`: no project-wide limit.
    limit: Option<u64>,
    node: Option<Node>,
    counters: OnceCell<Counters>,
    budget: Mutex<Budget>,
}

/// This node's share of the current window.
#[derive(Debug, Default)]
struct Budget {
    /// The window (seconds since the epoch) the fields below are for.
    window: u64,
    /// Events this node may pass in the window: claimed from the shared counter, or the whole
    /// limit when counting alone.
    granted: u64,
    used: u64,
    /// Nothing more can be claimed in this window.
    closed: bool,
    /// After a NATS failure, the node counts alone until then.
    degraded_until: Option<Instant>,
}

impl TenantEvents {
    /// A limit of `limit` events per second (none when `None`), shared through `node`'s
    /// counters in cluster mode.
    pub fn new(limit: Option<u32>, node: Option<Node>) -> TenantEvents {
        TenantEvents {
            limit: limit.map(u64::from),
            node,
            counters: OnceCell::new(),
            budget: Mutex::new(Budget::default()),
        }
    }

    /// Whether there is a project-wide limit at all.
    pub fn enabled(&self) -> bool {
        self.limit.is_some()
    }

    /// Takes `n` events from the current window, all or none.
    pub async fn take(&self, n: u64) -> Admission {
        let Some(limit) = self.limit else {
            return Admission::Allowed;
        };
        if n == 0 {
            return Admission::Allowed;
        }
        let mut budget = self.budget.lock().await;
        let alone = self.alone(&budget);
        budget.roll(current_window(), limit, alone);
        if budget.used + n > budget.granted && !budget.closed {
            self.claim(&mut budget, limit, n).await;
        }
        if budget.used + n <= budget.granted {
            budget.used += n;
            Admission::Allowed
        } else if budget.used >= budget.granted {
            Admission::Exhausted
        } else {
            Admission::TooMany
        }
    }

    /// Whether this node counts alone now: no cluster, or NATS failed a moment ago.
    fn alone(&self, budget: &Budget) -> bool {
        self.node.is_none() || budget.degraded_until.is_some_and(|t| Instant::now() < t)
    }

    /// Claims at least what `n` events need from the shared counter (a batch at least), or
    /// fails open when NATS does not answer.
    async fn claim(&self, budget: &mut Budget, limit: u64, n: u64) {
        let need = budget.used + n - budget.granted;
        let ask = need.max(batch(limit));
        let before = epoch_millis();
        match tokio::time::timeout(CLAIM_TIMEOUT, self.add(ask)).await {
            Ok(Ok(hits)) => {
                // The counter chose its window by its own clock reading, taken during the call:
                // the window whose end is the first whole second at or after `before + resets_in`.
                let end = before + hits.resets_in.as_millis() as u64;
                let window = end.div_ceil(1000).saturating_sub(1);
                if window > budget.window {
                    budget.roll(window, limit, false);
                }
                let over = hits.hits.saturating_sub(limit);
                budget.granted += ask.saturating_sub(over);
                if over > 0 {
                    budget.closed = true;
                }
            }
            Ok(Err(error)) => self.fail_open(budget, limit, &error.to_string()),
            Err(_) => self.fail_open(budget, limit, "no answer in time"),
        }
    }

    async fn add(
        &self,
        n: u64,
    ) -> Result<craftbase_scaleout::Hits, craftbase_scaleout::ScaleoutError> {
        let Some(node) = &self.node else {
            unreachable!("claims are made in cluster mode only");
        };
        let counters = self
            .counters
            .get_or_try_init(|| node.counters(BUCKET_WINDOW))
            .await?;
        counters.add(KEY, n, WINDOW).await
    }

    /// Counts alone for a while: the node may pass the whole limit by itself.
    fn fail_open(&self, budget: &mut Budget, limit: u64, error: &str) {
        tracing::warn!(
            %error,
            "realtime: the cluster's event counter failed; counting this node's events alone for {}s",
            DEGRADED_FOR.as_secs()
        );
        budget.degraded_until = Some(Instant::now() + DEGRADED_FOR);
        budget.granted = budget.granted.max(limit);
        budget.closed = true;
    }
}

impl Budget {
    /// Starts `window` if it is a new one: alone, the whole limit is this node's at once.
    fn roll(&mut self, window: u64, limit: u64, alone: bool) {
        if window != self.window {
            self.window = window;
            self.used = 0;
            self.granted = if alone { limit } else { 0 };
            self.closed = alone;
        } else if alone && !self.closed {
            // NATS failed earlier in this window: what was claimed stays counted.
            self.granted = self.granted.max(limit);
            self.closed = true;
        }
    }
}

/// How much budget one claim takes: a tenth of the limit, 1 to 100 events.
fn batch(limit: u64) -> u64 {
    (limit / 10).clamp(1, 100)
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn current_window() -> u64 {
    epoch_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_limit_everything_passes() {
        let events = TenantEvents::new(None, None);
        assert!(!events.enabled());
        for _ in 0..10_000 {
            assert_eq!(events.take(1).await, Admission::Allowed);
        }
    }

    /// Waits for the start of a window, so that a short burst stays in one.
    async fn window_start() {
        let into = epoch_millis() % 1000;
        tokio::time::sleep(Duration::from_millis(1000 - into)).await;
    }

    #[tokio::test]
    async fn alone_a_window_passes_the_limit_then_refuses() {
        let events = TenantEvents::new(Some(5), None);
        window_start().await;
        assert_eq!(events.take(3).await, Admission::Allowed);
        assert_eq!(events.take(3).await, Admission::TooMany);
        assert_eq!(events.take(2).await, Admission::Allowed);
        assert_eq!(events.take(1).await, Admission::Exhausted);
        window_start().await;
        assert_eq!(events.take(5).await, Admission::Allowed);
        assert_eq!(events.take(6).await, Admission::Exhausted);
    }

    #[test]
    fn batches_are_a_tenth_of_the_limit() {
        assert_eq!(batch(1), 1);
        assert_eq!(batch(30), 3);
        assert_eq!(batch(100), 10);
        assert_eq!(batch(1_000_000), 100);
    }
}
