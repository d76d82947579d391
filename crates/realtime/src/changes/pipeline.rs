//! Delivery of committed changes, as a pipeline whose steps each use only the steps before them
//! and the shared types (`row`, `table`, `condition`, `registry`, `identity`):
//!
//! 1. `decode`: the replication stream's tuples as changes of text rows, by transaction;
//! 2. `route`: per table, the subscriptions in claims groups, matched by event and filters
//!    (and, with an owner form, by the rows' owners);
//! 3. `authorize`: per role, the SELECT policies on the committed values (one probe per
//!    table and role for the whole batch) and the role's grants;
//! 4. `payload`: the data each role receives;
//! 5. `fanout`: one message per channel, queued on each subscriber's outlet.
//!
//! This module runs the steps over a batch; `stream` feeds it. The batch's stored broadcasts
//! (`realtime.messages` inserts) then go to their topics (`broadcast`), in commit order.

use std::collections::HashMap;
use std::sync::Arc;

use super::authorize::{self, Receiver};
use super::broadcast;
use super::catalog::Probe;
use super::decode::{Change, Transaction};
use super::fanout;
use super::ownership::Routes;
use super::route;
use super::table::Table;
use crate::service::Realtime;

/// Delivers a batch of committed transactions to their subscribers, in commit order.
pub async fn deliver(rt: &Realtime, batch: &[Transaction]) {
    let started = std::time::Instant::now();
    // Every change of the batch, flattened, with its transaction's commit time.
    let changes: Vec<(&str, &Change)> = batch
        .iter()
        .flat_map(|t| {
            t.changes
                .iter()
                .map(move |c| (t.commit_timestamp.as_str(), c))
        })
        .collect();
    let mut by_table: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, (_, c)) in changes.iter().enumerate() {
        by_table.entry(c.table_oid).or_default().push(i);
    }
    // (change index) → the subscriptions that receive it, with the payload's role access and
    // whether the subscriber could also see the old row of an UPDATE.
    let mut receivers: Vec<Vec<Receiver>> = vec![Vec::new(); changes.len()];
    let mut tables: HashMap<u32, Arc<Table>> = HashMap::new();
    for (oid, indices) in by_table {
        let subs = rt.subscriptions.by_table(oid);
        if subs.is_empty() {
            continue;
        }
        let table = match table_for(rt, oid, &changes, &indices).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, oid, "cannot read a published table's definition");
                continue;
            }
        };
        let (rows, old_pos) = route::rows(&changes, &indices);
        tracing::debug!(table = %table.name, changes = indices.len(), subscriptions = subs.len(), "authorizing changes");
        // Claims groups, formed once per batch: subscriptions with equal identities.
        let (groups, by_role) = route::claims_groups(&subs);
        for (role, members) in by_role {
            let access = match rt.catalog.access(&table, role).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, role, "cannot read a role's access; change withheld");
                    continue;
                }
            };
            // A role that may not SELECT the primary key gets Supabase's 401 form of the
            // INSERTs and UPDATEs it may see (`data`), and no DELETEs.
            let keyless = !access.sees_primary_key && !table.primary_key.is_empty();
            let t0 = std::time::Instant::now();
            let routes = match (&access.probe, &access.ownership) {
                (Some(Probe::Function { .. }), Some(o)) => {
                    Routes::new(
                        &rt.ctx.admin,
                        o,
                        &rows,
                        members.iter().map(|&g| (g, groups[g].0)),
                    )
                    .await
                }
                _ => None,
            };
            let wanted = route::wanted(
                &table,
                &changes,
                &indices,
                &rows,
                &old_pos,
                &groups,
                &members,
                routes.as_ref(),
            );
            let t1 = t0.elapsed();
            if wanted.is_empty() {
                continue;
            }
            let n_groups = wanted.len();
            let visible =
                authorize::visible(&rt.catalog, &rt.ctx.db, &table, &access, &rows, wanted).await;
            tracing::debug!(
                role,
                visible = visible.len(),
                groups = n_groups,
                route_us = t1.as_micros() as u64,
                probe_us = (t0.elapsed() - t1).as_micros() as u64,
                "visibility decided"
            );
            let is_delete = |pos: usize| changes[indices[pos]].1.kind == "DELETE";
            for (pos, receiver) in authorize::receivers(
                visible,
                indices.len(),
                &old_pos,
                is_delete,
                keyless,
                &access,
            ) {
                receivers[indices[pos]].push(receiver);
            }
        }
        tables.insert(oid, table);
    }
    let decided = started.elapsed();
    for (i, (commit_ts, change)) in changes.iter().enumerate() {
        if receivers[i].is_empty() {
            continue;
        }
        fanout::send(&tables[&change.table_oid], commit_ts, change, &receivers[i]);
    }
    let stored: Vec<_> = batch.iter().flat_map(|t| &t.broadcasts).collect();
    if !stored.is_empty() {
        broadcast::send(&rt.hub, &rt.ctx.admin, &stored, rt.limits.max_payload_bytes).await;
    }
    tracing::debug!(
        changes = changes.len(),
        decide_us = decided.as_micros() as u64,
        total_us = started.elapsed().as_micros() as u64,
        "batch delivered"
    );
}

/// The table's definition, reloaded when the WAL carries a column the cache does not know.
async fn table_for(
    rt: &Realtime,
    oid: u32,
    changes: &[(&str, &Change)],
    indices: &[usize],
) -> Result<Arc<Table>, anyhow::Error> {
    let table = rt.catalog.table(oid).await?;
    let stale = indices.iter().any(|&i| {
        let c = changes[i].1;
        c.new
            .iter()
            .chain(c.old.iter())
            .flatten()
            .any(|(n, _)| table.column(n).is_none())
    });
    if stale {
        rt.catalog.invalidate(oid);
        return rt.catalog.table(oid).await;
    }
    Ok(table)
}
