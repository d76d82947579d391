//! Why a `postgres_changes` event reaches a subscriber or not, in words, and the realtime preview
//! as text (`policy::realtime` decides; this only explains).

use craftbase_realtime::preview::{Probe, Table, Verdict};

use super::preview::{Preview, SelectPolicy};

/// What one event's explanation is made of.
pub struct Facts<'a> {
    pub kind: &'static str,
    pub table: &'a Table,
    pub published: bool,
    pub publishes: &'a [&'static str],
    /// `pg_class.relreplident`.
    pub identity: char,
    pub role: &'a str,
    pub verdict: &'a Verdict,
    pub policies: &'a [SelectPolicy],
    pub judged: &'a [Option<bool>],
    pub old_judged: Option<&'a [Option<bool>]>,
}

fn marks(policies: &[SelectPolicy], judged: &[Option<bool>]) -> String {
    policies
        .iter()
        .zip(judged)
        .map(|(p, v)| {
            let mark = match v {
                Some(true) => "passes",
                Some(false) => "fails",
                None => "errors",
            };
            let kind = if p.permissive { "" } else { " (restrictive)" };
            format!("{}{kind} {mark}", p.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reasons for one subscriber's verdict on one event, most important first.
pub fn reasons(f: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    let name = format!("{}.{}", f.table.schema, f.table.name);
    if !f.published {
        out.push(format!(
            "{name} is not in the supabase_realtime publication: nobody receives its changes \
             (alter publication supabase_realtime add table {})",
            f.table.qualified()
        ));
    } else if !f.publishes.contains(&f.kind) {
        out.push(format!(
            "the supabase_realtime publication does not publish {}s",
            f.kind
        ));
    }
    let v = f.verdict;
    let delete = f.kind == "DELETE";
    match &v.access.probe {
        None if f.table.rls => out.push(format!(
            "{} bypasses row-level security (superuser, BYPASSRLS or the table's owner)",
            f.role
        )),
        None => out.push(format!(
            "row-level security is off on {name}: every role that may SELECT its primary key receives its changes"
        )),
        Some(Probe::DenyAll) => out.push(format!(
            "no SELECT policy applies to {}: row-level security hides every row from it",
            f.role
        )),
        Some(Probe::Function { .. }) => {
            let on = if delete {
                "on the old row as the WAL carries it"
            } else {
                "on the new row"
            };
            let verdict = if v.row_visible { "visible" } else { "hidden" };
            out.push(format!(
                "SELECT policies {on}: {} (row {verdict})",
                marks(f.policies, f.judged)
            ));
            if delete && !v.row_visible && f.identity != 'f' {
                out.push(
                    "the WAL carries only the deleted row's key (REPLICA IDENTITY is not FULL), \
                     so a policy reading another column sees NULL: set REPLICA IDENTITY FULL"
                        .into(),
                );
            }
            if let (Some(old), Some(seen)) = (f.old_judged, v.old_visible) {
                out.push(format!(
                    "on the old row: {}{}",
                    marks(f.policies, old),
                    if seen || v.data.is_none() {
                        ""
                    } else {
                        ": hidden, so old_record carries only the primary key"
                    }
                ));
            }
            let any_permissive = f
                .policies
                .iter()
                .zip(f.judged)
                .any(|(p, j)| p.permissive && *j == Some(true));
            let restrictive_ok = f
                .policies
                .iter()
                .zip(f.judged)
                .all(|(p, j)| p.permissive || *j == Some(true));
            if (any_permissive && restrictive_ok) != v.row_visible {
                out.push(
                    "the policies evaluated one by one disagree with realtime's combined probe \
                     (a policy's subquery or an error): the probe's verdict is shown"
                        .into(),
                );
            }
        }
    }
    if !v.access.sees_primary_key && !f.table.primary_key.is_empty() && v.row_visible {
        out.push(if delete {
            format!(
                "{} may not SELECT the primary key: it receives no DELETE",
                f.role
            )
        } else {
            format!(
                "{} may not SELECT the primary key: it receives only Supabase's \
                 \"Error 401: Unauthorized\" form, without the row",
                f.role
            )
        });
    }
    if f.table.primary_key.is_empty() && !delete && v.row_visible {
        out.push(
            "the table has no primary key: it arrives as \"Error 400: Bad Request, no primary key\""
                .into(),
        );
    }
    if v.data.is_some() {
        let hidden: Vec<&str> = f
            .table
            .columns
            .iter()
            .filter(|c| !v.access.columns.contains(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        if !hidden.is_empty() {
            out.push(format!(
                "columns left out (no SELECT privilege): {}",
                hidden.join(", ")
            ));
        }
        if delete && f.table.rls {
            out.push(
                "on a table with row-level security a DELETE carries only the primary key".into(),
            );
        }
    }
    out
}

/// What the publication and the replica identity mean for every subscriber.
pub fn notes(table: &Table, published: bool, publishes: &[&str], identity: char) -> Vec<String> {
    let mut out = Vec::new();
    if !published {
        out.push(format!(
            "not in the supabase_realtime publication: no change of it is delivered \
             (alter publication supabase_realtime add table {})",
            table.qualified()
        ));
    } else if publishes.len() < 3 {
        out.push(format!(
            "the publication publishes only {}",
            publishes.join(", ")
        ));
    }
    match identity {
        'f' => {}
        'n' => out.push(
            "REPLICA IDENTITY NOTHING: UPDATEs and DELETEs of a published table fail".into(),
        ),
        _ if table.rls => out.push(format!(
            "REPLICA IDENTITY {}: a DELETE's old row carries only the key, so policies on other \
             columns fail on it and DELETEs reach only roles that bypass RLS; an UPDATE's \
             old_record is empty unless the key changes (alter table {} replica identity full)",
            if identity == 'i' { "USING INDEX" } else { "DEFAULT" },
            table.qualified()
        )),
        _ => out.push(format!(
            "REPLICA IDENTITY {}: old_record carries only the key (alter table {} replica identity full)",
            if identity == 'i' { "USING INDEX" } else { "DEFAULT" },
            table.qualified()
        )),
    }
    out
}

/// The preview as text.
pub fn render(p: &Preview) -> String {
    let mut out = format!("realtime preview of {} for the row {}\n", p.table, p.row);
    if let Some(old) = &p.old {
        out.push_str(&format!("  (UPDATE from {old})\n"));
    }
    out.push_str(&format!(
        "  publication supabase_realtime: {}; row-level security: {}; replica identity: {}\n",
        if p.published {
            format!("yes ({})", p.publishes.join(", "))
        } else {
            "no".to_owned()
        },
        if p.rls { "on" } else { "off" },
        p.replica_identity
    ));
    for n in &p.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    for s in &p.subscribers {
        out.push_str(&format!("\n{}, role {}\n", s.label, s.role));
        for (i, pol) in s.policies.iter().enumerate() {
            out.push_str(&format!(
                "  [P{}] {}{}: {}\n",
                i + 1,
                pol.name,
                if pol.permissive { "" } else { " (restrictive)" },
                pol.expression
            ));
        }
        for e in &s.events {
            let verdict = if e.delivered {
                "delivered"
            } else {
                "not delivered"
            };
            out.push_str(&format!("  {:<6}  {verdict}\n", e.event));
            for r in &e.reasons {
                out.push_str(&format!("          - {r}\n"));
            }
            if let Some(data) = e.data.as_ref().filter(|_| e.delivered) {
                for key in ["record", "old_record", "errors"] {
                    if let Some(v) = data.get(key).filter(|v| !v.is_null()) {
                        out.push_str(&format!("          {key}: {v}\n"));
                    }
                }
            }
        }
    }
    out
}
