//! The Prometheus recorder behind the `metrics` facade, and the gauges read only when
//! `/metrics` is scraped (pools, channels, replication lag), so serving requests never pays for
//! them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::requests;
use craftbase_realtime::stats as rt_stats;
use craftbase_realtime::Realtime;

/// A pool's connections: `max`, open, in use, and requests waiting for one.
pub const POOL_MAX: &str = "craftbase_db_pool_max_connections";
pub const POOL_OPEN: &str = "craftbase_db_pool_connections";
pub const POOL_IN_USE: &str = "craftbase_db_pool_connections_in_use";
pub const POOL_WAITING: &str = "craftbase_db_pool_waiting";
/// Realtime's topics with members, and channels (a socket joined to a topic).
pub const TOPICS: &str = "craftbase_realtime_topics";
pub const CHANNELS: &str = "craftbase_realtime_channels";
/// Bytes of WAL the realtime slot has not confirmed yet.
pub const SLOT_LAG: &str = "craftbase_realtime_replication_slot_lag_bytes";

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP: Duration = Duration::from_secs(5);
/// The slot-lag query's limit: a scrape never waits on a stuck database for longer.
const LAG_QUERY_LIMIT: Duration = Duration::from_secs(2);

/// The process's recorder, installed by the first call (the `metrics` facade has one per
/// process). `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(requests::DURATION.into()),
                    &requests::BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    let upkeep = handle.clone();
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(UPKEEP).await;
                            upkeep.run_upkeep();
                        }
                    });
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// HELP lines and units.
fn describe() {
    describe_counter!(
        requests::REQUESTS,
        "HTTP requests answered on the API port, by service, route class and status."
    );
    describe_histogram!(
        requests::DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by service."
    );
    describe_counter!(
        requests::SIGN_INS,
        "Successful sign-ins at /auth/v1/token, by grant."
    );
    describe_counter!(
        requests::SIGN_IN_FAILURES,
        "Refused sign-ins at /auth/v1/token, by grant."
    );
    describe_gauge!(
        POOL_MAX,
        "Most connections a pool may open, by service and role."
    );
    describe_gauge!(
        POOL_OPEN,
        "Connections a pool holds open, by service and role."
    );
    describe_gauge!(
        POOL_IN_USE,
        "Connections of a pool lent out right now, by service and role."
    );
    describe_gauge!(
        POOL_WAITING,
        "Requests waiting for a pool's connection, by service and role."
    );
    describe_gauge!(rt_stats::SOCKETS, "Open realtime websockets.");
    describe_gauge!(TOPICS, "Realtime topics with at least one member.");
    describe_gauge!(
        CHANNELS,
        "Realtime channels joined (one per socket and topic)."
    );
    describe_counter!(
        rt_stats::DELIVERIES,
        "Realtime messages queued to sockets, by kind (postgres_changes, broadcast, presence)."
    );
    describe_gauge!(
        rt_stats::REPLICATION_CONNECTED,
        "1 while realtime's logical replication stream is connected."
    );
    describe_gauge!(
        SLOT_LAG,
        Unit::Bytes,
        "WAL bytes between the server's position and what realtime's slot confirmed."
    );
}

/// One of the database pools, named for its labels.
pub struct Pool {
    pub service: &'static str,
    pub role: &'static str,
    pub pool: deadpool_postgres::Pool,
}

/// What a scrape reads besides the recorded counters.
pub struct Sampled {
    pub pools: Vec<Pool>,
    pub realtime: Arc<Realtime>,
}

impl Sampled {
    /// Sets the scrape-time gauges, then renders everything in Prometheus's text format.
    pub async fn render(&self, handle: &PrometheusHandle) -> String {
        for p in &self.pools {
            let s = p.pool.status();
            let labels = [("service", p.service), ("role", p.role)];
            gauge!(POOL_MAX, &labels).set(s.max_size as f64);
            gauge!(POOL_OPEN, &labels).set(s.size as f64);
            gauge!(POOL_IN_USE, &labels).set(s.size.saturating_sub(s.available) as f64);
            gauge!(POOL_WAITING, &labels).set(s.waiting as f64);
        }
        let (topics, channels) = self.realtime.hub.channel_counts();
        gauge!(TOPICS).set(topics as f64);
        gauge!(CHANNELS).set(channels as f64);
        // Present from the first scrape, before any socket opened.
        gauge!(rt_stats::SOCKETS).increment(0.0);
        gauge!(rt_stats::REPLICATION_CONNECTED)
            .set(f64::from(u8::from(self.realtime.is_streaming())));
        match tokio::time::timeout(LAG_QUERY_LIMIT, slot_lag(&self.realtime)).await {
            Ok(Ok(lag)) => gauge!(SLOT_LAG).set(lag),
            Ok(Err(e)) => tracing::debug!(error = %e, "replication slot lag not read"),
            Err(_) => tracing::debug!("replication slot lag not read in time"),
        }
        handle.render()
    }
}

/// The realtime slot's lag behind the server's current WAL position, in bytes (0 without one).
async fn slot_lag(rt: &Realtime) -> anyhow::Result<f64> {
    let client = rt.ctx.admin.get().await?;
    let row = client
        .query_one(
            "select coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)::float8
               from pg_replication_slots
              where database = current_database() and slot_name like $1 || '%'",
            &[&craftbase_realtime::changes::stream::SLOT],
        )
        .await?;
    Ok(row.get(0))
}
