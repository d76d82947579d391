//! `postgres_changes` across nodes. Exactly one node at a time, the holder of the
//! `realtime_slot` lease, streams the replication slot; instead of delivering, it publishes each
//! batch of committed transactions to the JetStream change log (`log`), and acknowledges the
//! slot only once NATS has stored the batch. Every node, the decoder too, reads the log from
//! where it joined and delivers to its own subscribers through the same pipeline as alone, so
//! the RLS decision stays per subscriber, on the committed row.
//!
//! Exactly once, in order: a new decoder resumes from the slot's confirmed position, so it may
//! publish again what the last one had published but not confirmed; readers skip every
//! transaction (or part of one) at or below the last they delivered. Two decoders never stream
//! at once: the lease is fenced (a deposed decoder's next publish is refused) and PostgreSQL lets
//! one connection at a time stream a slot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use craftbase_scaleout::{ChangeLog, Leadership, Node, Publisher, ScaleoutError};
use futures_util::StreamExt;
use tokio::sync::watch;

use super::log::{self, Position};
use crate::changes::decode::Transaction;
use crate::changes::pipeline;
use crate::changes::stream::{self, Handoff};
use crate::service::Realtime;

/// The lease whose holder decodes the slot.
const LEASE: &str = "realtime_slot";
/// How long the lease outlives its holder's last renewal: the failover gap after a node dies is
/// about this plus a campaign tick (a third of it) plus reconnecting the slot.
const LEASE_TTL: Duration = Duration::from_secs(3);
/// The change log's name (stream `craftbase_realtime_changes`).
const LOG: &str = "realtime_changes";
/// How long the log keeps a batch: a node whose reader falls further behind than this (or is
/// cut off from NATS as long) misses changes, and says so in its log.
const LOG_MAX_AGE: Duration = Duration::from_secs(120);
/// How long to wait before trying NATS again after an error.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the decoder campaign and the log reader of `rt` (which is in cluster mode).
pub fn spawn(rt: &Arc<Realtime>) {
    let rt = rt.clone();
    tokio::spawn(async move {
        let Some(node) = rt.cluster.as_ref().map(|c| c.node.clone()) else {
            return;
        };
        let log = until_open("change log", || node.change_log(LOG, LOG_MAX_AGE)).await;
        tokio::spawn(read(rt.clone(), node.clone(), log.clone()));
        decode_while_leading(rt, node, log).await;
    });
}

/// What `open` opens in NATS, tried again every `RETRY` until NATS answers (a node may start
/// before its NATS is reachable again).
async fn until_open<T, F, Fut>(what: &str, open: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ScaleoutError>>,
{
    loop {
        match open().await {
            Ok(opened) => return opened,
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the realtime {what}; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Campaigns for the slot's lease; while this node holds it, streams the slot into the log.
async fn decode_while_leading(rt: Arc<Realtime>, node: Node, log: ChangeLog) {
    let lease = until_open("decoder lease", || node.lease(LEASE, LEASE_TTL)).await;
    let leadership = Leadership::spawn(lease);
    let mut lead = leadership.watch();
    tokio::spawn(resign_on_shutdown(leadership));
    let max_bytes = log::entry_limit(node.max_payload());
    loop {
        let token = match lead.wait_for(Option::is_some).await {
            Ok(token) => token.unwrap_or_default(),
            // The campaign ended: the process is stopping.
            Err(_) => return,
        };
        let publisher = match log.publisher(token).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish to the realtime change log; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        tracing::info!(token, "this node decodes the realtime replication slot");
        let mut handoff = Publish {
            rt: &rt,
            publisher,
            lead: lead.clone(),
            token,
            max_bytes,
            published: 0,
            fenced: false,
        };
        let mut lost = lead.clone();
        let stop = async move {
            let _ = lost.wait_for(|t| *t != Some(token)).await;
        };
        stream::run_with(&rt, &mut handoff, stop).await;
        if handoff.fenced {
            // Another node published with a newer lease: wait until the campaign notices.
            let _ = tokio::time::timeout(LEASE_TTL, lead.wait_for(|t| *t != Some(token))).await;
        }
        if craftbase_shared::shutdown::requested() {
            return;
        }
    }
}

/// Releases the lease when the process is asked to stop, so another node takes over at once
/// rather than after the lease expires.
async fn resign_on_shutdown(leadership: Leadership) {
    while !craftbase_shared::shutdown::requested() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    leadership.resign().await;
}

/// The decoder's handoff: batches go to the change log.
struct Publish<'a> {
    rt: &'a Realtime,
    publisher: Publisher,
    lead: watch::Receiver<Option<u64>>,
    token: u64,
    /// The largest entry NATS takes.
    max_bytes: usize,
    /// The commit LSN of the last transaction this term published.
    published: u64,
    /// Another decoder has published since this one: it must stop.
    fenced: bool,
}

impl Handoff for Publish<'_> {
    fn handed(&self) -> u64 {
        // What this node's reader delivered is in the log already.
        self.published.max(self.rt.delivered())
    }

    fn wants_changes(&self) -> bool {
        // Other nodes may have subscribers.
        true
    }

    async fn hand_on(
        &mut self,
        batch: &[Transaction],
        invalidated: &[u32],
    ) -> Result<(), anyhow::Error> {
        for (at, entry) in log::entries(batch, invalidated, self.max_bytes) {
            match self.publisher.publish_part(at.lsn, at.part, entry).await {
                Ok(_) => {}
                Err(ScaleoutError::Fenced(token)) => {
                    self.fenced = true;
                    return Err(ScaleoutError::Fenced(token).into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(t) = batch.last() {
            self.published = t.lsn;
        }
        Ok(())
    }

    fn deposed(&self) -> bool {
        self.fenced || *self.lead.borrow() != Some(self.token)
    }

    fn up(&self, _broadcasts: bool) {
        if let Some(c) = &self.rt.cluster {
            c.decoding.store(true, Ordering::Relaxed);
        }
    }

    fn down(&self) {
        if let Some(c) = &self.rt.cluster {
            c.decoding.store(false, Ordering::Relaxed);
        }
    }
}

/// Reads the log from its end at start-up and delivers each batch to this node's subscribers;
/// after a NATS outage, resumes after the last entry read. A NATS server that restarted has
/// forgotten the reader's consumer, which the client would notice only after several missed
/// heartbeats: the reader starts a new one as soon as the connection is back.
async fn read(rt: Arc<Realtime>, node: Node, log: ChangeLog) {
    let connected = || node.client().connection_state() == async_nats::connection::State::Connected;
    let mut next: Option<u64> = None;
    let mut last = Position::default();
    loop {
        let from = match next {
            Some(n) => Ok(n),
            None => log.last_sequence().await.map(|s| s + 1),
        };
        match async { log.read_from(from?).await }.await {
            Ok(entries) => {
                // Every node reads `realtime.messages`' inserts through the log.
                rt.replication_up(true);
                let mut entries = std::pin::pin!(entries);
                let mut watch = tokio::time::interval(RETRY);
                let mut was_connected = true;
                loop {
                    let entry = tokio::select! {
                        entry = entries.next() => entry,
                        _ = watch.tick() => {
                            let now = connected();
                            if now && !was_connected {
                                tracing::info!("NATS back: reading the realtime change log again");
                                break;
                            }
                            was_connected = now;
                            continue;
                        }
                    };
                    let Some(entry) = entry else { break };
                    match entry {
                        Ok(entry) => {
                            if next.is_some_and(|n| entry.sequence > n) {
                                tracing::warn!(
                                    missed = entry.sequence - next.unwrap_or_default(),
                                    "realtime change log entries expired before this node read them"
                                );
                            }
                            next = Some(entry.sequence + 1);
                            deliver(&rt, &entry.payload, &mut last).await;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "realtime change log read failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the realtime change log"),
        }
        rt.replication_down();
        tokio::time::sleep(RETRY).await;
    }
}

/// Delivers one log entry's transactions that this node has not delivered yet.
async fn deliver(rt: &Realtime, payload: &[u8], last: &mut Position) {
    let entry = match log::Entry::parse(payload) {
        Ok(entry) => entry,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable realtime change log entry; skipped");
            return;
        }
    };
    for oid in &entry.invalidated {
        rt.catalog.invalidate(*oid);
    }
    let mut batch = Vec::with_capacity(entry.pieces.len());
    let mut completed = None;
    for piece in entry.pieces {
        let at = piece.position();
        if at <= *last || piece.transaction.lsn <= rt.delivered() {
            continue;
        }
        *last = at.done_if(piece.last);
        if piece.last {
            completed = Some(piece.transaction.lsn);
        }
        batch.push(piece.transaction);
    }
    if !batch.is_empty() {
        pipeline::deliver(rt, &batch).await;
    }
    if let Some(lsn) = completed {
        rt.mark_delivered(lsn);
    }
}
