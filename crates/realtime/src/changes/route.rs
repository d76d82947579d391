//! Route, the pipeline's second step (`pipeline`): which subscriptions a table's changes could
//! reach before any policy is asked. Subscribers with equal claims form one group; each group's
//! bindings are matched against the change (event, filters on the committed values); when the
//! role's policies have an owner form (`ownership`), a row is paired only with the groups of its
//! owners.

use std::collections::HashMap;
use std::sync::Arc;

use super::decode::Change;
use super::ownership::Routes;
use super::registry::PgSubscription;
use super::row::{cell, Row};
use super::table::{Table, TypeKind};
use crate::identity::Identity;

/// Subscriptions paired with the position of the row they want.
pub type Pairs<'a> = Vec<(usize, &'a Arc<PgSubscription>)>;

/// Subscriptions with equal identities (claims groups), each with its identity.
pub type Groups<'a> = Vec<(&'a Identity, Vec<&'a Arc<PgSubscription>>)>;

/// The row the decision is made on: the new row (old values filling unchanged TOAST) for
/// INSERT and UPDATE, the old row for DELETE.
pub fn decision_row(change: &Change) -> Row {
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

/// The rows a table's changes (`indices` into `changes`) are decided on: each change's decision
/// row, then the old rows of its UPDATEs, checked too: a row moved to a subscriber must not
/// bring along the content its previous owner's policies hid from that subscriber. Returns the
/// rows and, per UPDATE position, the position of its old row.
pub fn rows(changes: &[(&str, &Change)], indices: &[usize]) -> (Vec<Row>, HashMap<usize, usize>) {
    let mut rows: Vec<Row> = indices
        .iter()
        .map(|&i| decision_row(changes[i].1))
        .collect();
    let mut old_pos: HashMap<usize, usize> = HashMap::new();
    for (pos, &i) in indices.iter().enumerate() {
        if let ("UPDATE", Some(old)) = (changes[i].1.kind, &changes[i].1.old) {
            old_pos.insert(pos, rows.len());
            rows.push(old.clone());
        }
    }
    (rows, old_pos)
}

/// A table's subscriptions in claims groups (equal identities), and the groups of each role.
pub fn claims_groups(subs: &[Arc<PgSubscription>]) -> (Groups<'_>, HashMap<&str, Vec<usize>>) {
    let mut group_of: HashMap<&Identity, usize> = HashMap::new();
    let mut groups: Groups = Vec::new();
    for sub in subs {
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
    (groups, by_role)
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

/// The (row position, subscription) pairs each claims group of one role wants (event and
/// filters), sorted by position; with `routes`, only the groups a row's owners stand for.
#[allow(clippy::too_many_arguments)]
pub fn wanted<'a>(
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
