//! What the gateway knows of the database: tables, views, columns, keys, foreign keys and
//! functions of the exposed schemas, loaded by one query and swapped whole on reload.
//!
//! Every identifier a request names is looked up here before it reaches SQL.

mod computed;
mod openapi;
mod relationship;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::watch;

pub use computed::ComputedFunction;
pub use openapi::OpenApiView;
pub use relationship::{Join, Relationship};

const INTROSPECT_SQL: &str = include_str!("../sql/introspect.sql");

/// A table or view.
#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub is_view: bool,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<Vec<String>>,
    /// For a simple view, the one table it reads from.
    #[serde(default)]
    pub base: Option<BaseTable>,
}

/// The table under a simple view.
#[derive(Debug, Clone, Deserialize)]
pub struct BaseTable {
    pub schema: String,
    pub name: String,
}

impl Table {
    /// The column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A column of a table, view or function result.
#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column, e.g. `text[]` or `timestamp with time zone`.
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default)]
    pub type_name: String,
    #[serde(default)]
    pub nullable: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub generated: bool,
}

/// A foreign key between two tables of exposed schemas.
#[derive(Debug, Clone, Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    pub foreign_schema: String,
    pub foreign_table: String,
    pub foreign_columns: Vec<String>,
}

/// A function callable at `/rpc/name`.
#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub args: Vec<Argument>,
    /// Result columns when it returns a composite or a table.
    pub columns: Vec<Column>,
    pub return_type: String,
    pub returns_set: bool,
    pub returns_composite: bool,
    /// `i`mmutable, `s`table or `v`olatile.
    pub volatility: String,
    /// The table or view whose row type it returns (`SETOF t` or `t`).
    #[serde(default)]
    pub table: Option<BaseTable>,
}

impl Function {
    /// Whether PostgREST's schema cache would hold it (see `callable_functions`).
    pub fn is_callable(&self) -> bool {
        match self.args.iter().filter(|a| a.name.is_empty()).count() {
            0 => true,
            1 => {
                self.args.len() == 1
                    && matches!(
                        self.args[0].data_type.as_str(),
                        "bytea" | "json" | "jsonb" | "text" | "xml"
                    )
            }
            _ => false,
        }
    }

    /// True for functions that may run in a read-only transaction.
    pub fn is_read_only(&self) -> bool {
        self.volatility != "v"
    }

    /// The single unnamed parameter that takes the whole body, if that is the function's shape.
    pub fn single_unnamed(&self) -> Option<&Argument> {
        match self.args.as_slice() {
            [a] if a.name.is_empty() => Some(a),
            _ => None,
        }
    }
}

/// An input argument of a function.
#[derive(Debug, Clone, Deserialize)]
pub struct Argument {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub has_default: bool,
    pub variadic: bool,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    role_settings: HashMap<String, serde_json::Map<String, serde_json::Value>>,
    tables: Vec<Table>,
    foreign_keys: Vec<ForeignKey>,
    functions: Vec<Function>,
    #[serde(default)]
    computed: Vec<ComputedFunction>,
    types: Vec<String>,
    #[serde(default)]
    connecting_role: String,
}

/// The loaded cache.
#[derive(Debug, Default)]
pub struct SchemaCache {
    tables: HashMap<(String, String), Table>,
    foreign_keys: Vec<ForeignKey>,
    functions: HashMap<(String, String), Vec<Function>>,
    /// Computed fields and relationships by the table whose row they take.
    computed: HashMap<(String, String), Vec<ComputedFunction>>,
    types: HashSet<String>,
    /// `ALTER ROLE ... SET` settings per role, as a JSON object for `set_config`.
    role_settings: HashMap<String, String>,
    /// The connecting role's `pgrst.*` settings (PostgREST's in-database configuration),
    /// without the prefix: `db_tx_end`, `db_plan_enabled`, ...
    in_database: HashMap<String, String>,
}

/// PostgREST's order of overloads, which its PGRST203 candidate list and its "Perhaps you
/// meant" hint follow: fewest parameters first, then the parameters compared in turn by name,
/// type, required-ness (optional first) and variadic-ness; never the creation order.
fn overload_order(a: &Function, b: &Function) -> std::cmp::Ordering {
    let key = |f: &Function| {
        f.args
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.data_type.clone(),
                    !p.has_default,
                    p.variadic,
                )
            })
            .collect::<Vec<_>>()
    };
    a.args
        .len()
        .cmp(&b.args.len())
        .then_with(|| key(a).cmp(&key(b)))
}

impl SchemaCache {
    /// Builds the cache from the introspection query's JSON.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let raw: Raw = serde_json::from_str(json)?;
        let in_database = raw
            .role_settings
            .get(&raw.connecting_role)
            .map(|settings| {
                settings
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.strip_prefix("pgrst.")?.to_owned(), v.as_str()?.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut functions: HashMap<_, Vec<Function>> = HashMap::new();
        for f in raw.functions {
            functions
                .entry((f.schema.clone(), f.name.clone()))
                .or_default()
                .push(f);
        }
        for overloads in functions.values_mut() {
            overloads.sort_by(overload_order);
        }
        let mut tables: HashMap<(String, String), Table> = raw
            .tables
            .into_iter()
            .map(|t| ((t.schema.clone(), t.name.clone()), t))
            .collect();
        let foreign_keys = with_views(&mut tables, raw.foreign_keys);
        let mut computed: HashMap<_, Vec<ComputedFunction>> = HashMap::new();
        for f in raw.computed {
            computed
                .entry((f.table_schema.clone(), f.table.clone()))
                .or_default()
                .push(f);
        }
        Ok(SchemaCache {
            tables,
            foreign_keys,
            functions,
            computed,
            types: raw.types.into_iter().collect(),
            in_database,
            role_settings: raw
                .role_settings
                .into_iter()
                .map(|(role, settings)| (role, serde_json::Value::Object(settings).to_string()))
                .collect(),
        })
    }

    /// Runs the introspection query for `schemas`.
    pub async fn load(client: &tokio_postgres::Client, schemas: &[String]) -> anyhow::Result<Self> {
        Self::load_with_types(client, schemas, &[]).await
    }

    /// Runs the introspection query for `schemas`; casts may also name the types of
    /// `type_schemas` (`PGRST_DB_EXTRA_SEARCH_PATH`, on every request's search_path).
    pub async fn load_with_types(
        client: &tokio_postgres::Client,
        schemas: &[String],
        type_schemas: &[String],
    ) -> anyhow::Result<Self> {
        let row = client
            .query_one(INTROSPECT_SQL, &[&schemas, &type_schemas])
            .await?;
        let json: String = row.get(0);
        Ok(Self::from_json(&json)?)
    }

    /// The table or view `schema.name`.
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(&(schema.to_owned(), name.to_owned()))
    }

    /// The table or view whose rows `function` returns, when the cache holds it: an RPC's
    /// result embeds and selects computed fields as that table does.
    pub fn function_table(&self, function: &Function) -> Option<&Table> {
        let t = function.table.as_ref()?;
        self.table(&t.schema, &t.name)
    }

    /// The overloads of `schema.name`.
    pub fn functions(&self, schema: &str, name: &str) -> &[Function] {
        self.functions
            .get(&(schema.to_owned(), name.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The functions of `schema` PostgREST can call: every argument named, or a single unnamed
    /// one of a type a body can fill. Hints only suggest these.
    pub fn callable_functions<'s>(&'s self, schema: &'s str) -> impl Iterator<Item = &'s Function> {
        self.functions
            .iter()
            .filter(move |((s, _), _)| s == schema)
            .flat_map(|(_, fs)| fs.iter())
            .filter(|f| f.is_callable())
    }

    /// True when `name` (without `[]`) is a type a cast may name.
    pub fn is_type(&self, name: &str) -> bool {
        const ALIASES: [&str; 14] = [
            "int",
            "integer",
            "smallint",
            "bigint",
            "real",
            "boolean",
            "decimal",
            "character",
            "character varying",
            "double precision",
            "timestamp with time zone",
            "timestamp without time zone",
            "time with time zone",
            "time without time zone",
        ];
        let base = name.trim_end_matches("[]");
        ALIASES.contains(&base) || self.types.contains(base)
    }

    /// A `pgrst.<name>` setting of the connecting role (`alter role authenticator set
    /// pgrst.db_tx_end = 'commit-allow-override'`), which wins over the environment, as in PostgREST.
    pub fn in_database_setting(&self, name: &str) -> Option<&str> {
        self.in_database.get(name).map(String::as_str)
    }

    /// The role's own settings as a JSON object (`{}` when it has none).
    pub fn role_settings(&self, role: &str) -> &str {
        self.role_settings.get(role).map_or("{}", String::as_str)
    }

    /// Foreign keys, those of simple views included.
    pub fn foreign_keys(&self) -> &[ForeignKey] {
        &self.foreign_keys
    }

    /// How many tables and views are cached.
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
}

/// Simple views take part in their table's relationships through the columns they keep under
/// the same names, and keep its keys; keys of tables that are not exposed are then dropped.
fn with_views(
    tables: &mut HashMap<(String, String), Table>,
    foreign_keys: Vec<ForeignKey>,
) -> Vec<ForeignKey> {
    let views: Vec<(String, String, String, String)> = tables
        .values()
        .filter_map(|t| {
            let b = t.base.as_ref()?;
            Some((
                t.schema.clone(),
                t.name.clone(),
                b.schema.clone(),
                b.name.clone(),
            ))
        })
        .collect();
    let mut out = foreign_keys.clone();
    // Two passes: the second relates views to views through keys the first gave them.
    let mut previous = foreign_keys;
    for _ in 0..2 {
        let mut added = Vec::new();
        for (vs, vn, bs, bn) in &views {
            let has = |cols: &[String]| {
                let view = &tables[&(vs.clone(), vn.clone())];
                cols.iter().all(|c| view.column(c).is_some())
            };
            for fk in &previous {
                if &fk.schema == bs && &fk.table == bn && has(&fk.columns) {
                    added.push(ForeignKey {
                        schema: vs.clone(),
                        table: vn.clone(),
                        ..fk.clone()
                    });
                }
                if &fk.foreign_schema == bs && &fk.foreign_table == bn && has(&fk.foreign_columns) {
                    added.push(ForeignKey {
                        foreign_schema: vs.clone(),
                        foreign_table: vn.clone(),
                        ..fk.clone()
                    });
                }
            }
        }
        out.extend(added.iter().cloned());
        previous = added;
    }
    for (vs, vn, bs, bn) in &views {
        let keys = tables
            .get(&(bs.clone(), bn.clone()))
            .map(|b| (b.primary_key.clone(), b.unique_keys.clone()));
        if let Some((pk, uniques)) = keys {
            let Some(view) = tables.get_mut(&(vs.clone(), vn.clone())) else {
                continue;
            };
            let names: Vec<String> = view.columns.iter().map(|c| c.name.clone()).collect();
            let kept = |cols: &Vec<String>| cols.iter().all(|c| names.contains(c));
            if view.primary_key.is_empty() && !pk.is_empty() && kept(&pk) {
                view.primary_key = pk;
            }
            view.unique_keys
                .extend(uniques.into_iter().filter(|k| kept(k)));
        }
    }
    let mut seen = HashSet::new();
    out.retain(|fk| {
        seen.insert((
            fk.name.clone(),
            fk.schema.clone(),
            fk.table.clone(),
            fk.foreign_schema.clone(),
            fk.foreign_table.clone(),
        )) && tables.contains_key(&(fk.schema.clone(), fk.table.clone()))
            && tables.contains_key(&(fk.foreign_schema.clone(), fk.foreign_table.clone()))
    });
    out
}

/// The current cache, shared by every request; `None` until the first load.
#[derive(Clone)]
pub struct SchemaCacheHandle {
    rx: watch::Receiver<Option<Arc<SchemaCache>>>,
}

impl SchemaCacheHandle {
    /// Waits up to `timeout` for the first load, then returns the current cache.
    pub async fn get(&self, timeout: std::time::Duration) -> Option<Arc<SchemaCache>> {
        if let Some(cache) = self.rx.borrow().clone() {
            return Some(cache);
        }
        let mut rx = self.rx.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(cache)) => cache.clone(),
            _ => None,
        }
    }
}

/// Starts the task that loads the cache and reloads it on `NOTIFY pgrst`.
pub fn spawn(
    pool: deadpool_postgres::Pool,
    listen: Option<tokio_postgres::Config>,
    schemas: Vec<String>,
    type_schemas: Vec<String>,
) -> SchemaCacheHandle {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(reload::run(pool, listen, (schemas, type_schemas), tx));
    SchemaCacheHandle { rx }
}

/// A handle over a cache that is already loaded, for tests.
pub fn fixed(cache: SchemaCache) -> SchemaCacheHandle {
    let (_tx, rx) = watch::channel(Some(Arc::new(cache)));
    SchemaCacheHandle { rx }
}

mod reload {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{mpsc, watch};
    use tokio_postgres::AsyncMessage;

    use super::SchemaCache;

    const RETRY: Duration = Duration::from_secs(2);

    /// Loads now, then again on each notification; reconnects the listener when it drops.
    pub(super) async fn run(
        pool: deadpool_postgres::Pool,
        listen: Option<tokio_postgres::Config>,
        schemas: (Vec<String>, Vec<String>),
        tx: watch::Sender<Option<Arc<SchemaCache>>>,
    ) {
        loop {
            let (notify_tx, mut notify_rx) = mpsc::unbounded_channel::<()>();
            let listener = match &listen {
                Some(config) => listen_task(config, notify_tx).await,
                None => None,
            };
            // Load after LISTEN is in place, so no change between the two is missed.
            while !load_into(&pool, &schemas, &tx).await {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(RETRY).await;
            }
            if listener.is_none() {
                // Without a listener, reload now and then instead.
                tokio::time::sleep(Duration::from_secs(30)).await;
                if tx.is_closed() {
                    return;
                }
                continue;
            }
            while notify_rx.recv().await.is_some() {
                // Coalesce a burst of notifications into one reload.
                while notify_rx.try_recv().is_ok() {}
                load_into(&pool, &schemas, &tx).await;
            }
            if craftbase_shared::shutdown::requested() {
                return;
            }
            tracing::warn!("schema cache listener disconnected; reconnecting");
            tokio::time::sleep(RETRY).await;
        }
    }

    /// `schemas`: the exposed ones, and those whose types casts may name.
    async fn load_into(
        pool: &deadpool_postgres::Pool,
        schemas: &(Vec<String>, Vec<String>),
        tx: &watch::Sender<Option<Arc<SchemaCache>>>,
    ) -> bool {
        let started = std::time::Instant::now();
        let loaded = match pool.get().await {
            Ok(client) => SchemaCache::load_with_types(&client, &schemas.0, &schemas.1).await,
            Err(e) => Err(e.into()),
        };
        match loaded {
            Ok(cache) => {
                tracing::info!(
                    tables = cache.table_count(),
                    ms = started.elapsed().as_millis() as u64,
                    "schema cache loaded"
                );
                tx.send_replace(Some(Arc::new(cache)));
                // Statements prepared against the old schema may no longer fit it.
                pool.manager().statement_caches.clear();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "schema cache load failed");
                false
            }
        }
    }

    /// Opens a dedicated connection, LISTENs on `pgrst` and forwards reload requests; the
    /// returned client keeps the connection open.
    async fn listen_task(
        config: &tokio_postgres::Config,
        notify: mpsc::UnboundedSender<()>,
    ) -> Option<tokio_postgres::Client> {
        let (client, mut connection) = match config.connect(tokio_postgres::NoTls).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "schema cache listener cannot connect");
                return None;
            }
        };
        tokio::spawn(async move {
            loop {
                let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match message {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let payload = n.payload();
                        if n.channel() == "pgrst"
                            && (payload.is_empty() || payload == "reload schema")
                            && notify.send(()).is_err()
                        {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return,
                }
            }
        });
        match client.batch_execute("LISTEN pgrst").await {
            Ok(()) => Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "schema cache listener cannot LISTEN");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SchemaCache;

    fn function(args: &str) -> String {
        format!(
            r#"{{"schema":"public","name":"f","args":[{args}],"columns":[],"return_type":"text","returns_set":false,"returns_composite":false,"volatility":"i"}}"#
        )
    }

    fn arg(name: &str, ty: &str, has_default: bool) -> String {
        format!(r#"{{"name":"{name}","type":"{ty}","has_default":{has_default},"variadic":false}}"#)
    }

    #[test]
    fn overloads_are_kept_in_postgrest_order_not_creation_order() {
        let created = [
            function(&arg("a", "text", false)),
            function(&[arg("a", "integer", false), arg("b", "integer", true)].join(",")),
            function(&arg("a", "integer", true)),
            function(&arg("a", "integer", false)),
            function(""),
        ];
        let json = format!(
            r#"{{"tables":[],"foreign_keys":[],"functions":[{}],"types":[]}}"#,
            created.join(",")
        );
        let cache = SchemaCache::from_json(&json).unwrap();
        let order: Vec<String> = cache
            .functions("public", "f")
            .iter()
            .map(|f| {
                let args: Vec<String> = f
                    .args
                    .iter()
                    .map(|a| format!("{}:{}:{}", a.name, a.data_type, a.has_default))
                    .collect();
                args.join(",")
            })
            .collect();
        assert_eq!(
            order,
            [
                "",
                "a:integer:true",
                "a:integer:false",
                "a:text:false",
                "a:integer:false,b:integer:true",
            ]
        );
    }
}
