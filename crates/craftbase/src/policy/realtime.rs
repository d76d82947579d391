//! `craftbase policy explain --realtime`: for a sample row, which subscribers would receive its
//! INSERT, UPDATE and DELETE over `postgres_changes`, and why.
//!
//! Each change is made for real in one transaction that is rolled back (each in a savepoint):
//! the row as PostgreSQL stores it (defaults, triggers, types) is what the WAL would carry, and a
//! policy's subquery sees the change as if committed. The decision is realtime's own code
//! (`craftbase_realtime::preview`): the role's grants and policy probe from its catalog, the probe
//! run on the WAL values, its receivers and payload. Each SELECT policy is also evaluated alone on
//! the same values, as the role, to say which passed.

use std::collections::HashMap;
use std::sync::Arc;

use craftbase_realtime::preview::{self, Access, Catalog, Change, Identity, Probe, Row, Table};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use serde_json::{json, Value};

use super::change;
use super::filter::quote_ident;
use super::preview::{Event, Preview, SelectPolicy, Subscriber};
use super::subject::Subject;

/// A subscriber to preview, and how the output names it.
#[derive(Debug, Clone)]
pub struct Named {
    pub label: String,
    pub subject: Subject,
}

/// What was asked.
pub struct Request {
    /// `table` or `schema.table`.
    pub table: String,
    /// The row: what an INSERT inserts, an UPDATE leaves, a DELETE deletes (JSON object).
    pub row: Value,
    /// The row before the UPDATE (default: `row`).
    pub old: Option<Value>,
    pub subscribers: Vec<Named>,
}

/// The SELECT policies that apply to `role`, chosen as realtime's catalog chooses them.
async fn select_policies<C: GenericClient>(
    client: &C,
    oid: u32,
    role: &str,
) -> anyhow::Result<Vec<SelectPolicy>> {
    Ok(client
        .query(
            "select p.polname::text, p.polpermissive, coalesce(pg_get_expr(p.polqual, p.polrelid), 'false')
               from pg_policy p
              where p.polrelid = $1 and p.polcmd in ('r', '*')
                and (0::oid = any(p.polroles) or exists (
                     select 1 from unnest(p.polroles) pr
                      where pg_has_role($2::text::regrole::oid, pr, 'usage')))
              order by p.polname",
            &[&oid, &role],
        )
        .await?
        .iter()
        .map(|r| SelectPolicy {
            name: r.get(0),
            permissive: r.get(1),
            expression: r.get(2),
        })
        .collect())
}

/// Previews `req` on the database `pool` reaches (as a superuser).
pub async fn preview(pool: &Pool, req: &Request) -> anyhow::Result<Preview> {
    let (schema, name) = req.table.split_once('.').unwrap_or(("public", &req.table));
    let mut client = pool.get().await?;
    let info = change::info(&client, schema, name).await?;
    for value in std::iter::once(&req.row).chain(req.old.as_ref()) {
        let object = value
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("--row and --old take a JSON object"))?;
        for key in object.keys() {
            if !info.published_columns.contains(key) {
                anyhow::bail!("{schema}.{name} has no column {key} that a change can set");
            }
        }
    }
    let catalog = Catalog::new(pool.clone());
    let table = catalog.table(info.oid).await?;
    let mut subscribers = Vec::new();
    let mut policies = Vec::new();
    for named in &req.subscribers {
        let role = &named.subject.role;
        let exists = client
            .query_opt("select 1 from pg_roles where rolname = $1", &[role])
            .await?;
        anyhow::ensure!(exists.is_some(), "no role {role}");
        let access = catalog.access(&table, role).await?;
        policies.push(match access.probe {
            Some(Probe::Function { .. }) => select_policies(&client, info.oid, role).await?,
            _ => Vec::new(),
        });
        let claims = &named.subject.claims;
        let identity = Identity {
            role: role.clone(),
            claims: claims.to_string(),
            uid: claims["sub"].as_str().and_then(preview::owner_id),
        };
        subscribers.push((identity, access));
    }

    let tx = client.transaction().await?;
    tx.batch_execute("set local statement_timeout = '10s'")
        .await?;
    let accesses: Vec<Arc<Access>> = subscribers.iter().map(|(_, a)| a.clone()).collect();
    preview::install(&tx, &accesses).await?;
    let commit_timestamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let mut events: Vec<Vec<Event>> = subscribers.iter().map(|_| Vec::new()).collect();
    for kind in ["INSERT", "UPDATE", "DELETE"] {
        tx.batch_execute("savepoint cb_preview").await?;
        let change =
            match change::change(&tx, &info, &table, kind, &req.row, req.old.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    tx.batch_execute("rollback to savepoint cb_preview").await?;
                    let why = format!(
                        "the preview could not {} the row: {}",
                        kind.to_lowercase(),
                        db_message(&e)
                    );
                    for list in &mut events {
                        list.push(Event {
                            event: kind,
                            delivered: false,
                            checked_row: None,
                            policies: Vec::new(),
                            old_policies: None,
                            reasons: vec![why.clone()],
                            data: None,
                        });
                    }
                    continue;
                }
            };
        let verdicts =
            preview::decide(&tx, &table, &change, &commit_timestamp, &subscribers).await?;
        let checked = decision_row(&change);
        let old = match (kind, &change.old) {
            ("UPDATE", Some(old)) => Some(old),
            _ => None,
        };
        for (i, verdict) in verdicts.into_iter().enumerate() {
            let subject = &req.subscribers[i].subject;
            let judged = judge(&tx, &table, &policies[i], subject, &checked).await?;
            let old_judged = match old {
                Some(o) => Some(judge(&tx, &table, &policies[i], subject, o).await?),
                None => None,
            };
            let delivered =
                verdict.data.is_some() && info.published && info.publishes.contains(&kind);
            let reasons = super::delivery::reasons(&super::delivery::Facts {
                kind,
                table: &table,
                published: info.published,
                publishes: &info.publishes,
                identity: info.identity,
                role: &subject.role,
                verdict: &verdict,
                policies: &policies[i],
                judged: &judged,
                old_judged: old_judged.as_deref(),
            });
            events[i].push(Event {
                event: kind,
                delivered,
                checked_row: Some(preview::row_json(&table, &checked)),
                policies: judged,
                old_policies: old_judged,
                reasons,
                data: verdict.data.filter(|_| delivered),
            });
        }
        tx.batch_execute("rollback to savepoint cb_preview").await?;
    }
    tx.rollback().await?;

    let out = subscribers
        .into_iter()
        .zip(policies)
        .zip(events)
        .zip(&req.subscribers)
        .map(|((((_, access), policies), events), named)| Subscriber {
            label: named.label.clone(),
            role: named.subject.role.clone(),
            claims: named.subject.claims.clone(),
            rls: match access.probe {
                Some(Probe::Function { .. }) => "policies",
                Some(Probe::DenyAll) => "none_apply",
                None if table.rls => "bypass",
                None => "off",
            },
            policies,
            hidden_columns: table
                .columns
                .iter()
                .filter(|c| !access.columns.contains(&c.name))
                .map(|c| c.name.clone())
                .collect(),
            sees_primary_key: access.sees_primary_key,
            events,
        })
        .collect();
    Ok(Preview {
        table: format!("{schema}.{name}"),
        row: req.row.clone(),
        old: req.old.clone(),
        published: info.published,
        publishes: info.publishes.clone(),
        rls: table.rls,
        primary_key: table.primary_key.clone(),
        replica_identity: match info.identity {
            'f' => "full",
            'i' => "index",
            'n' => "nothing",
            _ => "default",
        },
        notes: super::delivery::notes(&table, info.published, &info.publishes, info.identity),
        subscribers: out,
    })
}

/// The row delivery decides on: the new row, or a DELETE's old row.
fn decision_row(change: &Change) -> Row {
    match (&change.new, &change.old) {
        (Some(new), _) => new.clone(),
        (None, Some(old)) => old.clone(),
        _ => Vec::new(),
    }
}

/// Each policy's verdict on `row`, evaluated alone as the subject (role and claims), on the
/// WAL values as the probe reads them; each in a savepoint, so an error is that policy's alone.
async fn judge(
    tx: &Transaction<'_>,
    table: &Table,
    policies: &[SelectPolicy],
    subject: &Subject,
    row: &Row,
) -> anyhow::Result<Vec<Option<bool>>> {
    let row = preview::row_json(table, row).to_string();
    let claims = subject.claims.to_string();
    let mut out = Vec::new();
    for p in policies {
        tx.batch_execute("savepoint cb_policy").await?;
        let sql = format!(
            "select ({e}) is true from jsonb_populate_record(null::{q}, $1::text::jsonb) as {a}",
            e = p.expression,
            q = table.qualified(),
            a = quote_ident(&table.name)
        );
        let verdict = async {
            tx.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                &[&subject.role, &claims],
            )
            .await?;
            tx.query_one(&sql, &[&row]).await
        }
        .await
        .ok()
        .map(|r| r.get::<_, bool>(0));
        tx.batch_execute("rollback to savepoint cb_policy").await?;
        out.push(verdict);
    }
    Ok(out)
}

/// The server's message, not tokio-postgres's wrapping of it.
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

/// The subscribers previewed when none is given: anon, the service role, one signed-in user per
/// UUID value of the row (its owner, say: claims from `auth.users` when the user exists there)
/// and a stranger (a random user id).
pub async fn default_subscribers(
    client: &tokio_postgres::Client,
    rows: &[&Value],
) -> anyhow::Result<Vec<Named>> {
    let mut out = Vec::new();
    for role in ["anon", "service_role"] {
        out.push(Named {
            label: role.to_owned(),
            subject: super::subject::resolve(client, role).await?,
        });
    }
    let mut seen: HashMap<uuid::Uuid, ()> = HashMap::new();
    for row in rows {
        for (column, value) in row.as_object().into_iter().flatten() {
            let Some(id) = value.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) else {
                continue;
            };
            if seen.insert(id, ()).is_some() {
                continue;
            }
            out.push(Named {
                label: format!("user {id} (the row's {column})"),
                subject: user(client, id).await?,
            });
        }
    }
    let stranger = uuid::Uuid::new_v4();
    out.push(Named {
        label: format!("user {stranger} (another user)"),
        subject: user(client, stranger).await?,
    });
    Ok(out)
}

/// A user's claims: from `auth.users` when it is there, else a bare signed-in user's.
async fn user(client: &tokio_postgres::Client, id: uuid::Uuid) -> anyhow::Result<Subject> {
    match super::subject::resolve(client, &id.to_string()).await {
        Ok(s) => Ok(s),
        Err(_) => Ok(Subject {
            role: "authenticated".into(),
            claims: json!({"sub": id.to_string(), "role": "authenticated", "aud": "authenticated"}),
        }),
    }
}
