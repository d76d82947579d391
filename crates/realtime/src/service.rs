//! The service's shared state, one per process: the context (pools, keys, roles), the hub of
//! sockets and topics, the `postgres_changes` subscriptions, the catalog cache, the limits, and the replication stream's progress.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use craftbase_shared::ServiceContext;

use crate::changes::catalog::Catalog;
use crate::changes::registry::Subscriptions;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::node::Cluster;
use crate::stats;
use crate::tenant::TenantEvents;

/// The service's shared state: the context, who listens (topics; `postgres_changes`
/// subscriptions), and the catalog cache.
pub struct Realtime {
    pub ctx: ServiceContext,
    pub hub: Hub,
    /// The `postgres_changes` subscriptions, by table.
    pub subscriptions: Subscriptions,
    pub catalog: Catalog,
    /// What each socket may cost.
    pub limits: Limits,
    /// The other nodes, in cluster mode (`--nats-url`).
    pub cluster: Option<Cluster>,
    /// The project-wide limit of client events per second, shared by the nodes in cluster mode.
    pub tenant_events: TenantEvents,
    streaming: AtomicBool,
    /// Whether the stream includes `realtime.messages` (broadcasts from the database).
    broadcasts_live: AtomicBool,
    /// End LSN of the last transaction delivered: after a reconnect the slot may replay
    /// transactions whose acknowledgement had not reached the server, which are skipped.
    delivered_lsn: AtomicU64,
}

impl Realtime {
    /// State for `ctx` with limits from the environment, without starting replication (tests
    /// drive sessions directly).
    pub fn new(ctx: ServiceContext) -> Arc<Realtime> {
        Realtime::with_limits(ctx, Limits::from_env())
    }

    /// State for `ctx` with these limits.
    pub fn with_limits(ctx: ServiceContext, limits: Limits) -> Arc<Realtime> {
        Realtime::build(ctx, limits, None)
    }

    /// State for `ctx` in cluster mode when `node` is given (limits from the environment).
    pub fn clustered(ctx: ServiceContext, node: Option<craftbase_scaleout::Node>) -> Arc<Realtime> {
        Realtime::build(ctx, Limits::from_env(), node.map(Cluster::new))
    }

    /// State for `ctx` with these limits, in cluster mode when `cluster` is given.
    pub fn build(ctx: ServiceContext, limits: Limits, cluster: Option<Cluster>) -> Arc<Realtime> {
        let node = cluster.as_ref().map(|c| c.node.clone());
        Arc::new(Realtime {
            tenant_events: TenantEvents::new(limits.tenant_max_events_per_second, node),
            cluster,
            catalog: Catalog::new(ctx.admin.clone()),
            limits,
            ctx,
            hub: Hub::default(),
            subscriptions: Subscriptions::default(),
            streaming: AtomicBool::new(false),
            broadcasts_live: AtomicBool::new(false),
            delivered_lsn: AtomicU64::new(0),
        })
    }

    /// Whether the replication stream is connected now (it has connected and not failed since).
    pub fn is_streaming(&self) -> bool {
        self.streaming.load(Ordering::Relaxed)
    }

    /// Whether broadcasts inserted into `realtime.messages` are delivered now: the stream is
    /// connected and reads their publication (`broadcast.replication_ready`).
    pub fn database_broadcasts_live(&self) -> bool {
        self.is_streaming() && self.broadcasts_live.load(Ordering::Relaxed)
    }

    pub(crate) fn delivered(&self) -> u64 {
        self.delivered_lsn.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_delivered(&self, lsn: u64) {
        self.delivered_lsn.fetch_max(lsn, Ordering::Relaxed);
    }

    pub(crate) fn replication_up(&self, broadcasts: bool) {
        self.broadcasts_live.store(broadcasts, Ordering::Relaxed);
        self.streaming.store(true, Ordering::Relaxed);
        metrics::gauge!(stats::REPLICATION_CONNECTED).set(1.0);
    }

    pub(crate) fn replication_down(&self) {
        self.streaming.store(false, Ordering::Relaxed);
        metrics::gauge!(stats::REPLICATION_CONNECTED).set(0.0);
    }
}
