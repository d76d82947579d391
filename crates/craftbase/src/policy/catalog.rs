//! What the policy lints read from the database catalog: the tables and views of the exposed
//! schemas, their policies, and the exposed functions, in plain structs the rules check.

use anyhow::Context;

/// A table or view of an exposed schema.
#[derive(Debug, Clone)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// `r` table, `p` partitioned table, `v` view, `m` materialized view.
    pub kind: char,
    pub rls: bool,
    /// `d` default (the key), `f` full, `n` nothing, `i` an index.
    pub replica_identity: char,
    /// In the `supabase_realtime` publication.
    pub published: bool,
    /// Views: `security_invoker` is set.
    pub security_invoker: bool,
    /// Commands (`select`, `insert`, `update`, `delete`) granted to anon.
    pub anon_grants: Vec<String>,
    /// Anything granted to anon or authenticated.
    pub api_reachable: bool,
    /// Holds rows of users: a foreign key to `auth.users` or a column named like an owner.
    pub user_data: bool,
    /// Columns that lead an index (a policy filtering on them can use it).
    pub indexed_columns: Vec<String>,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A row-level security policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub permissive: bool,
    /// `select`, `insert`, `update`, `delete` or `all`.
    pub command: String,
    /// Role names; `public` for everyone.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
    /// The table's columns the policy reads.
    pub columns: Vec<String>,
}

impl Policy {
    pub fn object(&self) -> String {
        format!("{}.{} policy \"{}\"", self.schema, self.table, self.name)
    }

    /// Whether the policy applies to `role` (directly or through `public`).
    pub fn applies_to(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role || r == "public")
    }

    /// Whether the policy covers `command` (`all` covers every one).
    pub fn covers(&self, command: &str) -> bool {
        self.command == command || self.command == "all"
    }

    /// Both expressions, for rules that look at what a policy reads.
    pub fn expressions(&self) -> impl Iterator<Item = &str> {
        self.using
            .iter()
            .chain(self.with_check.iter())
            .map(String::as_str)
    }
}

/// A `SECURITY DEFINER` function of an exposed schema.
#[derive(Debug, Clone)]
pub struct Function {
    pub schema: String,
    pub signature: String,
    /// Its `search_path` is set (`set search_path = …`).
    pub fixed_search_path: bool,
    /// anon or authenticated may execute it.
    pub api_reachable: bool,
}

/// The catalog of the exposed schemas.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tables: Vec<Table>,
    pub policies: Vec<Policy>,
    pub functions: Vec<Function>,
}

const TABLES: &str = "
select n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity, c.relreplident::text,
       exists (select 1 from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid
                where p.pubname = 'supabase_realtime' and pr.prrelid = c.oid)
         or exists (select 1 from pg_publication p where p.pubname = 'supabase_realtime' and p.puballtables),
       coalesce('security_invoker=true' = any(c.reloptions) or 'security_invoker=on' = any(c.reloptions), false),
       array(select cmd from unnest(array['select', 'insert', 'update', 'delete']) cmd
              where exists (select 1 from pg_roles where rolname = 'anon')
                and has_table_privilege('anon', c.oid, cmd)),
       exists (select 1 from pg_roles r where r.rolname in ('anon', 'authenticated')
                and has_table_privilege(r.rolname, c.oid, 'select, insert, update, delete')),
       exists (select 1 from pg_constraint k
                where k.conrelid = c.oid and k.contype = 'f' and k.confrelid = to_regclass('auth.users'))
         or exists (select 1 from pg_attribute a
                     where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                       and a.attname in ('user_id', 'owner_id', 'owner', 'author_id', 'created_by', 'profile_id')),
       array(select distinct a.attname::text from pg_index i
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
              where i.indrelid = c.oid)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition
 order by 1, 2";

const POLICIES: &str = "
select n.nspname::text, c.relname::text, p.polname::text, p.polpermissive,
       case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                     when 'd' then 'delete' else 'all' end,
       array(select case when r = 0 then 'public' else pg_get_userbyid(r)::text end
               from unnest(p.polroles) r),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
       array(select distinct a.attname::text from pg_depend d
               join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
              where d.classid = 'pg_policy'::regclass and d.objid = p.oid
                and d.refobjid = p.polrelid and d.refobjsubid > 0)
  from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any($1)
 order by 1, 2, 3";

const FUNCTIONS: &str = "
select n.nspname::text, n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       exists (select 1 from unnest(coalesce(p.proconfig, '{}')) s where s like 'search_path=%'),
       exists (select 1 from pg_roles r where r.rolname in ('anon', 'authenticated')
                and has_function_privilege(r.rolname, p.oid, 'execute'))
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = any($1) and p.prosecdef
 order by 2";

/// Reads the catalog of `schemas`.
pub async fn read(client: &tokio_postgres::Client, schemas: &[String]) -> anyhow::Result<Catalog> {
    let kind = |s: String| s.chars().next().unwrap_or('?');
    let tables = client
        .query(TABLES, &[&schemas])
        .await
        .context("cannot read the tables")?
        .iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
            kind: kind(r.get(2)),
            rls: r.get(3),
            replica_identity: kind(r.get(4)),
            published: r.get(5),
            security_invoker: r.get(6),
            anon_grants: r.get(7),
            api_reachable: r.get(8),
            user_data: r.get(9),
            indexed_columns: r.get(10),
        })
        .collect();
    let policies = client
        .query(POLICIES, &[&schemas])
        .await
        .context("cannot read the policies")?
        .iter()
        .map(|r| Policy {
            schema: r.get(0),
            table: r.get(1),
            name: r.get(2),
            permissive: r.get(3),
            command: r.get(4),
            roles: r.get(5),
            using: r.get(6),
            with_check: r.get(7),
            columns: r.get(8),
        })
        .collect();
    let functions = client
        .query(FUNCTIONS, &[&schemas])
        .await
        .context("cannot read the functions")?
        .iter()
        .map(|r| Function {
            schema: r.get(0),
            signature: r.get(1),
            fixed_search_path: r.get(2),
            api_reachable: r.get(3),
        })
        .collect();
    Ok(Catalog {
        tables,
        policies,
        functions,
    })
}
