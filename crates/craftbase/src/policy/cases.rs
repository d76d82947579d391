//! `craftbase policy test FILE`: declarative cases (who, what, expected) run each in its own
//! transaction that is rolled back, as the gateway would run the request, reported in TAP or
//! JUnit XML.
//!
//! ```toml
//! setup = "insert into auth.users (id, email) values ('1111…', 'alice@example.com'); …"
//! [users]
//! alice = "11111111-1111-4111-8111-111111111111"
//! [[case]]
//! name = "alice reads her connection"
//! as = "alice"                      # anon, service_role, a [users] name, a user id, or claims
//! table = "user_connections"
//! action = "select"                 # select, insert, update, delete
//! where = ["user_id=eq.1111…"]      # PostgREST filters
//! row = { status = "revoked" }      # insert: the row; update: the new values
//! expect = { allowed = true, rows = 1 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::explain::Action;
use super::filter::{self, quote_ident};
use super::subject;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// SQL run as the superuser at the start of every case's transaction.
    #[serde(default)]
    pub setup: String,
    /// Names for user ids, usable in `as`.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(rename = "as")]
    pub who: toml::Value,
    pub table: String,
    pub action: Action,
    #[serde(rename = "where", default)]
    pub filters: Vec<String>,
    #[serde(default)]
    pub row: Option<toml::Value>,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Select: at least one row; insert: the row went in; update/delete: at least one row changed.
    pub allowed: Option<bool>,
    /// Rows seen or changed.
    pub rows: Option<i64>,
}

/// What a case did.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    /// `None` when it met its expectation, else why not.
    pub failure: Option<String>,
}

fn toml_to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Runs every case of `file` on the database `client` is connected to (as a superuser).
pub async fn run(client: &mut tokio_postgres::Client, file: &File) -> Vec<Outcome> {
    let mut out = Vec::new();
    for case in &file.cases {
        let failure = match run_case(client, file, case).await {
            Ok(None) => None,
            Ok(Some(why)) => Some(why),
            Err(e) => Some(format!("error: {e:#}")),
        };
        out.push(Outcome {
            name: case.name.clone(),
            failure,
        });
    }
    out
}

async fn run_case(
    client: &mut tokio_postgres::Client,
    file: &File,
    case: &Case,
) -> anyhow::Result<Option<String>> {
    let (schema, name) = case
        .table
        .split_once('.')
        .unwrap_or(("public", &case.table));
    let columns: Vec<String> = client
        .query(
            "select a.attname::text from pg_attribute a
               join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
              where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped",
            &[&schema, &name],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    anyhow::ensure!(!columns.is_empty(), "no table {schema}.{name}");
    let types: BTreeMap<String, String> = client
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod) from pg_attribute a
              where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped",
            &[&format!("{}.{}", quote_ident(schema), quote_ident(name))],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(name));
    let alias = quote_ident(name);
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for text in &case.filters {
        let f = filter::parse(text)?;
        let ty = types
            .get(&f.column)
            .ok_or_else(|| anyhow::anyhow!("{} has no column {}", case.table, f.column))?;
        let (sql, vals) = filter::to_sql(&f, &alias, ty, values.len() + 1);
        conditions.push(sql);
        values.extend(vals);
    }
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" where {}", conditions.join(" and "))
    };
    let row = case.row.as_ref().map(toml_to_json);
    let row_columns: Vec<String> = match &row {
        Some(Value::Object(map)) => {
            for k in map.keys() {
                anyhow::ensure!(columns.contains(k), "{} has no column {k}", case.table);
            }
            map.keys().map(|k| quote_ident(k)).collect()
        }
        Some(_) => anyhow::bail!("row must be a table of column = value"),
        None => Vec::new(),
    };
    let row_param = values.len() + 1;
    let populated = format!("jsonb_populate_record(null::{qualified}, ${row_param}::text::jsonb)");
    let sql = match case.action {
        Action::Select => {
            format!("select count(*) from (select 1 from {qualified} as {alias}{where_sql}) s")
        }
        Action::Insert => {
            anyhow::ensure!(!row_columns.is_empty(), "an insert case needs row");
            let cols = row_columns.join(", ");
            format!("insert into {qualified} ({cols}) select {cols} from {populated}")
        }
        Action::Update => {
            anyhow::ensure!(!row_columns.is_empty(), "an update case needs row");
            let cols = row_columns.join(", ");
            format!("update {qualified} as {alias} set ({cols}) = (select {cols} from {populated}){where_sql}")
        }
        Action::Delete => format!("delete from {qualified} as {alias}{where_sql}"),
    };
    if let Some(row) = &row {
        values.push(row.to_string());
    }

    let tx = client.transaction().await?;
    tx.batch_execute("set local statement_timeout = '10s'")
        .await?;
    if !file.setup.trim().is_empty() {
        tx.batch_execute(&file.setup)
            .await
            .map_err(|e| anyhow::anyhow!("setup: {}", db_message(&e)))?;
    }
    let who = match &case.who {
        toml::Value::String(s) => file.users.get(s).cloned().unwrap_or_else(|| s.clone()),
        other => toml_to_json(other).to_string(),
    };
    let subject = subject::resolve(&tx, &who).await?;
    tx.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&subject.role, &subject.claims.to_string()],
    )
    .await?;
    let bind: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
    let result: Result<i64, tokio_postgres::Error> = match case.action {
        Action::Select => tx.query_one(&sql, &bind).await.map(|r| r.get(0)),
        _ => tx.execute(&sql, &bind).await.map(|n| n as i64),
    };
    let _ = tx.rollback().await;
    let (allowed, rows, refusal) = match result {
        Ok(n) => (n > 0, n, None),
        // Refused by a policy (or a missing grant): denied, not broken.
        Err(e) if e.code().is_some_and(|c| c.code() == "42501") => (false, 0, Some(db_message(&e))),
        Err(e) => anyhow::bail!("{}", db_message(&e)),
    };
    let mut why = Vec::new();
    if let Some(expected) = case.expect.allowed {
        if expected != allowed {
            let got = if allowed { "allowed" } else { "denied" };
            let want = if expected { "allowed" } else { "denied" };
            let detail = refusal.map(|r| format!(" ({r})")).unwrap_or_default();
            why.push(format!("expected {want}, was {got}{detail}"));
        }
    }
    if let Some(expected) = case.expect.rows {
        if expected != rows {
            why.push(format!("expected {expected} rows, got {rows}"));
        }
    }
    Ok((!why.is_empty()).then(|| why.join("; ")))
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

/// TAP version 13.
pub fn tap(outcomes: &[Outcome]) -> String {
    let mut out = format!("TAP version 13\n1..{}\n", outcomes.len());
    for (i, o) in outcomes.iter().enumerate() {
        match &o.failure {
            None => out.push_str(&format!("ok {} - {}\n", i + 1, o.name)),
            Some(why) => {
                out.push_str(&format!("not ok {} - {}\n", i + 1, o.name));
                out.push_str(&format!("  ---\n  message: {:?}\n  ...\n", why));
            }
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML, one testsuite named after the file.
pub fn junit(suite: &str, outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        xml_escape(suite),
        outcomes.len()
    );
    for o in outcomes {
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"policy\"",
            xml_escape(&o.name)
        ));
        match &o.failure {
            None => out.push_str("/>\n"),
            Some(why) => out.push_str(&format!(
                ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                xml_escape(why)
            )),
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
