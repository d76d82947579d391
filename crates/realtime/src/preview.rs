//! What `postgres_changes` would deliver of one change, without a socket or a slot: the
//! decisions of the delivery pipeline (`changes::pipeline`) for a change the caller made in its
//! own transaction, which it then rolls back (`craftbase policy explain --realtime`). The role's
//! access comes from the same `Catalog`, the SELECT policies from the same probe function
//! (`authorize::probe`, run in the caller's transaction so a policy's subquery sees the change as
//! if committed), the receivers from `authorize::receivers` and the message from `payload::data`.
//!
//! A previewed subscriber has no filter and wants every event. Owner routing
//! (`changes::ownership`) is left out: it only skips pairs the probe would refuse.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::GenericClient;
use serde_json::Value;

use crate::changes::authorize;
/// A WAL row as the probe reads it (`jsonb_populate_record`): text values, JSON for json columns.
pub use crate::changes::authorize::row_json;
pub use crate::changes::catalog::{Access, Catalog, Probe};
pub use crate::changes::decode::Change;
use crate::changes::payload;
use crate::changes::registry::{EventFilter, PgSubscription};
pub use crate::changes::row::Row;
pub use crate::changes::table::Table;
pub use crate::identity::{owner_id, Identity};
use crate::outlet::Outlet;

/// What one subscriber would get of a change.
#[derive(Debug)]
pub struct Verdict {
    /// The role's columns, key privilege and policy probe, as delivery reads them.
    pub access: Arc<Access>,
    /// Whether the role's SELECT policies let it see the row the decision is made on: the new
    /// row, or for a DELETE the old row as the WAL carries it (true when RLS does not apply).
    pub row_visible: bool,
    /// For an UPDATE whose WAL carries the old row: whether the policies let it see that too
    /// (if not, `old_record` holds only the primary key).
    pub old_visible: Option<bool>,
    /// The `data` of the `postgres_changes` message, when the change is delivered.
    pub data: Option<Value>,
}

/// Creates the probe functions of `accesses` in the caller's transaction (rolled back with it),
/// as `Catalog::ensure_function` creates them for delivery.
pub async fn install<C: GenericClient>(
    client: &C,
    accesses: &[Arc<Access>],
) -> Result<(), anyhow::Error> {
    for access in accesses {
        if let Some(Probe::Function { ddl, .. }) = &access.probe {
            client.batch_execute(ddl).await?;
        }
    }
    Ok(())
}

/// The row delivery decides on, as `route::decision_row` builds it: the new row (old values
/// filling unchanged TOAST) for INSERT and UPDATE, the old row for DELETE.
fn decision_row(change: &Change) -> Row {
    match (change.kind, &change.new, &change.old) {
        ("DELETE", _, Some(old)) => old.clone(),
        (_, Some(new), old) => {
            let mut row = new.clone();
            for (name, value) in old.iter().flatten() {
                if !row.iter().any(|(n, _)| n == name) {
                    row.push((name.clone(), value.clone()));
                }
            }
            row
        }
        _ => Vec::new(),
    }
}

/// The verdict for each subscriber (an identity and its role's access to `table`) on `change`,
/// decided on `client` (inside the caller's transaction, after `install`).
pub async fn decide<C: GenericClient>(
    client: &C,
    table: &Table,
    change: &Change,
    commit_timestamp: &str,
    subscribers: &[(Identity, Arc<Access>)],
) -> Result<Vec<Verdict>, anyhow::Error> {
    // As `route::rows`: the decision row, then an UPDATE's old row, checked too.
    let mut rows = vec![decision_row(change)];
    let mut old_pos = HashMap::new();
    if let ("UPDATE", Some(old)) = (change.kind, &change.old) {
        old_pos.insert(0, 1);
        rows.push(old.clone());
    }
    let mut verdicts = Vec::new();
    for (identity, access) in subscribers {
        let sub = Arc::new(PgSubscription {
            outlet: Outlet::new(0).0,
            topic: "preview".into(),
            id: 0,
            event: EventFilter::All,
            table_oid: table.oid,
            conditions: Vec::new(),
            select: None,
            identity: Arc::new(identity.clone()),
        });
        let wanted = vec![(identity, (0..rows.len()).map(|p| (p, &sub)).collect())];
        // As `authorize::visible`, with the probe in this transaction, each group isolated.
        let visible = match &access.probe {
            None => wanted.into_iter().flat_map(|(_, p)| p).collect(),
            Some(Probe::DenyAll) => Vec::new(),
            Some(Probe::Function { name, .. }) => {
                let seen = authorize::probe(client, name, table, &rows, &wanted, true).await?;
                authorize::pick(wanted, seen)
            }
        };
        let row_visible = visible.iter().any(|(p, _)| *p == 0);
        let old_visible = old_pos.get(&0).map(|o| visible.iter().any(|(p, _)| p == o));
        let keyless = !access.sees_primary_key && !table.primary_key.is_empty();
        let receivers = authorize::receivers(
            visible,
            1,
            &old_pos,
            |_| change.kind == "DELETE",
            keyless,
            access,
        );
        let data = receivers.first().map(|(_, r)| {
            payload::data(
                table,
                commit_timestamp,
                change,
                &r.access,
                r.old_visible,
                None,
            )
        });
        verdicts.push(Verdict {
            access: access.clone(),
            row_visible,
            old_visible,
            data,
        });
    }
    Ok(verdicts)
}
