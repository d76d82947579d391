//! Who can possibly see a row. When every permissive SELECT policy that applies to a role has
//! the owner form (`<col> = auth.uid()`, or `EXISTS` of a parent row whose key is the row's
//! column and whose owner column is `auth.uid()`), a row can pass only for claims whose `sub`
//! is one of the row's owners. Delivery then probes only those claims groups instead of every
//! group of the role: with many distinct users this turns users × rows policy evaluations into
//! about one per row. The probe still decides for the candidates (restrictive policies, grants,
//! errors), so this only removes pairs that would fail; any policy it does not recognise leaves
//! the role without an ownership and every group is probed as before.

use std::collections::HashMap;

use deadpool_postgres::Pool;

use super::row::{cell, Row};
use super::table::{quote_ident, Table};
use crate::identity::Identity;

/// `auth.uid()` as craftbase defines it (whitespace-normalised): the claims' `sub` as a uuid,
/// unless the session set `request.jwt.claim.sub` (the probe never does).
const AUTH_UID_BODY: &str =
    "select coalesce( nullif(current_setting('request.jwt.claim.sub', true), ''), \
     (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub') )::uuid";

/// Where a row's owner ids are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The row's own column (its text equals the owner's `auth.uid()` text).
    Column(String),
    /// Parent rows: `lookup` takes the row's `column` values (`$1 text[]`) and returns
    /// (1-based position, owner id text) for every parent row the policy's EXISTS could match.
    Parent { column: String, lookup: String },
}

/// The owner columns of a role's policies on one table: a row's candidates are the union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub owners: Vec<Owner>,
}

/// How a policy names the owner's id: `auth.uid()` as a uuid, or cast to text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UidType {
    Uuid,
    Text,
}

/// A recognised policy, before its columns are checked against the catalog.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    Column {
        column: String,
        uid: UidType,
    },
    Parent {
        /// `schema.table` and its alias in the policy.
        relation: (String, String),
        alias: String,
        key: String,
        column: String,
        owner: String,
        uid: UidType,
    },
}

/// The ownership of `table` for `role`, or `None` when some permissive SELECT policy applying
/// to the role is not of an owner form (or `auth.uid()` is not craftbase's). Call only for a
/// role RLS applies to.
pub async fn analyse(
    client: &mut deadpool_postgres::Client,
    table: &Table,
    role: &str,
) -> Result<Option<Ownership>, anyhow::Error> {
    let tx = client.transaction().await?;
    // Deparsed with an empty search_path, every relation and function is schema-qualified.
    tx.batch_execute("set local search_path = ''").await?;
    let body: Option<String> = tx
        .query_opt(
            "select prosrc from pg_catalog.pg_proc
             where oid = pg_catalog.to_regprocedure('auth.uid()')
               and prorettype = 'pg_catalog.uuid'::pg_catalog.regtype and not prosecdef",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    if body.as_deref().map(normalise).as_deref() != Some(AUTH_UID_BODY) {
        return Ok(None);
    }
    let quals: Vec<Option<String>> = tx
        .query(
            "select pg_catalog.pg_get_expr(p.polqual, p.polrelid)
             from pg_catalog.pg_policy p
             where p.polrelid = $1 and p.polcmd in ('r', '*') and p.polpermissive
               and (0::oid = any(p.polroles) or exists (
                    select 1 from pg_catalog.unnest(p.polroles) pr
                    where pg_catalog.pg_has_role($2::text::pg_catalog.regrole::oid, pr, 'usage')))",
            &[&table.oid, &role],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if quals.is_empty() {
        return Ok(None);
    }
    let mut owners = Vec::new();
    for qual in quals {
        let Some(form) = qual
            .as_deref()
            .and_then(|q| parse(&normalise(q), &table.name))
        else {
            return Ok(None);
        };
        let Some(owner) = check(&tx, table, form).await? else {
            return Ok(None);
        };
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    tx.commit().await?;
    Ok(Some(Ownership { owners }))
}

/// Checks a form's column types (the owner column must have the type the uid is compared as)
/// and builds its lookup.
async fn check(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    form: Form,
) -> Result<Option<Owner>, anyhow::Error> {
    // The type of a column of a relation, as format_type prints it.
    const TYPE_OF: &str = "select pg_catalog.format_type(a.atttypid, a.atttypmod)
         from pg_catalog.pg_attribute a
         where a.attrelid = pg_catalog.to_regclass($1) and a.attname = $2
           and a.attnum > 0 and not a.attisdropped";
    let type_of = |rel: String, col: String| async move {
        let r = tx.query_opt(TYPE_OF, &[&rel, &col]).await?;
        Ok::<_, anyhow::Error>(r.map(|r| r.get::<_, String>(0)))
    };
    let fits = |ty: &Option<String>, uid: UidType| match uid {
        UidType::Uuid => ty.as_deref() == Some("uuid"),
        UidType::Text => ty.as_deref() == Some("text"),
    };
    match form {
        Form::Column { column, uid } => {
            let ty = type_of(table.qualified(), column.clone()).await?;
            Ok(fits(&ty, uid).then_some(Owner::Column(column)))
        }
        Form::Parent {
            relation: (schema, name),
            alias,
            key,
            column,
            owner,
            uid,
        } => {
            let parent = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
            let owner_ty = type_of(parent.clone(), owner.clone()).await?;
            let Some(fk_ty) = type_of(table.qualified(), column.clone()).await? else {
                return Ok(None);
            };
            // A plain or partitioned table: a view could show its reader other rows than the
            // owner's lookup reads.
            let table_kind: Option<bool> = tx
                .query_opt(
                    "select relkind in ('r', 'p') from pg_catalog.pg_class
                     where oid = pg_catalog.to_regclass($1)",
                    &[&parent],
                )
                .await?
                .map(|r| r.get(0));
            if !fits(&owner_ty, uid) || table_kind != Some(true) {
                return Ok(None);
            }
            // The policy's own comparison (`alias.key = row.column`), over every parent row
            // (run as the owner: RLS on the parent could only hide rows, never add them).
            let a = quote_ident(&alias);
            let lookup = format!(
                "select _cb_v.i::int, {a}.{owner}::text from pg_catalog.unnest($1::text[]::{fk_ty}[]) \
                 with ordinality as _cb_v(v, i) join {parent} {a} on {a}.{key} = _cb_v.v \
                 where {a}.{owner} is not null",
                owner = quote_ident(&owner),
                key = quote_ident(&key),
            );
            Ok(Some(Owner::Parent { column, lookup }))
        }
    }
}

/// Collapses whitespace runs (pg_get_expr breaks sub-selects over lines).
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Recognises `(<col> = <uid>)` (either side) or
/// `(EXISTS ( SELECT 1 FROM <schema>.<rel> [<alias>] WHERE ((<a>) AND (<b>))))` where one of
/// a, b is `<alias>.<key> = <table>.<col>` and the other `<alias>.<owner> = <uid>`.
fn parse(q: &str, table: &str) -> Option<Form> {
    if let Some((column, uid)) = comparison(q, None) {
        return Some(Form::Column { column, uid });
    }
    let rest = q
        .strip_prefix("(EXISTS ( SELECT 1 FROM ")?
        .strip_suffix("))")?;
    let (from, cond) = rest.split_once(" WHERE ")?;
    let mut words = from.split(' ');
    let (schema, name) = words.next()?.split_once('.')?;
    let relation = (ident(schema)?, ident(name)?);
    let alias = match words.next() {
        Some(a) => ident(a)?,
        None => relation.1.clone(),
    };
    if words.next().is_some() || alias == table {
        return None;
    }
    let cond = cond.strip_prefix('(')?.strip_suffix(')')?;
    let (a, b) = cond.split_once(" AND ")?;
    let link = |s: &str| {
        let inner = s.strip_prefix('(')?.strip_suffix(')')?;
        let (l, r) = inner.split_once(" = ")?;
        let (key, column) = match (qualified(l, &alias), qualified(r, table)) {
            (Some(k), Some(c)) => (k, c),
            _ => (qualified(r, &alias)?, qualified(l, table)?),
        };
        Some((key, column))
    };
    let ((key, column), (owner, uid)) = match (link(a), comparison(b, Some(&alias))) {
        (Some(l), Some(o)) => (l, o),
        _ => (link(b)?, comparison(a, Some(&alias))?),
    };
    Some(Form::Parent {
        relation,
        alias,
        key,
        column,
        owner,
        uid,
    })
}

/// `(<col> = <uid>)` or `(<uid> = <col>)`, the column qualified by `by` when given.
fn comparison(s: &str, by: Option<&str>) -> Option<(String, UidType)> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    let (l, r) = inner.split_once(" = ")?;
    let column = |c: &str| match by {
        Some(q) => qualified(c, q),
        None => ident(c),
    };
    match (column(l), uid(r)) {
        (Some(c), Some(u)) => Some((c, u)),
        _ => Some((column(r)?, uid(l)?)),
    }
}

/// The deparsed forms of `auth.uid()`, plain or in a sub-select, optionally cast to text.
fn uid(s: &str) -> Option<UidType> {
    match s {
        "auth.uid()" | "( SELECT auth.uid() AS uid)" => Some(UidType::Uuid),
        "(auth.uid())::text" | "(( SELECT auth.uid() AS uid))::text" => Some(UidType::Text),
        _ => None,
    }
}

/// `<by>.<ident>`.
fn qualified(s: &str, by: &str) -> Option<String> {
    let (q, c) = s.split_once('.')?;
    (ident(q)? == by).then(|| ident(c))?
}

/// A plain or quoted identifier (no whitespace, dots or embedded quotes: anything unusual is
/// simply not recognised).
fn ident(s: &str) -> Option<String> {
    if let Some(q) = s.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
        let ok = !q.is_empty() && !q.contains(['"', '.', ' ']);
        return ok.then(|| q.to_owned());
    }
    let mut chars = s.chars();
    let first = chars.next()?;
    let ok = (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    ok.then(|| s.to_owned())
}

/// For each row, the owner ids that may see it (sorted, deduplicated); empty means nobody
/// through these policies. Parent rows are read on the owner's pool.
pub async fn owners(
    admin: &Pool,
    ownership: &Ownership,
    rows: &[Row],
) -> Result<Vec<Vec<String>>, anyhow::Error> {
    let mut out: Vec<Vec<String>> = vec![Vec::new(); rows.len()];
    for owner in &ownership.owners {
        match owner {
            Owner::Column(column) => {
                for (i, row) in rows.iter().enumerate() {
                    if let Some(Some(v)) = cell(row, column) {
                        out[i].push(v.to_owned());
                    }
                }
            }
            Owner::Parent { column, lookup } => {
                let keys: Vec<Option<&str>> =
                    rows.iter().map(|r| cell(r, column).flatten()).collect();
                if keys.iter().all(Option::is_none) {
                    continue;
                }
                let client = admin.get().await?;
                let statement = client.prepare_cached(lookup).await?;
                for r in client.query(&statement, &[&keys]).await? {
                    let (i, id): (i32, String) = (r.get(0), r.get(1));
                    if let Some(list) = out.get_mut((i as usize).wrapping_sub(1)) {
                        list.push(id);
                    }
                }
            }
        }
    }
    for list in &mut out {
        list.sort_unstable();
        list.dedup();
    }
    Ok(out)
}

/// Which claims groups of one role each row (by position) can reach.
pub struct Routes {
    owners: Vec<Vec<String>>,
    by_owner: HashMap<String, Vec<usize>>,
    uid: HashMap<usize, String>,
}

impl Routes {
    /// Routes for `rows` to `groups` (index, identity); `None` when the owners could not be
    /// read, and then every group is probed.
    pub async fn new(
        admin: &Pool,
        ownership: &Ownership,
        rows: &[Row],
        groups: impl Iterator<Item = (usize, &Identity)>,
    ) -> Option<Routes> {
        let owners = match owners(admin, ownership, rows).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read rows' owners; probing every group");
                return None;
            }
        };
        let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
        let mut uid = HashMap::new();
        for (g, id) in groups {
            if let Some(u) = &id.uid {
                by_owner.entry(u.clone()).or_default().push(g);
                uid.insert(g, u.clone());
            }
        }
        Some(Routes {
            owners,
            by_owner,
            uid,
        })
    }

    /// The groups row `pos` can reach.
    pub fn groups(&self, pos: usize) -> impl Iterator<Item = usize> + '_ {
        self.owners[pos]
            .iter()
            .filter_map(|o| self.by_owner.get(o))
            .flatten()
            .copied()
    }

    /// Whether row `pos` can reach group `g`.
    pub fn reaches(&self, pos: usize, g: usize) -> bool {
        self.uid
            .get(&g)
            .is_some_and(|u| self.owners[pos].binary_search(u).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::owner_id;

    fn column(c: &str, uid: UidType) -> Option<Form> {
        Some(Form::Column {
            column: c.into(),
            uid,
        })
    }

    #[test]
    fn owner_forms_are_recognised_on_either_side() {
        let p = |q: &str| parse(&normalise(q), "events");
        assert_eq!(
            p("(user_id = ( SELECT auth.uid() AS uid))"),
            column("user_id", UidType::Uuid)
        );
        assert_eq!(
            p("(auth.uid() = user_id)"),
            column("user_id", UidType::Uuid)
        );
        assert_eq!(
            p("(owner = (( SELECT auth.uid() AS uid))::text)"),
            column("owner", UidType::Text)
        );
        assert_eq!(
            p("(\"Owner\" = (auth.uid())::text)"),
            column("Owner", UidType::Text)
        );
        let parent = Some(Form::Parent {
            relation: ("public".into(), "jobs".into()),
            alias: "j".into(),
            key: "id".into(),
            column: "job_id".into(),
            owner: "user_id".into(),
            uid: UidType::Uuid,
        });
        assert_eq!(
            p("(EXISTS ( SELECT 1\n   FROM public.jobs j\n  WHERE ((j.id = events.job_id) AND (j.user_id = ( SELECT auth.uid() AS uid)))))"),
            parent
        );
        assert_eq!(
            p("(EXISTS ( SELECT 1 FROM public.jobs j WHERE ((auth.uid() = j.user_id) AND (events.job_id = j.id))))"),
            parent
        );
    }

    #[test]
    fn anything_else_is_not_an_owner_form() {
        let p = |q: &str| parse(&normalise(q), "events");
        for q in [
            "((user_id = auth.uid()) OR (owner = 'x'::text))",
            "(NOT (user_id IS DISTINCT FROM auth.uid()))",
            "(user_id <> auth.uid())",
            "((user_id)::text = (auth.uid())::text)",
            "(user_id = auth.jwt())",
            "true",
            "(EXISTS ( SELECT 1 FROM public.jobs j WHERE ((j.id = events.job_id) AND (j.user_id = auth.uid()) AND (j.live))))",
            "(EXISTS ( SELECT 1 FROM public.jobs j WHERE ((j.id = events.job_id) OR (j.user_id = auth.uid()))))",
            "(EXISTS ( SELECT 1 FROM public.jobs j WHERE ((j.id = other.job_id) AND (j.user_id = auth.uid()))))",
            "(EXISTS ( SELECT 1 FROM public.jobs j WHERE ((j.id = events.job_id) AND (events.user_id = auth.uid()))))",
            "(EXISTS ( SELECT 1 FROM ONLY public.jobs j WHERE ((j.id = events.job_id) AND (j.user_id = auth.uid()))))",
            "(NOT (EXISTS ( SELECT 1 FROM public.jobs j WHERE ((j.id = events.job_id) AND (j.user_id = auth.uid())))))",
        ] {
            assert_eq!(p(q), None, "{q}");
        }
    }

    #[test]
    fn a_sub_is_read_as_postgresql_prints_a_uuid() {
        assert_eq!(
            owner_id("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").as_deref(),
            Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
        assert_eq!(owner_id("not-a-uuid"), None);
    }
}
