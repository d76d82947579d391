//! What realtime reads from the catalog, as the database owner: the published tables, their
//! columns with type names, primary keys, and for each role its column grants and the SELECT
//! policies that apply to it. Cached, and reloaded when a Relation message or a timeout says the
//! definition may have changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::ownership::{self, Ownership};
use super::table::{columns_json, quote_ident, Column, Table, TypeKind};
use crate::mutex::lock;

/// How long role access (grants, policies) is trusted before it is read again.
const ACCESS_TTL: Duration = Duration::from_secs(2);

/// What one role may see of one table.
#[derive(Debug)]
pub struct Access {
    /// Columns the role may SELECT, in table order.
    pub columns: Vec<String>,
    /// Those columns as a payload's `columns`, built once.
    pub columns_json: serde_json::Value,
    /// Whether the role may SELECT every primary-key column.
    pub sees_primary_key: bool,
    /// The probe to run under the role, or `None` when RLS does not apply to it (no RLS, a
    /// superuser or BYPASSRLS role, or the owner without FORCE).
    pub probe: Option<Probe>,
    /// When the probe's policies all have an owner form: where a row's owners are, so only
    /// their claims groups are probed (`ownership`).
    pub ownership: Option<Arc<Ownership>>,
}

/// The SELECT policies of a table as they apply to one role, evaluated over WAL rows.
#[derive(Debug, Clone)]
pub enum Probe {
    /// No permissive policy applies: RLS hides every row.
    DenyAll,
    /// The policies as a function `realtime."craftbase_probe_<hash>"(roles text[], claims
    /// text[], bounds int[], positions int[], rows jsonb, isolated bool)` returning `(cb_grp,
    /// cb_idx)`: which rows each claims group may see. A generated PL/pgSQL function keeps its
    /// plan between calls, where a dynamic EXECUTE would plan the policies again for every group.
    Function { name: Arc<str>, ddl: Arc<str> },
}

/// The function that checks `policies` on rows of `table`: for each group (its role, claims,
/// and the 1-based positions `positions[bounds[g] : bounds[g+1]-1]` it wants), under that role
/// and claims, the wanted rows of `jsonb_populate_recordset(null::table, rows)` that pass the
/// policies. With `isolated`, each group runs in a subtransaction, so a policy error hides
/// rows from that group alone; without, a subtransaction per group would cost more than the
/// policies themselves, so the caller runs it so first and calls again isolated when it fails.
/// Only this probe runs under the subscriber's role.
fn probe_function(table: &Table, policies: &str) -> Probe {
    let alias = quote_ident(&table.name);
    // A group wanting a few rows (routed by ownership: usually one) checks them one by one,
    // from a row variable's fields: a statement that reads the array of parsed rows costs tens
    // of microseconds per execution under the subscriber's role, a row variable's fields do
    // not. A group wanting many rows checks them in one statement over the array.
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let c = quote_ident(&c.name);
            format!("_cb_row.{c} as {c}")
        })
        .collect();
    let query = format!(
        "if array_length(_cb_wanted, 1) <= {FEW_ROWS} then \
             foreach _cb_i in array _cb_wanted loop \
                 _cb_row := _cb_parsed[_cb_i]; \
                 if exists (select 1 from (select {fields}) as {alias} where {policies}) then \
                     cb_grp := _cb_g - 1; cb_idx := _cb_i; return next; \
                 end if; \
             end loop; \
         else \
             return query select _cb_g - 1, _cb_w._cb_pos from unnest(_cb_wanted) as _cb_w(_cb_pos), \
             unnest(_cb_parsed[_cb_w._cb_pos:_cb_w._cb_pos]) as {alias} where {policies}; \
         end if;",
        fields = fields.join(", "),
    );
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in table
        .qualified()
        .bytes()
        .chain(b"v2".iter().copied())
        .chain(query.bytes())
    {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let name = format!("craftbase_probe_{hash:016x}");
    let qualified = table.qualified();
    let args = "text[], text[], int[], int[], jsonb, bool";
    let ddl = format!(
        r#"create or replace function realtime."{name}"(_cb_roles text[], _cb_claims text[],
    _cb_bounds int[], _cb_positions int[], _cb_rows jsonb, _cb_isolated bool)
returns table (cb_grp int, cb_idx int)
language plpgsql volatile
as $craftbase_probe$
declare
    _cb_g int;
    _cb_x text;
    _cb_wanted int[];
    _cb_i int;
    _cb_row {qualified};
    _cb_parsed {qualified}[] := array(select jsonb_populate_recordset(null::{qualified}, _cb_rows));
begin
    for _cb_g in 1 .. coalesce(array_length(_cb_roles, 1), 0) loop
        _cb_wanted := _cb_positions[_cb_bounds[_cb_g] : _cb_bounds[_cb_g + 1] - 1];
        if _cb_isolated then
            begin
                _cb_x := set_config('role', _cb_roles[_cb_g], true);
                _cb_x := set_config('request.jwt.claims', _cb_claims[_cb_g], true);
                {query}
            exception when others then
                raise warning 'realtime visibility probe failed for one group: %', sqlerrm;
            end;
        else
            _cb_x := set_config('role', _cb_roles[_cb_g], true);
            _cb_x := set_config('request.jwt.claims', _cb_claims[_cb_g], true);
            {query}
        end if;
    end loop;
    _cb_x := set_config('role', 'none', true);
    _cb_x := set_config('request.jwt.claims', '', true);
end
$craftbase_probe$;
revoke all on function realtime."{name}"({args}) from public;
grant execute on function realtime."{name}"({args}) to authenticator;"#
    );
    Probe::Function {
        name: name.into(),
        ddl: ddl.into(),
    }
}

/// Up to how many wanted rows a group's rows are checked one at a time.
const FEW_ROWS: usize = 4;

/// Role access by (table oid, role), with when it was read.
type AccessCache = HashMap<(u32, String), (Instant, Arc<Access>)>;

/// The catalog cache.
pub struct Catalog {
    admin: Pool,
    /// Probe functions created by this process.
    functions: Mutex<std::collections::HashSet<Arc<str>>>,
    tables: Mutex<HashMap<u32, Arc<Table>>>,
    access: Mutex<AccessCache>,
}

impl Catalog {
    pub fn new(admin: Pool) -> Catalog {
        Catalog {
            admin,
            functions: Mutex::new(Default::default()),
            tables: Mutex::new(HashMap::new()),
            access: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a probe function once per process (as the owner). Under a lock on its name:
    /// nodes of a cluster on one database create the same function at the same moment, and two
    /// concurrent `create or replace` of one function fail with a unique violation.
    pub async fn ensure_function(&self, name: &Arc<str>, ddl: &str) -> Result<(), anyhow::Error> {
        if lock(&self.functions).contains(name) {
            return Ok(());
        }
        let mut client = self.admin.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "select pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&name.as_ref()],
        )
        .await?;
        tx.batch_execute(ddl).await?;
        tx.commit().await?;
        lock(&self.functions).insert(name.clone());
        Ok(())
    }

    /// Forgets what is known of `oid` (its definition changed).
    pub fn invalidate(&self, oid: u32) {
        lock(&self.tables).remove(&oid);
        lock(&self.access).retain(|(t, _), _| *t != oid);
    }

    /// The published tables matching a binding's schema and table (`*` = any), as (schema, name).
    pub async fn published(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Vec<(String, String)>, anyhow::Error> {
        let client = self.admin.get().await?;
        let rows = client
            .query(
                "select schemaname::text, tablename::text from pg_publication_tables
                 where pubname = 'supabase_realtime'
                   and ($1 = '*' or schemaname = $1) and ($2 = '*' or tablename = $2)",
                &[&schema, &table],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The table with `oid`, loaded on first use.
    pub async fn table(&self, oid: u32) -> Result<Arc<Table>, anyhow::Error> {
        if let Some(t) = lock(&self.tables).get(&oid) {
            return Ok(t.clone());
        }
        let client = self.admin.get().await?;
        let head = client
            .query_one(
                "select n.nspname::text, c.relname::text, c.relrowsecurity
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1",
                &[&oid],
            )
            .await?;
        let columns = client
            .query(
                "select a.attname::text, t.typname::text, t.typcategory::text,
                        coalesce(e.typname::text, ''), coalesce(e.typcategory::text, '')
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 left join pg_type e on e.oid = t.typelem and t.typcategory = 'A'
                 where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
                 order by a.attnum",
                &[&oid],
            )
            .await?;
        let pk = client
            .query(
                "select a.attname::text from pg_index i
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                 where i.indrelid = $1 and i.indisprimary order by a.attnum",
                &[&oid],
            )
            .await?;
        let table = Arc::new(Table {
            oid,
            schema: head.get(0),
            name: head.get(1),
            rls: head.get(2),
            columns: columns
                .iter()
                .map(|r| {
                    let typname: String = r.get(1);
                    let category: String = r.get(2);
                    let (ename, ecat): (String, String) = (r.get(3), r.get(4));
                    Column {
                        name: r.get(0),
                        kind: TypeKind::of(&typname, &category),
                        element: TypeKind::of(&ename, &ecat),
                        typname,
                    }
                })
                .collect(),
            primary_key: pk.iter().map(|r| r.get(0)).collect(),
        });
        lock(&self.tables).insert(oid, table.clone());
        Ok(table)
    }

    /// The oid of `schema.name`.
    pub async fn oid_of(&self, schema: &str, name: &str) -> Result<u32, anyhow::Error> {
        let client = self.admin.get().await?;
        let row = client
            .query_one(
                "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = $1 and c.relname = $2",
                &[&schema, &name],
            )
            .await?;
        Ok(row.get(0))
    }

    /// What `role` may see of `table`.
    pub async fn access(&self, table: &Table, role: &str) -> Result<Arc<Access>, anyhow::Error> {
        let key = (table.oid, role.to_owned());
        if let Some((at, a)) = lock(&self.access).get(&key) {
            if at.elapsed() < ACCESS_TTL {
                return Ok(a.clone());
            }
        }
        let mut client = self.admin.get().await?;
        let flags = client
            .query_one(
                "select c.relrowsecurity
                        and not (r.rolsuper or r.rolbypassrls)
                        and not (pg_has_role(r.oid, c.relowner, 'usage') and not c.relforcerowsecurity)
                 from pg_class c, pg_roles r where c.oid = $1 and r.rolname = $2",
                &[&table.oid, &role],
            )
            .await?;
        let rls_applies: bool = flags.get(0);
        let columns: Vec<String> = client
            .query(
                "select a.attname::text from pg_attribute a
                 where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
                   and has_column_privilege($2::text::regrole::oid, a.attrelid, a.attnum, 'SELECT')
                 order by a.attnum",
                &[&table.oid, &role],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let sees_primary_key =
            !table.primary_key.is_empty() && table.primary_key.iter().all(|k| columns.contains(k));
        let probe = if rls_applies {
            let policies = client
                .query(
                    "select p.polpermissive, pg_get_expr(p.polqual, p.polrelid)
                     from pg_policy p
                     where p.polrelid = $1 and p.polcmd in ('r', '*')
                       and (0::oid = any(p.polroles) or exists (
                            select 1 from unnest(p.polroles) pr
                            where pg_has_role($2::text::regrole::oid, pr, 'usage')))",
                    &[&table.oid, &role],
                )
                .await?;
            let qual = |r: &tokio_postgres::Row| -> String {
                r.get::<_, Option<String>>(1)
                    .map(|q| format!("({q})"))
                    .unwrap_or_else(|| "false".into())
            };
            let permissive: Vec<String> = policies.iter().filter(|r| r.get(0)).map(qual).collect();
            let restrictive: Vec<String> = policies
                .iter()
                .filter(|r| !r.get::<_, bool>(0))
                .map(qual)
                .collect();
            if permissive.is_empty() {
                Some(Probe::DenyAll)
            } else {
                let mut cond = format!("({})", permissive.join(" or "));
                for r in restrictive {
                    cond.push_str(" and ");
                    cond.push_str(&r);
                }
                Some(probe_function(table, &cond))
            }
        } else {
            None
        };
        let ownership = match probe {
            Some(Probe::Function { .. }) => ownership::analyse(&mut client, table, role)
                .await?
                .map(Arc::new),
            _ => None,
        };
        let columns_json = columns_json(table.columns.iter().filter(|c| columns.contains(&c.name)));
        let access = Arc::new(Access {
            columns_json,
            columns,
            sees_primary_key,
            probe,
            ownership,
        });
        lock(&self.access).insert(key, (Instant::now(), access.clone()));
        Ok(access)
    }
}
