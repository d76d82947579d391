//! The lints, each a function over the [`Catalog`]: security first (what leaks), then what hides
//! every row, then what is slow. Written from each rule's intent (Supabase's splinter has
//! similar ones); `docs` in the README lists them.

use super::catalog::{Catalog, Policy, Table};
use super::finding::{Finding, Level};

/// The roles the API runs requests as, besides the service role (which bypasses RLS).
const API_ROLES: [&str; 2] = ["anon", "authenticated"];
const COMMANDS: [&str; 4] = ["select", "insert", "update", "delete"];
/// Calls whose value is the same for every row of a statement.
const PER_STATEMENT_CALLS: [&str; 5] = [
    "auth.uid()",
    "auth.jwt()",
    "auth.role()",
    "auth.email()",
    "current_setting(",
];

/// Every rule, in the order findings are printed.
pub fn check(catalog: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for table in &catalog.tables {
        let policies: Vec<&Policy> = catalog
            .policies
            .iter()
            .filter(|p| p.schema == table.schema && p.table == table.name)
            .collect();
        rls_disabled(table, &mut out);
        view_not_security_invoker(table, &mut out);
        rls_enabled_no_policy(table, &policies, &mut out);
        anon_grant_without_policy(table, &policies, &mut out);
        realtime_replica_identity(table, &policies, &mut out);
        for policy in &policies {
            policy_always_true(table, policy, &mut out);
            policy_reads_user_metadata(policy, &mut out);
            auth_call_per_row(policy, &mut out);
            policy_column_unindexed(table, policy, &mut out);
            restrictive_always_true(policy, &mut out);
        }
        restrictive_without_permissive(table, &policies, &mut out);
        duplicate_permissive(table, &policies, &mut out);
    }
    for f in &catalog.functions {
        if f.api_reachable && !f.fixed_search_path {
            out.push(Finding {
                id: "security_definer_search_path",
                level: Level::Warn,
                object: f.signature.clone(),
                message: "a SECURITY DEFINER function the API may call has no fixed search_path: a caller's objects can shadow the ones it means".into(),
                fix: format!("alter function {} set search_path = '';", f.signature),
            });
        }
    }
    out.sort_by_key(|f| f.level);
    out
}

fn is_table(t: &Table) -> bool {
    matches!(t.kind, 'r' | 'p')
}

fn rls_disabled(t: &Table, out: &mut Vec<Finding>) {
    if is_table(t) && !t.rls && t.api_reachable {
        out.push(Finding {
            id: "rls_disabled",
            level: Level::Error,
            object: t.qualified(),
            message: "row-level security is off on a table the API can reach: every row is open to anon and authenticated as far as their grants go".into(),
            fix: format!("alter table {} enable row level security;  -- then write its policies", t.qualified()),
        });
    }
}

fn view_not_security_invoker(t: &Table, out: &mut Vec<Finding>) {
    if t.kind == 'v' && !t.security_invoker && t.api_reachable {
        out.push(Finding {
            id: "view_not_security_invoker",
            level: Level::Error,
            object: t.qualified(),
            message: "a view the API can reach runs with its owner's rights, so the policies of the tables under it do not apply to the caller".into(),
            fix: format!("alter view {} set (security_invoker = on);", t.qualified()),
        });
    }
}

fn rls_enabled_no_policy(t: &Table, policies: &[&Policy], out: &mut Vec<Finding>) {
    if is_table(t) && t.rls && policies.is_empty() && t.api_reachable {
        out.push(Finding {
            id: "rls_enabled_no_policy",
            level: Level::Warn,
            object: t.qualified(),
            message: "row-level security is on but there is no policy: every row is hidden from anon and authenticated".into(),
            fix: format!("create policy … on {} …;  -- or revoke the grants if the API should not reach it", t.qualified()),
        });
    }
}

fn anon_grant_without_policy(t: &Table, policies: &[&Policy], out: &mut Vec<Finding>) {
    if !is_table(t) || !t.rls || policies.is_empty() {
        return;
    }
    let beyond: Vec<&str> = t
        .anon_grants
        .iter()
        .map(String::as_str)
        .filter(|cmd| {
            !policies
                .iter()
                .any(|p| p.permissive && p.applies_to("anon") && p.covers(cmd))
        })
        .collect();
    if !beyond.is_empty() {
        let cmds = beyond.join(", ");
        out.push(Finding {
            id: "anon_grant_without_policy",
            level: Level::Info,
            object: t.qualified(),
            message: format!("anon is granted {cmds} but no policy lets anon do so: the grants are broader than the policies (Supabase grants all to anon by default), one careless policy away from a leak"),
            fix: format!("revoke {cmds} on {} from anon;", t.qualified()),
        });
    }
}

fn realtime_replica_identity(t: &Table, policies: &[&Policy], out: &mut Vec<Finding>) {
    if is_table(t) && t.published && t.replica_identity != 'f' {
        let reads_more_than_key = policies.iter().any(|p| !p.columns.is_empty());
        out.push(Finding {
            id: "realtime_replica_identity",
            level: if reads_more_than_key { Level::Warn } else { Level::Info },
            object: t.qualified(),
            message: "published to supabase_realtime without REPLICA IDENTITY FULL: UPDATE and DELETE changes carry only the key of the old row, so subscribers get no old record and a policy reading other columns cannot be checked on a delete".into(),
            fix: format!("alter table {} replica identity full;", t.qualified()),
        });
    }
}

fn is_true(expr: &Option<String>) -> bool {
    expr.as_deref().is_some_and(|e| e.trim() == "true")
}

fn policy_always_true(t: &Table, p: &Policy, out: &mut Vec<Finding>) {
    let for_api = API_ROLES.iter().any(|r| p.applies_to(r));
    if p.permissive && for_api && t.user_data && (is_true(&p.using) || is_true(&p.with_check)) {
        out.push(Finding {
            id: "policy_always_true",
            level: Level::Error,
            object: p.object(),
            message: format!(
                "a policy that is always true lets {} {} every row of a table holding users' data",
                p.roles.join(", "),
                p.command
            ),
            fix: "compare the owner column with (select auth.uid()) instead of true".into(),
        });
    }
}

fn policy_reads_user_metadata(p: &Policy, out: &mut Vec<Finding>) {
    let reads = p
        .expressions()
        .any(|e| e.contains("user_metadata") || e.contains("raw_user_meta_data"));
    if reads {
        out.push(Finding {
            id: "policy_reads_user_metadata",
            level: Level::Error,
            object: p.object(),
            message: "the policy trusts user_metadata, which every user can change about themselves (supabase.auth.updateUser)".into(),
            fix: "read app_metadata instead (only the service role can write it)".into(),
        });
    }
}

/// How many times `call` occurs in `expr`, and how many of those are a scalar subquery's whole
/// select list (`( SELECT auth.uid() AS uid)`, as PostgreSQL prints `(select auth.uid())`).
fn calls(expr: &str, call: &str) -> (usize, usize) {
    let mut all = 0;
    let mut wrapped = 0;
    for (at, _) in expr.match_indices(call) {
        all += 1;
        if expr[..at].trim_end().ends_with("SELECT") {
            wrapped += 1;
        }
    }
    (all, wrapped)
}

fn auth_call_per_row(p: &Policy, out: &mut Vec<Finding>) {
    let mut bare: Vec<&str> = Vec::new();
    for call in PER_STATEMENT_CALLS {
        let (all, wrapped) = p
            .expressions()
            .map(|e| calls(e, call))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        if all > wrapped {
            bare.push(call.trim_end_matches('('));
        }
    }
    if !bare.is_empty() {
        out.push(Finding {
            id: "auth_call_per_row",
            level: Level::Warn,
            object: p.object(),
            message: format!(
                "{} is called for every row; its value is the same for the whole statement",
                bare.join(", ")
            ),
            fix: "wrap it in a subquery, e.g. (select auth.uid()), so PostgreSQL evaluates it once"
                .into(),
        });
    }
}

fn policy_column_unindexed(t: &Table, p: &Policy, out: &mut Vec<Finding>) {
    if !is_table(t) || !API_ROLES.iter().any(|r| p.applies_to(r)) {
        return;
    }
    let missing: Vec<&String> = p
        .columns
        .iter()
        .filter(|c| !t.indexed_columns.contains(c))
        .collect();
    if !missing.is_empty() {
        let cols: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
        out.push(Finding {
            id: "policy_column_unindexed",
            level: Level::Warn,
            object: p.object(),
            message: format!(
                "the policy filters on {} with no index leading on it: every query scans the table",
                cols.join(", ")
            ),
            fix: format!("create index on {} ({});", t.qualified(), cols[0]),
        });
    }
}

fn restrictive_always_true(p: &Policy, out: &mut Vec<Finding>) {
    if !p.permissive && (is_true(&p.using) || (p.using.is_none() && is_true(&p.with_check))) {
        out.push(Finding {
            id: "restrictive_always_true",
            level: Level::Info,
            object: p.object(),
            message: "a restrictive policy that is always true restricts nothing".into(),
            fix: "give it the condition every row must meet, or drop it".into(),
        });
    }
}

/// For each API role and command: the permissive policies that apply.
fn permissive_for<'a>(policies: &[&'a Policy], role: &str, cmd: &str) -> Vec<&'a Policy> {
    policies
        .iter()
        .filter(|p| p.permissive && p.applies_to(role) && p.covers(cmd))
        .copied()
        .collect()
}

fn restrictive_without_permissive(t: &Table, policies: &[&Policy], out: &mut Vec<Finding>) {
    for role in API_ROLES {
        for cmd in COMMANDS {
            let restrictive = policies
                .iter()
                .find(|p| !p.permissive && p.applies_to(role) && p.covers(cmd));
            if let Some(r) = restrictive {
                if permissive_for(policies, role, cmd).is_empty() {
                    out.push(Finding {
                        id: "restrictive_without_permissive",
                        level: Level::Warn,
                        object: r.object(),
                        message: format!("{role} has a restrictive policy for {cmd} on {} but no permissive one: restrictive policies only narrow what a permissive one allows, so no row passes", t.qualified()),
                        fix: format!("add a permissive policy for {cmd} to {role}, or drop the restrictive one"),
                    });
                }
            }
        }
    }
}

fn duplicate_permissive(t: &Table, policies: &[&Policy], out: &mut Vec<Finding>) {
    for role in API_ROLES {
        for cmd in COMMANDS {
            let found = permissive_for(policies, role, cmd);
            if found.len() > 1 {
                let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
                out.push(Finding {
                    id: "duplicate_permissive",
                    level: Level::Warn,
                    object: t.qualified(),
                    message: format!("{} permissive policies for {role} {cmd} ({}): each is evaluated for every row", found.len(), names.join(", ")),
                    fix: "merge them into one policy whose condition ORs theirs".into(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::calls;

    #[test]
    fn a_call_in_a_scalar_subquery_counts_as_wrapped() {
        assert_eq!(calls("(user_id = auth.uid())", "auth.uid()"), (1, 0));
        assert_eq!(
            calls("(user_id = ( SELECT auth.uid() AS uid))", "auth.uid()"),
            (1, 1)
        );
        assert_eq!(
            calls(
                "((a = auth.uid()) OR (b = ( SELECT auth.uid() AS uid)))",
                "auth.uid()"
            ),
            (2, 1)
        );
    }
}
