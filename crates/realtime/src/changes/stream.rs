//! The one logical replication stream of the database (pgoutput, publications
//! `supabase_realtime` and `supabase_realtime_messages_publication`, durable slot
//! `craftbase_realtime`): decodes committed transactions (inserts into `realtime.messages` as
//! stored broadcasts),
//! hands them on (a [`Handoff`]: to `pipeline::deliver` on this node, or, in cluster mode, to
//! the change log every node delivers from), and acknowledges the slot after each commit and,
//! when idle, up to the server's position. A lost connection is retried with backoff, resuming from
//! the last acknowledged commit, so no change after it is lost and none delivered twice.
//! TRUNCATE is skipped, as Supabase does (its slot reader asks wal2json for
//! `insert,update,delete` only, and realtime-js has no truncate event); the transaction's other
//! changes are delivered.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_walstream::CancellationToken;
use pg_walstream::{
    EventType, LogicalReplicationStream, ReplicationStreamConfig, RetryConfig, StreamingMode,
};

use super::decode::{self, push, push_broadcast, Transaction};
use super::pipeline;
use crate::service::Realtime;

/// The durable slot realtime reads.
pub const SLOT: &str = "craftbase_realtime";
/// The publication whose tables stream changes.
pub const PUBLICATION: &str = "supabase_realtime";
/// The publication of `realtime.messages` (by its root: partitions publish as the parent),
/// whose inserts are broadcasts from the database.
pub const MESSAGES_PUBLICATION: &str = "supabase_realtime_messages_publication";
/// How long without events before the slot is acknowledged up to the server's position (the
/// feedback itself is sent at most once per feedback interval). Short, because a server that is
/// shutting down keeps asking for a reply until the slot is confirmed up to its last record (the
/// shutdown checkpoint, past every commit) and only then lets its shutdown finish: with a 2 s
/// timer that was a 2 s delay and tens of thousands of replies.
const IDLE_ACK: Duration = Duration::from_millis(100);
/// Most changes batched into one delivery round.
const MAX_BATCH_CHANGES: usize = 1000;

/// When the stream may read the messages publication too. PostgreSQL 15's pgoutput looks
/// publications up as of the change it decodes, so a slot older than the publication (a data
/// directory upgraded to broadcasts from the database) fails on the changes before it: such a
/// slot streams the tables alone until it has passed the position where the publication was
/// known to exist, then reconnects with both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessagesFrom {
    Now,
    After(u64),
}

/// Where the stream hands committed transactions on.
pub trait Handoff {
    /// The highest commit LSN already handed on: a transaction the slot replays at or below it
    /// (after a reconnect, or a failover) is skipped.
    fn handed(&self) -> u64;
    /// Whether transactions with table changes only are wanted now (alone: only while some
    /// `postgres_changes` subscription exists; in cluster mode always, for the other nodes).
    fn wants_changes(&self) -> bool;
    /// Hands a batch on, with the relations whose definition changed since the last batch. An
    /// error stops the stream, which resumes from the last acknowledged commit.
    fn hand_on(
        &mut self,
        batch: &[Transaction],
        invalidated: &[u32],
    ) -> impl Future<Output = Result<(), anyhow::Error>> + Send;
    /// Whether this process may no longer decode (cluster mode: it lost the lead).
    fn deposed(&self) -> bool;
    /// The stream connected (`broadcasts`: it reads `realtime.messages` too) or stopped.
    fn up(&self, broadcasts: bool);
    fn down(&self);
}

/// The stream alone, delivering on this node.
struct Local<'a>(&'a Realtime);

impl Handoff for Local<'_> {
    fn handed(&self) -> u64 {
        self.0.delivered()
    }

    fn wants_changes(&self) -> bool {
        self.0.subscriptions.any()
    }

    async fn hand_on(&mut self, batch: &[Transaction], _: &[u32]) -> Result<(), anyhow::Error> {
        pipeline::deliver(self.0, batch).await;
        if let Some(t) = batch.last() {
            self.0.mark_delivered(t.lsn);
        }
        Ok(())
    }

    fn deposed(&self) -> bool {
        false
    }

    fn up(&self, broadcasts: bool) {
        self.0.replication_up(broadcasts);
    }

    fn down(&self) {
        self.0.replication_down();
    }
}

/// Runs replication until the process ends, reconnecting with backoff; never panics the process.
pub async fn run(rt: Arc<Realtime>) {
    run_with(&rt, &mut Local(&rt), std::future::pending()).await;
}

/// Runs replication into `handoff` until the process ends, `stop` resolves or `handoff` is
/// deposed, reconnecting with backoff.
pub async fn run_with(rt: &Realtime, handoff: &mut impl Handoff, stop: impl Future<Output = ()>) {
    let mut backoff = Duration::from_millis(500);
    let mut messages_from = MessagesFrom::Now;
    let mut stop = std::pin::pin!(stop);
    loop {
        let started = Instant::now();
        let ended = tokio::select! {
            ended = replicate(rt, handoff, &mut messages_from) => ended,
            () = &mut stop => {
                handoff.down();
                tracing::info!("realtime replication handed over");
                return;
            }
        };
        handoff.down();
        match ended {
            // The stream can now include `realtime.messages`: reconnect at once.
            Ok(()) => continue,
            Err(_) if craftbase_shared::shutdown::requested() => {
                tracing::debug!("realtime replication ends with the process");
                return;
            }
            Err(e) if handoff.deposed() => {
                tracing::info!(error = %e, "realtime replication handed over");
                return;
            }
            Err(e) => {
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(500);
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "realtime replication stopped; reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    // Deposed while waiting (cluster mode): another node decodes now.
                    () = &mut stop => {
                        tracing::info!("realtime replication handed over");
                        return;
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The slot of this database, created when it does not exist yet. Slot names are per cluster:
/// when `craftbase_realtime` already belongs to another database, this one's slot is named after
/// its database oid.
async fn ensure_slot(rt: &Realtime) -> Result<(String, bool), anyhow::Error> {
    let client = rt.ctx.admin.get().await?;
    let slot: String = client
        .query_one(
            "select case when exists (select 1 from pg_replication_slots
                                      where slot_name = $1 and database <> current_database())
                    then $1 || '_' || (select oid from pg_database where datname = current_database())
                    else $1 end",
            &[&SLOT],
        )
        .await?
        .get(0);
    client
        .execute(
            "select pg_create_logical_replication_slot($1, 'pgoutput')
             where not exists (select 1 from pg_replication_slots where slot_name = $1)",
            &[&slot],
        )
        .await?;
    // Without the messages publication (a database whose platform SQL is older), only the
    // tables stream: naming a missing publication would stop the stream.
    let messages: bool = client
        .query_one(
            "select exists (select 1 from pg_publication where pubname = $1)",
            &[&MESSAGES_PUBLICATION],
        )
        .await?
        .get(0);
    Ok((slot, messages))
}

/// The server's WAL position now.
async fn server_lsn(rt: &Realtime) -> Result<u64, anyhow::Error> {
    let text: String = rt
        .ctx
        .admin
        .get()
        .await?
        .query_one("select pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    Ok(pg_walstream::parse_lsn(&text)?)
}

/// Streams until an error, or `Ok` when the stream should reconnect to include the messages
/// publication.
async fn replicate(
    rt: &Realtime,
    handoff: &mut impl Handoff,
    messages_from: &mut MessagesFrom,
) -> Result<(), anyhow::Error> {
    let (slot, publication_exists) = ensure_slot(rt).await?;
    let with_messages = publication_exists && *messages_from == MessagesFrom::Now;
    // pg_walstream quotes the name: two quoted names make pgoutput's list.
    let publications = if with_messages {
        format!("{PUBLICATION}\",\"{MESSAGES_PUBLICATION}")
    } else {
        PUBLICATION.to_owned()
    };
    let config = ReplicationStreamConfig::builder(slot.as_str(), publications.as_str())
        .with_protocol_version(1)
        .with_streaming_mode(StreamingMode::Off)
        .with_feedback_interval(Duration::from_secs(1))
        .with_connection_timeout(Duration::from_secs(10))
        .with_existing_slot_required(true)
        .with_retry_config(RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        });
    let conninfo = format!("{} replication=database", rt.ctx.admin_conninfo);
    let mut stream = LogicalReplicationStream::new(&conninfo, config).await?;
    stream.start(None).await?;
    tracing::info!(
        slot,
        broadcasts = with_messages,
        "realtime replication streaming"
    );
    handoff.up(with_messages);
    // Relations that are `realtime.messages` (its root, as the publication names it).
    let mut messages: HashSet<u32> = HashSet::new();
    let cancel = CancellationToken::new();
    let feedback = stream.shared_lsn_feedback.clone();
    let mut open: Option<Transaction> = None;
    let mut ready: Vec<Transaction> = Vec::new();
    let mut ready_changes = 0usize;
    let mut ready_lsn = 0u64;
    // Relations whose definition changed since the last batch was handed on.
    let mut invalidated: Vec<u32> = Vec::new();
    loop {
        // Deliver what is committed as soon as nothing more is immediately available.
        let wait = if ready.is_empty() {
            IDLE_ACK
        } else {
            Duration::ZERO
        };
        let event = match tokio::time::timeout(wait, stream.next_event(&cancel)).await {
            Ok(Ok(event)) => Some(event),
            Ok(Err(e)) => {
                let text = e.to_string();
                if with_messages && text.contains("publication") && text.contains("does not exist")
                {
                    *messages_from = MessagesFrom::After(server_lsn(rt).await?);
                    tracing::info!("the replication slot predates broadcasts from the database; streaming tables until it has passed them");
                }
                return Err(e.into());
            }
            Err(_) => None,
        };
        let Some(event) = event else {
            if !ready.is_empty() {
                handoff.hand_on(&ready, &invalidated).await?;
                ready.clear();
                invalidated.clear();
                ready_changes = 0;
                acknowledge(&mut stream, ready_lsn).await;
            } else if open.is_none() {
                // Idle between transactions: everything received was handled.
                let lsn = stream.current_lsn();
                feedback.update_flushed_lsn(lsn);
                feedback.update_applied_lsn(lsn);
                stream.maybe_send_feedback().await;
                if let MessagesFrom::After(from) = *messages_from {
                    if publication_exists && lsn >= from {
                        stream.send_feedback().await.ok();
                        *messages_from = MessagesFrom::Now;
                        return Ok(());
                    }
                }
            }
            continue;
        };
        tracing::trace!(event = ?event.event_type, "replication event");
        match event.event_type {
            EventType::Begin {
                commit_timestamp, ..
            } => {
                open = Some(Transaction::new(decode::commit_timestamp(
                    commit_timestamp.timestamp_micros(),
                )));
            }
            EventType::Insert {
                relation_oid, data, ..
            } if messages.contains(&relation_oid) => push_broadcast(&mut open, &data),
            EventType::Insert {
                relation_oid, data, ..
            } => push(&mut open, relation_oid, "INSERT", Some(&data), None),
            // Only inserts of `realtime.messages` are broadcasts, as in Supabase.
            EventType::Update { relation_oid, .. } | EventType::Delete { relation_oid, .. }
                if messages.contains(&relation_oid) => {}
            EventType::Update {
                relation_oid,
                old_data,
                new_data,
                ..
            } => push(
                &mut open,
                relation_oid,
                "UPDATE",
                Some(&new_data),
                old_data.as_ref(),
            ),
            EventType::Delete {
                relation_oid,
                old_data,
                ..
            } => push(&mut open, relation_oid, "DELETE", None, Some(&old_data)),
            EventType::Relation {
                relation_id,
                namespace,
                relation_name,
                ..
            } => {
                if &*namespace == "realtime" && &*relation_name == "messages" {
                    messages.insert(relation_id);
                } else {
                    rt.catalog.invalidate(relation_id);
                    invalidated.push(relation_id);
                }
            }
            EventType::Commit { end_lsn, .. } => {
                if let Some(mut t) = open.take() {
                    ready_lsn = end_lsn.value();
                    t.lsn = ready_lsn;
                    // Replayed after a reconnect, but already handed on before it.
                    let replayed = ready_lsn <= handoff.handed();
                    let wanted = (!t.changes.is_empty() && handoff.wants_changes())
                        || !t.broadcasts.is_empty()
                        || !invalidated.is_empty();
                    if !replayed && wanted {
                        ready_changes += t.changes.len() + t.broadcasts.len();
                        ready.push(t);
                    }
                    if ready.is_empty() {
                        feedback.update_flushed_lsn(ready_lsn);
                        feedback.update_applied_lsn(ready_lsn);
                    } else if ready_changes >= MAX_BATCH_CHANGES {
                        handoff.hand_on(&ready, &invalidated).await?;
                        ready.clear();
                        invalidated.clear();
                        ready_changes = 0;
                        acknowledge(&mut stream, ready_lsn).await;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Tells the server a handed-on position at once, so a reconnect replays as little as
/// possible (and what it replays is skipped by `Handoff::handed`).
async fn acknowledge(stream: &mut LogicalReplicationStream, lsn: u64) {
    stream.shared_lsn_feedback.update_flushed_lsn(lsn);
    stream.shared_lsn_feedback.update_applied_lsn(lsn);
    if let Err(e) = stream.send_feedback().await {
        tracing::debug!(error = %e, "replication feedback not sent");
    }
}
