//! Authorize, the pipeline's third step (`pipeline`; realtime-authorization.md): of the pairs
//! `route` found, a subscriber receives a change only if the table's SELECT policies, evaluated
//! for its claims on the values that were committed, let it see the row (and, when its role may
//! not SELECT the primary key, only in Supabase's 401 form and never a DELETE). DELETEs are
//! checked on the old row, so a hidden row's deletion reaches nobody.
//!
//! Subscribers with equal claims share one check, and one statement per (table, role) checks
//! every (claims group, row) pair of a batch of changes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::Pool;
use serde_json::{Map, Value};

use super::catalog::{Access, Catalog, Probe};
use super::registry::PgSubscription;
use super::route::Pairs;
use super::row::Row;
use super::table::{Table, TypeKind};
use crate::identity::Identity;

/// A subscription that receives a change.
#[derive(Clone)]
pub struct Receiver {
    pub sub: Arc<PgSubscription>,
    pub access: Arc<Access>,
    /// For an UPDATE: whether the old row passed the subscriber's policies too; if not, the
    /// old record carries the primary key only.
    pub old_visible: bool,
}

/// The pairs of `wanted` (claims group, its pairs) that the role's policies let through.
pub async fn visible<'a>(
    catalog: &Catalog,
    db: &Pool,
    table: &Table,
    access: &Access,
    rows: &[Row],
    wanted: Vec<(&Identity, Pairs<'a>)>,
) -> Pairs<'a> {
    match &access.probe {
        None => wanted.into_iter().flat_map(|(_, p)| p).collect(),
        Some(Probe::DenyAll) => Vec::new(),
        Some(Probe::Function { name, ddl }) => {
            let result = async {
                catalog.ensure_function(name, ddl).await?;
                let client = db.get().await?;
                probe(&client, name, table, rows, &wanted, false).await
            }
            .await;
            match result {
                Ok(seen) => pick(wanted, seen),
                Err(e) => {
                    tracing::warn!(error = %e, table = %table.name, "visibility check failed; changes withheld");
                    Vec::new()
                }
            }
        }
    }
}

/// The receivers of each change position among the visible pairs: the old rows of UPDATEs
/// (positions from `changes` on) only say whether the old record may be shown in full, and a
/// role without the primary key gets no DELETEs (`keyless`).
pub fn receivers(
    visible: Pairs<'_>,
    changes: usize,
    old_pos: &HashMap<usize, usize>,
    is_delete: impl Fn(usize) -> bool,
    keyless: bool,
    access: &Arc<Access>,
) -> Vec<(usize, Receiver)> {
    let old_seen: HashSet<(usize, *const PgSubscription)> = visible
        .iter()
        .filter(|(pos, _)| *pos >= changes)
        .map(|(pos, sub)| (*pos, Arc::as_ptr(sub)))
        .collect();
    let mut out = Vec::new();
    for (pos, sub) in visible {
        if pos >= changes || (keyless && is_delete(pos)) {
            continue;
        }
        let old_visible = match old_pos.get(&pos) {
            None => true,
            Some(o) => old_seen.contains(&(*o, Arc::as_ptr(sub))),
        };
        out.push((
            pos,
            Receiver {
                sub: sub.clone(),
                access: access.clone(),
                old_visible,
            },
        ));
    }
    out
}

/// Runs the probe function `name` (already created) on `client` for every claims group of one
/// role; returns the (group, row position) pairs it lets through. Unless `isolated`, the groups
/// first share one transaction, and are checked again each in its own subtransaction when some
/// group's policies fail; a caller inside a transaction passes `isolated`, as a failed statement
/// would abort it. Any other failure is returned, and the caller withholds the rows.
pub async fn probe<C: deadpool_postgres::GenericClient>(
    client: &C,
    name: &str,
    table: &Table,
    rows: &[Row],
    groups: &[(&Identity, Pairs<'_>)],
    mut isolated: bool,
) -> Result<Vec<(usize, usize)>, anyhow::Error> {
    let wal_rows = Value::Array(rows.iter().map(|r| row_json(table, r)).collect()).to_string();
    let (mut roles, mut claims, mut bounds, mut positions) = (vec![], vec![], vec![1i32], vec![]);
    for (id, pairs) in groups {
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
    let sql = format!(
        "select cb_grp, cb_idx from realtime.\"{name}\"($1, $2, $3, $4, $5::text::jsonb, $6)"
    );
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
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i32>(0) as usize, r.get::<_, i32>(1) as usize - 1))
        .collect())
}

/// The pairs of `groups` whose (group, row position) the probe let through (`seen`).
pub fn pick<'a>(groups: Vec<(&Identity, Pairs<'a>)>, seen: Vec<(usize, usize)>) -> Pairs<'a> {
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
pub fn row_json(table: &Table, row: &Row) -> Value {
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
