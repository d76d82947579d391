//! `craftbase policy explain`: as a given user, which rows of a table pass its policies and
//! which policy decided, or the verdict on a proposed row. Everything runs in one read-only
//! transaction that is rolled back.
//!
//! The rows visible are read exactly as the gateway reads them (the role set, the claims in
//! `request.jwt.claims`). Each policy's expression is then evaluated on every matching row with
//! the same claims but as the connecting superuser, so that hidden rows can be explained too;
//! where a policy's subquery reads another table with RLS, the two may differ, and the output
//! says so for any row where they do.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::catalog::{self, Policy};
use super::filter::{self, quote_ident, Filter};
use super::subject::Subject;

/// Rows read at most.
const MAX_ROWS: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Select,
    Insert,
    Update,
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Select => "select",
            Action::Insert => "insert",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// What was asked.
pub struct Request {
    pub subject: Subject,
    /// `table` or `schema.table`.
    pub table: String,
    pub filters: Vec<Filter>,
    pub action: Action,
    /// The proposed row (insert) or the changed columns (update), as JSON.
    pub row: Option<Value>,
}

/// A policy that applies, and the expression it is judged by here.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub name: String,
    pub permissive: bool,
    /// `using` or `with check`.
    pub clause: &'static str,
    pub expression: String,
}

/// One row and how each applied policy judged it.
#[derive(Debug, Serialize)]
pub struct RowVerdict {
    pub row: Value,
    /// Per applied policy, in order: passed or not (`None` when evaluating it failed).
    pub policies: Vec<Option<bool>>,
    /// What the policies together decide.
    pub allowed: bool,
    /// Select: whether the role actually saw the row (`None` for other actions).
    pub visible: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub role: String,
    pub claims: Value,
    pub table: String,
    pub action: Action,
    /// Why no policy is involved (RLS off, a role that bypasses it), if so.
    pub bypass: Option<String>,
    pub policies: Vec<Applied>,
    /// Policies on the table that do not apply to this role or action.
    pub not_applying: Vec<String>,
    pub rows: Vec<RowVerdict>,
    /// Errors met evaluating a policy (its name, the message).
    pub errors: Vec<(String, String)>,
}

struct TableInfo {
    schema: String,
    name: String,
    rls: bool,
    columns: Vec<(String, String)>,
}

impl TableInfo {
    fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
    fn alias(&self) -> String {
        quote_ident(&self.name)
    }
}

async fn table_info(client: &tokio_postgres::Client, table: &str) -> anyhow::Result<TableInfo> {
    let (schema, name) = table.split_once('.').unwrap_or(("public", table));
    let row = client
        .query_opt(
            "select c.oid::int8, c.relrowsecurity from pg_class c
               join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')",
            &[&schema, &name],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no table {schema}.{name}"))?;
    let oid: i64 = row.get(0);
    let columns = client
        .query(
            "select attname::text, format_type(atttypid, atttypmod) from pg_attribute
              where attrelid = $1::int8::oid and attnum > 0 and not attisdropped order by attnum",
            &[&oid],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(TableInfo {
        schema: schema.to_owned(),
        name: name.to_owned(),
        rls: row.get(1),
        columns,
    })
}

/// The clause a policy judges `action` by, if the policy has one: USING for the rows there
/// are (select, delete, update without a new row), WITH CHECK for a new row.
fn clause(p: &Policy, action: Action, new_row: bool) -> Option<(&'static str, String)> {
    match action {
        Action::Select | Action::Delete => p.using.clone().map(|e| ("using", e)),
        Action::Update if !new_row => p.using.clone().map(|e| ("using", e)),
        // A policy without WITH CHECK checks new rows with its USING.
        Action::Insert | Action::Update => p
            .with_check
            .clone()
            .map(|e| ("with check", e))
            .or_else(|| p.using.clone().map(|e| ("using", e))),
    }
}

/// Explains `req` on the database `client` is connected to (as a superuser).
pub async fn explain(
    client: &mut tokio_postgres::Client,
    req: &Request,
) -> anyhow::Result<Explanation> {
    let info = table_info(client, &req.table).await?;
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for f in &req.filters {
        let ty = info
            .columns
            .iter()
            .find(|(c, _)| *c == f.column)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| anyhow::anyhow!("{} has no column {}", req.table, f.column))?;
        let (sql, vals) = filter::to_sql(f, &info.alias(), &ty, values.len() + 1);
        conditions.push(sql);
        values.extend(vals);
    }
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" where {}", conditions.join(" and "))
    };

    let all = catalog::read(client, std::slice::from_ref(&info.schema)).await?;
    let action = req.action.as_str();
    let (applying, others): (Vec<&Policy>, Vec<&Policy>) = all
        .policies
        .iter()
        .filter(|p| p.table == info.name)
        .partition(|p| p.applies_to(&req.subject.role) && p.covers(action));
    let mut applied = Vec::new();
    for p in &applying {
        if let Some((clause, expression)) = clause(p, req.action, req.row.is_some()) {
            applied.push((p, clause, expression));
        }
    }

    let bypass: Option<String> = {
        let role_bypasses: bool = client
            .query_opt(
                "select rolbypassrls or rolsuper from pg_roles where rolname = $1",
                &[&req.subject.role],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or_else(|| anyhow::anyhow!("no role {}", req.subject.role))?;
        if role_bypasses {
            Some(format!("{} bypasses row-level security", req.subject.role))
        } else if !info.rls {
            Some(format!("row-level security is off on {}", req.table))
        } else {
            None
        }
    };

    let tx = client.transaction().await?;
    tx.batch_execute("set transaction read only; set local statement_timeout = '10s'")
        .await?;
    tx.execute(
        "select set_config('request.jwt.claims', $1, true)",
        &[&req.subject.claims.to_string()],
    )
    .await?;

    // Each policy's verdict on each candidate row, as the superuser with the user's claims.
    let exprs: Vec<String> = applied
        .iter()
        .map(|(_, _, e)| format!("(select ({e}) is true)"))
        .collect();
    let row_param = values.len() + 1;
    let source = match req.action {
        Action::Insert => format!(
            "jsonb_populate_record(null::{}, ${row_param}::text::jsonb) as {}",
            info.qualified(),
            info.alias()
        ),
        Action::Update if req.row.is_some() => format!(
            "(select (jsonb_populate_record({a}, ${row_param}::text::jsonb)).* from {q} as {a}{where_sql} limit {MAX_ROWS}) as {a}",
            q = info.qualified(),
            a = info.alias()
        ),
        _ => format!("{} as {}", info.qualified(), info.alias()),
    };
    let where_outer = match req.action {
        Action::Insert => String::new(),
        Action::Update if req.row.is_some() => String::new(),
        _ => where_sql.clone(),
    };
    let mut params: Vec<String> = values.clone();
    if matches!(req.action, Action::Insert | Action::Update) && req.row.is_some() {
        params.push(req.row.as_ref().map(Value::to_string).unwrap_or_default());
    } else if req.action == Action::Insert {
        anyhow::bail!("--action insert needs --row '{{…}}', the proposed row");
    }
    let select_list = std::iter::once(format!("to_jsonb({})::text", info.alias()))
        .chain(exprs.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("select {select_list} from {source}{where_outer} limit {MAX_ROWS}");
    let bind: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
    let mut errors = Vec::new();
    tx.batch_execute("savepoint verdicts").await?;
    let rows = match tx.query(&sql, &bind).await {
        Ok(rows) => rows
            .iter()
            .map(|r| {
                let row: String = r.get(0);
                let verdicts: Vec<Option<bool>> = (0..exprs.len())
                    .map(|i| r.get::<_, Option<bool>>(i + 1))
                    .collect();
                (row, verdicts)
            })
            .collect::<Vec<_>>(),
        Err(e) => {
            errors.push(("the policies".to_owned(), db_message(&e)));
            tx.batch_execute("rollback to savepoint verdicts").await?;
            Vec::new()
        }
    };

    // What the role actually sees, as the gateway runs it.
    let visible: Option<Vec<String>> = if req.action == Action::Select {
        tx.batch_execute("savepoint as_role").await?;
        tx.execute("select set_config('role', $1, true)", &[&req.subject.role])
            .await
            .context("cannot switch to the role")?;
        let sql = format!(
            "select to_jsonb({a})::text from {q} as {a}{where_sql} limit {MAX_ROWS}",
            q = info.qualified(),
            a = info.alias()
        );
        let bind: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let seen = match tx.query(&sql, &bind).await {
            Ok(rows) => Some(rows.iter().map(|r| r.get(0)).collect()),
            Err(e) => {
                errors.push((format!("select as {}", req.subject.role), db_message(&e)));
                None
            }
        };
        tx.batch_execute("rollback to savepoint as_role").await?;
        seen
    } else {
        None
    };
    tx.rollback().await?;

    let rows = rows
        .into_iter()
        .map(|(row, verdicts)| {
            let allowed = bypass.is_some() || decide(&applied, &verdicts);
            RowVerdict {
                visible: visible.as_ref().map(|v| v.contains(&row)),
                row: serde_json::from_str(&row).unwrap_or(Value::Null),
                policies: verdicts,
                allowed,
            }
        })
        .collect();
    Ok(Explanation {
        role: req.subject.role.clone(),
        claims: req.subject.claims.clone(),
        table: format!("{}.{}", info.schema, info.name),
        action: req.action,
        bypass,
        policies: applied
            .iter()
            .map(|(p, clause, e)| Applied {
                name: p.name.clone(),
                permissive: p.permissive,
                clause,
                expression: e.clone(),
            })
            .collect(),
        not_applying: others
            .iter()
            .map(|p| format!("{} ({} to {})", p.name, p.command, p.roles.join(", ")))
            .collect(),
        rows,
        errors,
    })
}

/// The server's message, not tokio-postgres's wrapping of it.
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

/// PostgreSQL's rule: at least one permissive policy passes and every restrictive one does.
fn decide(applied: &[(&&Policy, &str, String)], verdicts: &[Option<bool>]) -> bool {
    let mut any_permissive = false;
    for ((p, _, _), v) in applied.iter().zip(verdicts) {
        let passed = *v == Some(true);
        if p.permissive {
            any_permissive |= passed;
        } else if !passed {
            return false;
        }
    }
    any_permissive
}

/// The explanation as text.
pub fn render(e: &Explanation) -> String {
    let mut out = format!(
        "{} on {} as {} with claims {}\n",
        e.action.as_str(),
        e.table,
        e.role,
        e.claims
    );
    if let Some(why) = &e.bypass {
        out.push_str(&format!("no policy decides: {why}\n"));
    }
    if e.policies.is_empty() && e.bypass.is_none() {
        out.push_str("no policy applies: every row is refused\n");
    }
    for (i, p) in e.policies.iter().enumerate() {
        out.push_str(&format!(
            "  [P{}] {} \"{}\" {}: {}\n",
            i + 1,
            if p.permissive {
                "permissive"
            } else {
                "restrictive"
            },
            p.name,
            p.clause,
            p.expression
        ));
    }
    for name in &e.not_applying {
        out.push_str(&format!("  (not for this role or action: {name})\n"));
    }
    let allowed = e.rows.iter().filter(|r| r.allowed).count();
    out.push_str(&format!("{} rows, {allowed} allowed\n", e.rows.len()));
    for r in &e.rows {
        let marks: Vec<String> = r
            .policies
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mark = match v {
                    Some(true) => "pass",
                    Some(false) => "fail",
                    None => "error",
                };
                format!("P{} {mark}", i + 1)
            })
            .collect();
        let verdict = if r.allowed { "allowed" } else { "refused" };
        out.push_str(&format!("  {verdict:<8} {}  {}\n", r.row, marks.join(", ")));
        if let Some(visible) = r.visible {
            if visible != r.allowed {
                out.push_str(&format!(
                    "           but the role {} it: a policy's subquery reads differently as the role\n",
                    if visible { "sees" } else { "does not see" }
                ));
            }
        }
    }
    for (what, message) in &e.errors {
        out.push_str(&format!("error in {what}: {message}\n"));
    }
    out
}
