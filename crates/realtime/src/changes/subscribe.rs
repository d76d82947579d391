//! Turning a join's `postgres_changes` bindings into subscriptions (§3.5.2): wildcards resolved
//! against the publication, filters parsed and their columns checked against what the
//! subscriber's role may SELECT (so a filter is never an oracle on a hidden column).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::condition::{Condition, Op};
use super::filter::{self, FilterError};
use super::registry::{EventFilter, PgSubscription};
use crate::identity::Identity;
use crate::outlet::Outlet;
use crate::service::Realtime;

/// One binding as the client sent it.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The id echoed in the join reply and listed in `ids`.
    pub id: u32,
    pub event: Option<EventFilter>,
    pub schema: String,
    pub table: String,
    pub filter: Result<Vec<Condition>, FilterError>,
    /// The `select` column list (`None`: every column), or why it is refused.
    pub select: Result<Option<Arc<[String]>>, SelectError>,
    raw_event: String,
    raw_filter: Option<String>,
}

impl Binding {
    /// Reads a binding; its id is a hash of its parameters, so equal bindings share an id.
    pub fn from_config(v: &Value) -> Binding {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let raw_event = s("event").unwrap_or_else(|| "*".into());
        let table = s("table").unwrap_or_else(|| "*".into());
        let schema = s("schema").unwrap_or_else(|| {
            if table == "*" {
                "*".into()
            } else {
                "public".into()
            }
        });
        let raw_filter = s("filter");
        let select = select(v.get("select"), &schema, &table);
        let selected = match &select {
            Ok(Some(cols)) => cols.join("\u{1}"),
            _ => String::new(),
        };
        let mut hash: u32 = 0x811c_9dc5;
        for part in [
            &raw_event,
            &schema,
            &table,
            raw_filter.as_deref().unwrap_or(""),
        ] {
            for b in part.bytes().chain([0]) {
                hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
        }
        // Only a `select` changes the id, so bindings without one keep theirs.
        for part in [selected.as_str()].into_iter().filter(|p| !p.is_empty()) {
            for b in part.bytes().chain([0]) {
                hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
        }
        Binding {
            id: (hash & 0x3fff_ffff).max(1),
            event: EventFilter::parse(&raw_event),
            filter: filter::parse(raw_filter.as_deref()),
            select,
            schema,
            table,
            raw_event,
            raw_filter,
        }
    }

    fn describe(&self) -> String {
        format!(
            "[event: {}, schema: {}, table: {}, filters: {}]",
            self.raw_event,
            self.schema,
            self.table,
            self.raw_filter.as_deref().unwrap_or("")
        )
    }
}

/// A binding's `select`, read as Supabase reads it: a list of column names (anything else in
/// it ignored; none left: every column), refused as a string or on a wildcard binding.
fn select(
    v: Option<&Value>,
    schema: &str,
    table: &str,
) -> Result<Option<Arc<[String]>>, SelectError> {
    let cols: Vec<String> = match v {
        Some(Value::Array(items)) => {
            let mut cols: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            cols.sort();
            cols.dedup();
            cols
        }
        Some(Value::String(_)) => return Err(SelectError::NotList),
        _ => Vec::new(),
    };
    if cols.is_empty() {
        return Ok(None);
    }
    if schema == "*" || table == "*" {
        return Err(SelectError::OnWildcard);
    }
    Ok(Some(cols.into()))
}

/// Why a binding's `select` is refused, in Supabase's words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SelectError {
    #[error("Error parsing `select` params: expected a list of column name strings, e.g. select: [\"col1\", \"col2\"]")]
    NotList,
    #[error("Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.")]
    OnWildcard,
}

/// Why a join's bindings could not be subscribed.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: {0}")]
    NotPublished(String),
    #[error("{0}")]
    Filter(#[from] FilterError),
    #[error("Error parsing `filter` params: invalid column for filter {0}")]
    Column(String),
    #[error("Error parsing `filter` params: operator {0} requires a text-compatible column type, got {1}")]
    NotText(&'static str, String),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("Error parsing `select` params: invalid column for select {0}")]
    SelectColumn(String),
    #[error("Unable to subscribe to changes: invalid event {0}")]
    Event(String),
    #[error("Unable to subscribe to changes: the database is not reachable")]
    Database(#[from] anyhow::Error),
}

/// The column types with PostgreSQL's `~` and `~*` operators (`match`, `imatch`).
const TEXT_TYPES: [&str; 5] = ["text", "varchar", "bpchar", "name", "citext"];

/// A type as PostgreSQL's `regtype` prints it, for the common ones (else its `typname`).
fn type_name(typname: &str) -> String {
    match typname {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "float4" => "real",
        "float8" => "double precision",
        "bool" => "boolean",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        other => other,
    }
    .to_owned()
}

/// Registers every binding of a join, or none of them.
pub async fn register(
    rt: &Realtime,
    outlet: &Outlet,
    topic: &str,
    bindings: &[Binding],
    identity: Arc<Identity>,
) -> Result<(), SubscribeError> {
    let mut subs = Vec::new();
    // The tables of each (schema, table) named, looked up once per join however many bindings
    // name them: a join's cost grows with its distinct tables, not its bindings.
    let mut resolved: HashMap<(&str, &str), Vec<u32>> = HashMap::new();
    for b in bindings {
        let event = b
            .event
            .ok_or_else(|| SubscribeError::Event(b.raw_event.clone()))?;
        let conditions = b.filter.clone()?;
        let selected = b.select.clone()?;
        let key = (b.schema.as_str(), b.table.as_str());
        let oids = match resolved.get(&key) {
            Some(oids) => oids.clone(),
            None => {
                let mut oids = Vec::new();
                for (schema, name) in rt.catalog.published(&b.schema, &b.table).await? {
                    oids.push(rt.catalog.oid_of(&schema, &name).await?);
                }
                resolved.insert(key, oids.clone());
                oids
            }
        };
        if oids.is_empty() {
            return Err(SubscribeError::NotPublished(b.describe()));
        }
        for oid in oids {
            let table = rt.catalog.table(oid).await?;
            let access = rt.catalog.access(&table, &identity.role).await?;
            for c in &conditions {
                if !access.columns.contains(&c.column) {
                    return Err(SubscribeError::Column(c.column.clone()));
                }
                if let (Op::Match | Op::IMatch, Some(col)) = (c.op, table.column(&c.column)) {
                    if !TEXT_TYPES.contains(&col.typname.as_str()) {
                        let op = if c.op == Op::Match { "match" } else { "imatch" };
                        return Err(SubscribeError::NotText(op, type_name(&col.typname)));
                    }
                }
            }
            for c in selected.iter().flat_map(|s| s.iter()) {
                if !access.columns.contains(c) {
                    return Err(SubscribeError::SelectColumn(c.clone()));
                }
            }
            subs.push(PgSubscription {
                outlet: outlet.clone(),
                topic: topic.to_owned(),
                id: b.id,
                event,
                table_oid: oid,
                conditions: conditions.clone(),
                select: selected.clone(),
                identity: identity.clone(),
            });
        }
    }
    rt.subscriptions.subscribe(topic, outlet.socket, subs);
    Ok(())
}
