//! One transaction per request on a pooled `authenticator` connection: BEGIN, the request's
//! settings, the pre-request hook and the statement are sent pipelined in one round trip; then
//! COMMIT, or ROLLBACK on error, on `Prefer: tx=rollback`, or when the result breaks a rule.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType, Timeouts};
use tokio_postgres::types::{ToSql, Type};

use crate::error::ApiError;
use crate::sql::Sql;

/// The transaction-local settings of a request (§1.8).
#[derive(Debug, Clone)]
pub struct Settings {
    pub search_path: String,
    pub role: String,
    pub claims: String,
    pub method: String,
    pub path: String,
    pub headers: String,
    pub cookies: String,
    /// The role's `ALTER ROLE ... SET` settings as a JSON object, e.g. its statement_timeout.
    pub role_settings: String,
    /// Whether a 42501 answers 403 (signed in) or 401 (anon).
    pub authenticated: bool,
}

impl Settings {
    /// The parameters of [`SETUP_WITH_ROLE_SQL`], in order (the first seven are [`SETUP_SQL`]'s).
    fn values(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.search_path,
            &self.role,
            &self.claims,
            &self.method,
            &self.path,
            &self.headers,
            &self.cookies,
            &self.role_settings,
        ]
    }
}

/// The settings when the role has no `ALTER ROLE ... SET` of its own.
const SETUP_SQL: &str =
    "select set_config('search_path', $1, true), set_config('role', $2, true), \
     set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), \
     set_config('request.path', $5, true), set_config('request.headers', $6, true), \
     set_config('request.cookies', $7, true)";

/// The settings and the role's own `ALTER ROLE ... SET` settings.
const SETUP_WITH_ROLE_SQL: &str =
    "select set_config('search_path', $1, true), set_config('role', $2, true), \
     set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true), \
     set_config('request.path', $5, true), set_config('request.headers', $6, true), \
     set_config('request.cookies', $7, true), \
     (select count(set_config(key, value, true)) from json_each_text($8::json))";

/// Prepared statements kept per connection before its cache starts over.
const STATEMENT_CACHE_SIZE: usize = 500;

/// What the statement returned.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub total: Option<i64>,
    pub rows: i64,
    pub body: Option<String>,
    /// Rows newly inserted by an insert or upsert.
    pub inserted: Option<i64>,
    pub location: Option<String>,
    /// `response.status` set by SQL.
    pub status: Option<String>,
    /// `response.headers` set by SQL.
    pub headers: Option<String>,
    /// The planner's row estimate, for planned and estimated counts.
    pub planned: Option<i64>,
    /// `EXPLAIN`'s output, when the client asked for the plan instead of the result.
    pub plan: Option<String>,
}

/// How the transaction runs.
pub struct Transaction {
    pub read_only: bool,
    pub rollback: bool,
    pub pool_timeout: Duration,
    /// `select "schema"."fn"()`, run after the settings and before the statement.
    pub pre_request: Option<String>,
    /// Named, cached statements; off (`PGRST_DB_PREPARED_STATEMENTS=false`), every statement
    /// is sent unnamed, as a transaction-mode pooler (PgBouncer) needs.
    pub prepared: bool,
}

/// Runs `sql` as described. `check` may refuse the outcome, which rolls back.
pub async fn run(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
    sql: Sql,
    explain: Option<Sql>,
    tx: Transaction,
    check: impl FnOnce(&Outcome) -> Result<(), ApiError>,
) -> Result<Outcome, ApiError> {
    let object = acquire(pool, tx.pool_timeout).await?;
    let mut lease = Lease(Some(object));
    let result = run_on(lease.client(), settings, sql, explain, tx, check).await;
    lease.finish();
    result
}

/// The plan of `sql` (`EXPLAIN <prefix> sql`) under the request's settings, in a transaction
/// that always rolls back, so that `options=analyze` on a write changes nothing.
pub async fn explain(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
    sql: Sql,
    prefix: &str,
    tx: Transaction,
) -> Result<Outcome, ApiError> {
    let object = acquire(pool, tx.pool_timeout).await?;
    let mut lease = Lease(Some(object));
    let client = lease.client();
    let authenticated = settings.authenticated;
    let db = |e: tokio_postgres::Error| ApiError::from_db(&e, authenticated);
    let setup: Vec<(&(dyn ToSql + Sync), Type)> = settings
        .values()
        .into_iter()
        .map(|v| (v, Type::TEXT))
        .collect();
    let result = async {
        client.batch_execute("BEGIN").await.map_err(db)?;
        client
            .query_typed(SETUP_WITH_ROLE_SQL, &setup)
            .await
            .map_err(db)?;
        if let Some(call) = &tx.pre_request {
            client.query_typed(call, &[]).await.map_err(db)?;
        }
        let text = format!("{prefix}{}", sql.text);
        let rows = client
            .query_typed(&text, &sql.typed_params())
            .await
            .map_err(db)?;
        let lines: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<_, PlanLine>(0).map(|l| l.0))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        Ok(Outcome {
            rows: 1,
            plan: Some(lines.join("\n")),
            ..Outcome::default()
        })
    }
    .await;
    let ended = client.batch_execute("ROLLBACK").await;
    lease.finish();
    match ended {
        Err(e) if result.is_ok() => Err(db(e)),
        _ => result,
    }
}

/// A line of `EXPLAIN`: text, or the whole plan as json (whose binary form is its text).
struct PlanLine(String);

impl<'a> tokio_postgres::types::FromSql<'a> for PlanLine {
    fn from_sql(
        _ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PlanLine(std::str::from_utf8(raw)?.to_owned()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT || *ty == Type::JSON
    }
}

async fn acquire(
    pool: &deadpool_postgres::Pool,
    wait: Duration,
) -> Result<deadpool_postgres::Object, ApiError> {
    // The pool's own connect and recycle timeouts stay; the wait is the gateway's setting.
    pool.timeout_get(&Timeouts {
        wait: Some(wait),
        ..pool.timeouts()
    })
    .await
    .map_err(|e| match e {
        PoolError::Timeout(TimeoutType::Wait) => ApiError::PoolTimeout,
        e => {
            tracing::error!(error = %e, "cannot get a database connection");
            ApiError::Connection
        }
    })
}

/// A pooled connection that goes back to the pool only when its transaction has ended. If the
/// request is dropped mid-transaction (the client hung up), the connection is closed instead,
/// so PostgreSQL aborts the transaction and no later request can inherit it. This costs less
/// than running every request on a task of its own.
///
/// A closed socket alone does not stop a running statement: the backend notices only when it next
/// writes, so a `pg_sleep(60)` or a runaway join would hold its backend to the end. The statement
/// in flight is cancelled too, as `pg_cancel_backend` would, over a connection of its own.
struct Lease(Option<deadpool_postgres::Object>);

impl Lease {
    fn client(&self) -> &deadpool_postgres::Object {
        self.0
            .as_ref()
            .expect("a lease holds its connection until it is finished")
    }

    /// The transaction ended: the connection may serve the next request.
    fn finish(&mut self) {
        self.0.take();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else {
            return;
        };
        tracing::debug!("request dropped mid-transaction; cancelling its statement");
        let cancel = object.cancel_token();
        drop(deadpool_postgres::Object::take(object));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = cancel.cancel_query(tokio_postgres::NoTls).await {
                        tracing::warn!(error = %e, "cannot cancel the statement of a dropped request");
                    }
                });
            }
            Err(_) => tracing::warn!("no runtime to cancel the statement of a dropped request"),
        }
    }
}

async fn run_on(
    client: &deadpool_postgres::Object,
    settings: &Settings,
    sql: Sql,
    explain: Option<Sql>,
    tx: Transaction,
    check: impl FnOnce(&Outcome) -> Result<(), ApiError>,
) -> Result<Outcome, ApiError> {
    let begin = if tx.read_only {
        "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
    } else {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    };
    let with_role = settings.role_settings != "{}";
    let setup: Vec<(&(dyn ToSql + Sync), Type)> = settings
        .values()
        .into_iter()
        .take(if with_role { 8 } else { 7 })
        .map(|p| (p, Type::TEXT))
        .collect();
    let setup_sql = if with_role {
        SETUP_WITH_ROLE_SQL
    } else {
        SETUP_SQL
    };
    let params = sql.typed_params();
    // Prepared statements, cached per connection, spare PostgreSQL parsing and planning on the
    // next request of the same shape. The settings statement names no schema, so it is prepared
    // before the transaction. The request's statement is prepared inside it, after the role and
    // search_path are set: PostgreSQL checks schema USAGE when it parses, so preparing it as the
    // connecting role failed (and logged `permission denied for schema`) on every request to a
    // schema only the request's role may use. A cached statement costs no round trip, so a
    // repeated request still travels in one.
    if client.statement_cache.size() > STATEMENT_CACHE_SIZE {
        client.statement_cache.clear();
    }
    let setup_types = vec![Type::TEXT; setup.len()];
    let setup_stmt = match tx.prepared {
        true => client
            .prepare_typed_cached(setup_sql, &setup_types)
            .await
            .ok(),
        false => None,
    };
    // BEGIN, COMMIT and ROLLBACK too: as simple queries PostgreSQL parsed them on every request.
    // They are prepared here, before the pipeline, so that its messages keep their order.
    let begin = Control::prepare(client, begin, tx.prepared).await;
    let early_end = match tx
        .read_only
        .then_some(if tx.rollback { "ROLLBACK" } else { "COMMIT" })
    {
        Some(end) => Some(Control::prepare(client, end, tx.prepared).await),
        None => None,
    };
    let main_types = vec![Type::UNKNOWN; params.len()];
    let setup_values: Vec<&(dyn ToSql + Sync)> = setup.iter().map(|(p, _)| *p).collect();
    let main_values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|(p, _)| *p).collect();
    let set = async {
        match &setup_stmt {
            Some(stmt) => client.query(stmt, &setup_values).await,
            None => client.query_typed(setup_sql, &setup).await,
        }
    };
    let pre_request = async {
        match &tx.pre_request {
            Some(call) => client.query_typed(call, &[]).await.map(drop),
            None => Ok(()),
        }
    };
    let explain_text = explain.as_ref().map(|e| format!("EXPLAIN {}", e.text));
    let explain_params = explain.as_ref().map(Sql::typed_params).unwrap_or_default();
    let pre_and_plan = async {
        pre_request.await?;
        match &explain_text {
            Some(text) => {
                let rows = client.query_typed(text, &explain_params).await?;
                Ok(rows.first().and_then(plan_rows))
            }
            None => Ok(None),
        }
    };
    // A read-only transaction changes nothing, so its end (`early_end`, prepared above) need not
    // wait for the result: it joins the pipeline, right behind the statement, and the whole
    // request takes one round trip.
    let main_and_end = async {
        let ended = || async {
            match &early_end {
                Some(end) => Some(end.run(client).await),
                None => None,
            }
        };
        if !tx.prepared {
            return both_in_order(client.query_typed(&sql.text, &params), ended()).await;
        }
        let stmt = match client.prepare_typed_cached(&sql.text, &main_types).await {
            Ok(stmt) => stmt,
            Err(e) => return (Err(e), ended().await),
        };
        both_in_order(client.query(&stmt, &main_values), ended()).await
    };
    let (begun, set, planned, (main, ended), ()) =
        in_order(begin.run(client), set, pre_and_plan, main_and_end, async {}).await;
    if main
        .as_ref()
        .err()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| *c == tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
    {
        // "cached plan must not change result type": a table changed under a cached statement.
        client.statement_cache.clear();
    }
    let authenticated = settings.authenticated;
    let result = (|| {
        begun.map_err(|e| ApiError::from_db(&e, authenticated))?;
        set.map_err(|e| ApiError::from_db(&e, authenticated))?;
        let planned: Option<i64> =
            planned.map_err(|e: tokio_postgres::Error| ApiError::from_db(&e, authenticated))?;
        let rows = main.map_err(|e| ApiError::from_db(&e, authenticated))?;
        let row = rows.first().ok_or(ApiError::Internal)?;
        // Columns: total, rows, body, [inserted, location,] response.status, response.headers.
        let n = row.len();
        let text = |i: usize| -> Result<Option<String>, ApiError> {
            Ok(row
                .try_get::<_, Option<String>>(i)
                .map_err(internal)?
                .filter(|s| !s.is_empty()))
        };
        let outcome = Outcome {
            total: row.try_get(0).map_err(internal)?,
            rows: row.try_get(1).map_err(internal)?,
            body: row.try_get(2).map_err(internal)?,
            inserted: if n > 5 {
                row.try_get(3).map_err(internal)?
            } else {
                None
            },
            location: if n > 5 {
                row.try_get(4).map_err(internal)?
            } else {
                None
            },
            status: text(n - 2)?,
            headers: text(n - 1)?,
            planned,
            plan: None,
        };
        check(&outcome)?;
        Ok(outcome)
    })();
    if let Some(ended) = ended {
        return match ended {
            Err(e) if result.is_ok() => Err(ApiError::from_db(&e, authenticated)),
            _ => result,
        };
    }
    let end = if result.is_ok() && !tx.rollback {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    if let Err(e) = Control::prepare(client, end, tx.prepared)
        .await
        .run(client)
        .await
    {
        if result.is_ok() {
            return Err(ApiError::from_db(&e, authenticated));
        }
    }
    result
}

/// A transaction control statement (BEGIN..., COMMIT, ROLLBACK), prepared and cached per
/// connection; sent as a simple query if it could not be prepared.
struct Control {
    sql: &'static str,
    stmt: Option<tokio_postgres::Statement>,
}

impl Control {
    /// Without `prepared` (`PGRST_DB_PREPARED_STATEMENTS=false`), a simple query each time.
    async fn prepare(
        client: &deadpool_postgres::Object,
        sql: &'static str,
        prepared: bool,
    ) -> Self {
        let stmt = match prepared {
            true => client.prepare_typed_cached(sql, &[]).await.ok(),
            false => None,
        };
        Control { sql, stmt }
    }

    /// Sends the statement on its first poll, so that it keeps its place in a pipeline.
    async fn run(&self, client: &deadpool_postgres::Object) -> Result<(), tokio_postgres::Error> {
        match &self.stmt {
            Some(stmt) => client.execute(stmt, &[]).await.map(drop),
            None => client.batch_execute(self.sql).await,
        }
    }
}

/// The estimated rows of the top node of an `EXPLAIN` result: `... (cost=0.00..1.04 rows=4 width=8)`.
fn plan_rows(row: &tokio_postgres::Row) -> Option<i64> {
    let line: String = row.try_get(0).ok()?;
    let after = &line[line.find(" rows=")? + 6..];
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn internal(e: tokio_postgres::Error) -> ApiError {
    tracing::error!(error = %e, "unexpected result shape");
    ApiError::Internal
}

/// Awaits five futures, polling them first in this order so that their messages reach the
/// connection in order and travel pipelined.
async fn in_order<A, B, C, D, E>(
    a: impl Future<Output = A>,
    b: impl Future<Output = B>,
    c: impl Future<Output = C>,
    d: impl Future<Output = D>,
    e: impl Future<Output = E>,
) -> (A, B, C, D, E) {
    let (mut a, mut b, mut c, mut d, mut e) = (pin!(a), pin!(b), pin!(c), pin!(d), pin!(e));
    let (mut ra, mut rb, mut rc, mut rd, mut re) = (None, None, None, None, None);
    std::future::poll_fn(|cx| {
        poll_once(a.as_mut(), &mut ra, cx);
        poll_once(b.as_mut(), &mut rb, cx);
        poll_once(c.as_mut(), &mut rc, cx);
        poll_once(d.as_mut(), &mut rd, cx);
        poll_once(e.as_mut(), &mut re, cx);
        if ra.is_some() && rb.is_some() && rc.is_some() && rd.is_some() && re.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    match (ra, rb, rc, rd, re) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => (a, b, c, d, e),
        _ => unreachable!("poll_fn returns only when all five are ready"),
    }
}

/// Awaits two futures, polling the first first, so that its messages go out first.
async fn both_in_order<A, B>(a: impl Future<Output = A>, b: impl Future<Output = B>) -> (A, B) {
    let (a, b, (), (), ()) = in_order(a, b, async {}, async {}, async {}).await;
    (a, b)
}

/// Polls `f` unless it already finished, keeping its output in `slot`.
fn poll_once<T>(
    f: std::pin::Pin<&mut impl Future<Output = T>>,
    slot: &mut Option<T>,
    cx: &mut std::task::Context<'_>,
) {
    if slot.is_none() {
        if let Poll::Ready(v) = f.poll(cx) {
            *slot = Some(v);
        }
    }
}
