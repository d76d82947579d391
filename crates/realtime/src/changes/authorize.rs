//! Who receives a committed change (realtime-authorization.md): a subscriber whose binding
//! matches the change receives it only if its role may SELECT the row's primary key and the
//! table's SELECT policies, evaluated for its claims on the values that were committed, let it
//! see the row. DELETEs are checked on the old row, so a hidden row's deletion reaches nobody.
//! Changes of a table without a primary key, or for a role that may not SELECT it, reach those
//! same subscribers in Supabase's 400 and 401 forms.
//!
//! Subscribers with equal claims share one check, and one statement per (table, role) checks
//! every (claims group, row) pair of a batch of changes. When the role's policies have an owner
//! form (`ownership`), a row is paired only with the groups of its owners.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::catalog::{Access, Probe};
use super::ownership::Routes;
use super::payload::{self, Data};
use super::registry::PgSubscription;
use super::row::{cell, Row};
use super::table::{Table, TypeKind};
use crate::identity::Identity;
use crate::protocol::Message;
use crate::service::Realtime;

/// Subscriptions paired with the position of the row they want.
type Pairs<'a> = Vec<(usize, &'a Arc<PgSubscription>)>;

/// A subscription that receives a change.
#[derive(Clone)]
struct Receiver {
    sub: Arc<PgSubscription>,
    access: Arc<Access>,
    /// For an UPDATE: whether the old row passed the subscriber's policies too; if not, the
    /// old record carries the primary key only.
    old_visible: bool,
}

/// One decoded change.
#[derive(Debug, Clone)]
pub struct Change {
    pub table_oid: u32,
    /// INSERT, UPDATE or DELETE.
    pub kind: &'static str,
    pub new: Option<Row>,
    pub old: Option<Row>,
}

/// A committed transaction's changes.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub commit_timestamp: String,
    pub changes: Vec<Change>,
}

/// The row the decision is made on: the new row (old values filling unchanged TOAST) for
/// INSERT and UPDATE, the old row for DELETE.
fn decision_row(change: &Change) -> Row {
    match (change.kind, &change.new, &change.old) {
        ("DELETE", _, Some(old)) => old.clone(),
        (_, Some(new), old) => {
            let mut row = new.clone();
            if let Some(old) = old {
                for (name, value) in old {
                    if !row.iter().any(|(n, _)| n == name) {
                        row.push((name.clone(), value.clone()));
                    }
                }
            }
            row
        }
        _ => Vec::new(),
    }
}

/// Whether a subscription's event and filters accept the change.
fn wants(sub: &PgSubscription, table: &Table, change: &Change, row: &Row) -> bool {
    sub.event.accepts(change.kind)
        && sub.conditions.iter().all(|c| {
            let kind = table
                .column(&c.column)
                .map_or(TypeKind::Text, |col| col.kind);
            c.matches(kind, cell(row, &c.column))
        })
}

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
        let mut rows: Vec<Row> = indices
            .iter()
            .map(|&i| decision_row(changes[i].1))
            .collect();
        // The old rows of UPDATEs follow, checked too: a row moved to a subscriber must not
        // bring along the content its previous owner's policies hid from that subscriber.
        let mut old_pos: HashMap<usize, usize> = HashMap::new();
        for (pos, &i) in indices.iter().enumerate() {
            if let ("UPDATE", Some(old)) = (changes[i].1.kind, &changes[i].1.old) {
                old_pos.insert(pos, rows.len());
                rows.push(old.clone());
            }
        }
        tracing::debug!(table = %table.name, changes = indices.len(), subscriptions = subs.len(), "authorizing changes");
        // Claims groups, formed once per batch: subscriptions with equal identities.
        let mut group_of: HashMap<&Identity, usize> = HashMap::new();
        let mut groups: Vec<(&Identity, Vec<&Arc<PgSubscription>>)> = Vec::new();
        for sub in &subs {
            let g = *group_of.entry(&sub.identity).or_insert_with(|| {
                groups.push((&sub.identity, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(sub);
        }
        let mut by_role: HashMap<&str, Vec<usize>> = HashMap::new();
        for (g, (id, _)) in groups.iter().enumerate() {
            by_role.entry(id.role.as_str()).or_default().push(g);
        }
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
            let wanted = wanted(
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
            let visible = match &access.probe {
                None => wanted.into_iter().flat_map(|(_, p)| p).collect(),
                Some(Probe::DenyAll) => Vec::new(),
                Some(Probe::Function { name, ddl }) => {
                    probe(rt, &table, (name, ddl), &rows, wanted).await
                }
            };
            tracing::debug!(
                role,
                visible = visible.len(),
                groups = n_groups,
                route_us = t1.as_micros() as u64,
                probe_us = (t0.elapsed() - t1).as_micros() as u64,
                "visibility decided"
            );
            let old_seen: std::collections::HashSet<(usize, *const PgSubscription)> = visible
                .iter()
                .filter(|(pos, _)| *pos >= indices.len())
                .map(|(pos, sub)| (*pos, Arc::as_ptr(sub)))
                .collect();
            for (pos, sub) in visible {
                if pos >= indices.len() || (keyless && changes[indices[pos]].1.kind == "DELETE") {
                    continue;
                }
                let old_visible = match old_pos.get(&pos) {
                    None => true,
                    Some(o) => old_seen.contains(&(*o, Arc::as_ptr(sub))),
                };
                receivers[indices[pos]].push(Receiver {
                    sub: sub.clone(),
                    access: access.clone(),
                    old_visible,
                });
            }
        }
        tables.insert(oid, table);
    }
    let decided = started.elapsed();
    for (i, (commit_ts, change)) in changes.iter().enumerate() {
        if receivers[i].is_empty() {
            continue;
        }
        send(&tables[&change.table_oid], commit_ts, change, &receivers[i]);
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

/// The (row position, subscription) pairs each claims group of one role wants (event and
/// filters), sorted by position; with `routes`, only the groups a row's owners stand for.
#[allow(clippy::too_many_arguments)]
fn wanted<'a>(
    table: &Table,
    changes: &[(&str, &Change)],
    indices: &[usize],
    rows: &[Row],
    old_pos: &HashMap<usize, usize>,
    groups: &[(&'a Identity, Vec<&'a Arc<PgSubscription>>)],
    members: &[usize],
    routes: Option<&Routes>,
) -> Vec<(&'a Identity, Pairs<'a>)> {
    let mut pairs: HashMap<usize, Pairs> = HashMap::new();
    let mut visit = |pos: usize, g: usize| {
        let change = changes[indices[pos]].1;
        let old = old_pos
            .get(&pos)
            .filter(|&&o| routes.is_none_or(|r| r.reaches(o, g)));
        for &sub in &groups[g].1 {
            if wants(sub, table, change, &rows[pos]) {
                let list = pairs.entry(g).or_default();
                list.push((pos, sub));
                if let Some(&o) = old {
                    list.push((o, sub));
                }
            }
        }
    };
    for pos in 0..indices.len() {
        match routes {
            Some(r) => r.groups(pos).for_each(|g| visit(pos, g)),
            None => members.iter().for_each(|&g| visit(pos, g)),
        }
    }
    pairs
        .into_iter()
        .map(|(g, mut list)| {
            list.sort_by_key(|(p, _)| *p);
            (groups[g].0, list)
        })
        .collect()
}

/// Runs the policy probe for every claims group of one role; returns the visible pairs. A
/// failed round trip withholds the rows (fails closed) and is logged.
async fn probe<'a>(
    rt: &Realtime,
    table: &Table,
    (name, ddl): (&Arc<str>, &Arc<str>),
    rows: &[Row],
    groups: Vec<(&Identity, Pairs<'a>)>,
) -> Pairs<'a> {
    let wal_rows = Value::Array(rows.iter().map(|r| row_json(table, r)).collect()).to_string();
    let (mut roles, mut claims, mut bounds, mut positions) = (vec![], vec![], vec![1i32], vec![]);
    for (id, pairs) in &groups {
        roles.push(id.role.as_str());
        claims.push(id.claims.as_str());
        let start = positions.len();
        positions.extend(pairs.iter().map(|(p, _)| *p as i32 + 1));
        positions[start..].sort_unstable();
        let mut kept = start;
        for i in start..positions.len() {
            if kept == start || positions[i] != positions[kept - 1] {
                positions[kept] = positions[i];
                kept += 1;
            }
        }
        positions.truncate(kept);
        bounds.push(positions.len() as i32 + 1);
    }
    let result = async {
        rt.catalog.ensure_function(name, ddl).await?;
        let client = rt.ctx.db.get().await?;
        let sql = format!(
            "select cb_grp, cb_idx from realtime.\"{name}\"($1, $2, $3, $4, $5::text::jsonb, $6)"
        );
        // Groups share one transaction; when some group's policies fail, all are checked again
        // each in its own subtransaction.
        let mut isolated = false;
        let statement = client.prepare_cached(&sql).await?;
        let rows = loop {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
                [&roles, &claims, &bounds, &positions, &wal_rows, &isolated];
            match client.query(&statement, &params).await {
                Ok(rows) => break rows,
                Err(e) if !isolated && e.as_db_error().is_some() => {
                    tracing::debug!(error = %e, "visibility probe failed; checking each group alone");
                    isolated = true;
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok::<_, anyhow::Error>(
            rows.iter()
                .map(|r| (r.get::<_, i32>(0) as usize, r.get::<_, i32>(1) as usize - 1))
                .collect::<Vec<_>>(),
        )
    }
    .await;
    let seen = match result {
        Ok(seen) => seen,
        Err(e) => {
            tracing::warn!(error = %e, table = %table.name, "visibility check failed; changes withheld");
            return Vec::new();
        }
    };
    let mut visible = Vec::new();
    for (g, pos) in seen {
        if let Some((_, pairs)) = groups.get(g) {
            let from = pairs.partition_point(|(p, _)| *p < pos);
            visible.extend(pairs[from..].iter().take_while(|(p, _)| *p == pos).cloned());
        }
    }
    visible
}

/// The row as `jsonb_populate_recordset` reads it: text values, JSON values for json columns.
fn row_json(table: &Table, row: &Row) -> Value {
    let mut m = Map::new();
    for (name, value) in row {
        let v = match (value, table.column(name)) {
            (None, _) => Value::Null,
            (Some(t), Some(col)) if col.kind == TypeKind::Json => {
                serde_json::from_str(t).unwrap_or(Value::Null)
            }
            (Some(t), _) => Value::String(t.clone()),
        };
        m.insert(name.to_string(), v);
    }
    Value::Object(m)
}

/// The JSON record of a row, keeping only columns the role may see (and `keep` allows).
fn record(
    table: &Table,
    row: &Row,
    access: &Access,
    keep: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    for col in &table.columns {
        if !access.columns.contains(&col.name) || !keep(&col.name) {
            continue;
        }
        if let Some(v) = cell(row, &col.name) {
            m.insert(col.name.clone(), payload::value(col, v));
        }
    }
    m
}

/// Sends one change to its receivers: one payload per role, one message per channel listing
/// the ids of that channel's matching bindings.
fn send(table: &Table, commit_ts: &str, change: &Change, receivers: &[Receiver]) {
    // (role, old row visible) → the payload and the subscriptions it goes to.
    type Payloads<'r> =
        HashMap<(&'r str, bool), ((Value, Option<String>), Vec<&'r Arc<PgSubscription>>)>;
    let mut by_role: Payloads = HashMap::new();
    let mut delivered = 0;
    for r in receivers {
        let entry = by_role
            .entry((r.sub.identity.role.as_str(), r.old_visible))
            .or_insert_with(|| {
                let data = data(table, commit_ts, change, &r.access, r.old_visible);
                let text = exact_text(table, change, &data);
                ((data, text), Vec::new())
            });
        entry.1.push(&r.sub);
    }
    for ((data, text), subs) in by_role.into_values() {
        // (socket, topic) → the ids of its bindings that match, and one of its subscriptions.
        type Channel<'s> = ((u64, &'s str), Vec<u32>, &'s Arc<PgSubscription>);
        let mut channels: Vec<Channel> = Vec::new();
        for sub in subs {
            let key = (sub.outlet.socket, sub.topic.as_str());
            match channels.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, ids, _)) => {
                    if !ids.contains(&sub.id) {
                        ids.push(sub.id)
                    }
                }
                None => channels.push((key, vec![sub.id], sub)),
            }
        }
        for ((_, topic), ids, sub) in channels {
            let mut msg =
                Message::push(topic, "postgres_changes", json!({"ids": ids, "data": data}));
            if let Some(text) = &text {
                msg.payload_text = Some(Arc::from(format!(
                    r#"{{"data":{text},"ids":{}}}"#,
                    Value::from(ids)
                )));
            }
            sub.outlet.send(msg);
            delivered += 1;
        }
    }
    crate::stats::delivered(crate::stats::Delivery::PostgresChanges, delivered);
}

/// The payload's text with numeric values as PostgreSQL printed them, when the change has any
/// (`payload::data_text`); `None` leaves the frame to the `Value`.
fn exact_text(table: &Table, change: &Change, data: &Value) -> Option<String> {
    let numeric = |c: &str| table.column(c).is_some_and(|c| c.kind == TypeKind::Numeric);
    let has = |r: &Option<Row>| r.iter().flatten().any(|(n, v)| v.is_some() && numeric(n));
    if !has(&change.new) && !has(&change.old) {
        return None;
    }
    let wal_text = |old: bool, column: &str| -> Option<&str> {
        if !numeric(column) {
            return None;
        }
        // `record` takes unchanged TOAST values from the old row, as `data` does.
        let rows = if old {
            [change.old.as_ref(), None]
        } else {
            [change.new.as_ref(), change.old.as_ref()]
        };
        rows.into_iter()
            .flatten()
            .find_map(|r| cell(r, column))
            .flatten()
    };
    Some(payload::data_text(data, &wal_text))
}

fn data(
    table: &Table,
    commit_ts: &str,
    change: &Change,
    access: &Access,
    old_visible: bool,
) -> Value {
    // As Supabase, INSERTs and UPDATEs of a table without a primary key arrive as its 400
    // form (its DELETEs as usual), and a role that may not SELECT the key gets the 401 form.
    // Unlike Supabase, both go only to subscribers whose filters and policies let them see
    // the row: the error itself must not tell others that a hidden row changed.
    if table.primary_key.is_empty() && change.kind != "DELETE" {
        return payload::error_form(
            &table.schema,
            &table.name,
            change.kind,
            payload::NO_PRIMARY_KEY,
        );
    }
    if !access.sees_primary_key && !table.primary_key.is_empty() {
        return payload::error_form(
            &table.schema,
            &table.name,
            change.kind,
            payload::UNAUTHORIZED,
        );
    }
    let all = |_: &str| true;
    let new = change.new.as_ref().map(|n| {
        // Unchanged TOAST values come from the old row when it has them.
        let mut row = n.clone();
        if let Some(old) = &change.old {
            for (name, value) in old {
                if !row.iter().any(|(k, _)| k == name) {
                    row.push((name.clone(), value.clone()));
                }
            }
        }
        record(table, &row, access, &all)
    });
    let old = change.old.as_ref().map(|o| {
        if (change.kind == "DELETE" && table.rls) || !old_visible {
            // As Supabase: on RLS tables a DELETE carries only the primary key.
            let pk = |c: &str| table.primary_key.iter().any(|k| k == c);
            record(table, o, access, &pk)
        } else {
            record(table, o, access, &all)
        }
    });
    let (record, old_record) = match change.kind {
        "INSERT" => (new, None),
        "UPDATE" => (new, Some(old.unwrap_or_default())),
        _ => (None, Some(old.unwrap_or_default())),
    };
    Data {
        schema: &table.schema,
        table: &table.name,
        commit_timestamp: commit_ts,
        kind: change.kind,
        columns: &access.columns_json,
        record,
        old_record,
        errors: None,
    }
    .to_value()
}
