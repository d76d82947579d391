//! What the TypeScript generator needs from the catalog, read in a handful of queries:
//! the schemas asked for, their tables, views and columns, every type (a column may use a type
//! of any schema), their functions, foreign keys, and the views' column origins (to derive the
//! relationships PostgREST gives views). Schema names reach SQL only as a bind parameter.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::node_tree;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelKind {
    Table,
    Foreign,
    View,
    MaterializedView,
}

#[derive(Clone, Debug)]
pub struct Relation {
    pub id: i64,
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    /// Views: INSERT works (auto-updatable, INSTEAD OF trigger or rule).
    pub insertable: bool,
    /// Views: UPDATE works.
    pub updatable: bool,
}

#[derive(Clone, Debug)]
pub struct Column {
    pub relation_id: i64,
    pub attnum: i16,
    pub name: String,
    /// The type's name, or its base type's for a domain.
    pub format: String,
    pub type_schema: String,
    pub has_default: bool,
    pub is_identity: bool,
    pub identity_always: bool,
    pub is_generated: bool,
    pub is_nullable: bool,
    pub is_updatable: bool,
}

#[derive(Clone, Debug)]
pub struct PgType {
    pub id: i64,
    pub name: String,
    pub schema: String,
    /// `format_type`, the schema-qualified name when not on the search path.
    pub format: String,
    pub enums: Vec<String>,
    /// Attributes of a composite type: name and type oid.
    pub attributes: Vec<(String, i64)>,
    /// The relation of a row type.
    pub relation_id: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgMode {
    In,
    Out,
    InOut,
    Variadic,
    Table,
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub mode: ArgMode,
    pub name: String,
    pub type_id: i64,
    pub has_default: bool,
}

#[derive(Clone, Debug)]
pub struct Function {
    pub id: i64,
    pub schema: String,
    pub name: String,
    /// `pg_get_function_arguments`.
    pub argument_types: String,
    pub identity_argument_types: String,
    /// `pg_get_function_result`.
    pub return_type: String,
    pub return_type_id: i64,
    pub return_type_relation_id: Option<i64>,
    pub is_set_returning: bool,
    /// The planner's row estimate of a set-returning function (`ROWS`).
    pub rows: Option<f32>,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub struct Relationship {
    pub foreign_key_name: String,
    pub schema: String,
    pub relation: String,
    pub columns: Vec<String>,
    pub is_one_to_one: bool,
    pub referenced_schema: String,
    pub referenced_relation: String,
    pub referenced_columns: Vec<String>,
}

/// Everything read from the database, unsorted.
#[derive(Debug, Default)]
pub struct Catalog {
    pub schemas: Vec<String>,
    pub relations: Vec<Relation>,
    pub columns: Vec<Column>,
    pub types: Vec<PgType>,
    pub functions: Vec<Function>,
    pub relationships: Vec<Relationship>,
}

const SCHEMAS: &str = "
select n.nspname
from pg_namespace n
where n.nspname = any($1)
  and not starts_with(n.nspname, 'pg_')
  and (pg_has_role(n.nspowner, 'USAGE') or has_schema_privilege(n.oid, 'CREATE, USAGE'))";

/// Tables need a privilege of the reader, like `information_schema`; other relations do not.
const RELATIONS: &str = "
select c.oid::int8, n.nspname, c.relname, c.relkind::text,
       coalesce(c.relkind = 'v' and (pg_relation_is_updatable(c.oid, true) & 8) = 8, false),
       coalesce(c.relkind = 'v' and (pg_relation_is_updatable(c.oid, true) & 4) = 4, false)
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any($1)
  and c.relkind in ('r', 'p', 'f', 'v', 'm')
  and not pg_is_other_temp_schema(n.oid)
  and (c.relkind not in ('r', 'p')
       or pg_has_role(c.relowner, 'USAGE')
       or has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))";

/// A view's column counts as writable when PostgreSQL can write it, or when an INSTEAD OF
/// INSERT/UPDATE trigger or an unconditional INSTEAD rule rewrites the whole row.
const COLUMNS: &str = "
select a.attrelid::int8, a.attnum, a.attname,
       coalesce(bt.typname, t.typname)::text,
       coalesce(bns.nspname, tns.nspname)::text,
       a.atthasdef,
       a.attidentity in ('a', 'd'),
       a.attidentity = 'a',
       a.attgenerated <> '',
       not (a.attnotnull or (t.typtype = 'd' and t.typnotnull)),
       c.relkind in ('r', 'p')
         or (c.relkind in ('v', 'f') and (
           pg_column_is_updatable(c.oid, a.attnum, false)
           or exists (select from pg_trigger tg
                      where tg.tgrelid = c.oid and tg.tgtype & 64 <> 0 and tg.tgtype & 20 <> 0
                        and not tg.tgisinternal)
           or exists (select from pg_rewrite rw
                      where rw.ev_class = c.oid and rw.is_instead and rw.ev_type in ('2', '3')
                        and rw.ev_qual::text = '<>')))
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
join pg_namespace tns on tns.oid = t.typnamespace
left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
left join pg_namespace bns on bns.oid = bt.typnamespace
where n.nspname = any($1)
  and c.relkind in ('r', 'p', 'f', 'v', 'm')
  and a.attnum > 0 and not a.attisdropped
  and not pg_is_other_temp_schema(n.oid)
  and (pg_has_role(c.relowner, 'USAGE')
       or has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))";

/// Every type of every schema except those of relations that are not row types anyone can name.
const TYPES: &str = "
select t.oid::int8, t.typname::text, n.nspname::text, format_type(t.oid, null),
       coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder)
                 from pg_enum e where e.enumtypid = t.oid), '{}'),
       coalesce((select array_agg(a.attname::text order by a.attnum)
                 from pg_class c join pg_attribute a on a.attrelid = c.oid
                 where c.oid = t.typrelid and c.relkind = 'c' and not a.attisdropped), '{}'),
       coalesce((select array_agg(a.atttypid::int8 order by a.attnum)
                 from pg_class c join pg_attribute a on a.attrelid = c.oid
                 where c.oid = t.typrelid and c.relkind = 'c' and not a.attisdropped), '{}'),
       nullif(t.typrelid, 0)::int8
from pg_type t
join pg_namespace n on n.oid = t.typnamespace
where t.typrelid = 0
   or (select c.relkind in ('c', 'r', 'v', 'm', 'p', 'f') from pg_class c where c.oid = t.typrelid)";

/// Plain functions (no procedures or aggregates), without trigger functions.
const FUNCTIONS: &str = "
select p.oid::int8, n.nspname::text, p.proname::text,
       pg_get_function_arguments(p.oid), pg_get_function_identity_arguments(p.oid),
       pg_get_function_result(p.oid), p.prorettype::int8, nullif(rt.typrelid, 0)::int8,
       p.proretset, case when p.proretset then nullif(p.prorows, 0) end,
       p.proargmodes::text[], p.proargnames,
       coalesce(p.proallargtypes::int8[], p.proargtypes::int8[]),
       p.pronargs, p.pronargdefaults
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
left join pg_type rt on rt.oid = p.prorettype
where n.nspname = any($1)
  and p.prokind = 'f'
  and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)";

/// Foreign keys declared in the schemas; one-to-one when the referencing columns are exactly a
/// primary key or unique constraint of their table (in column order).
const FOREIGN_KEYS: &str = "
select k.conname::text, ns.nspname::text, tab.relname::text,
       array(select a.attname::text from unnest(k.conkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o),
       rns.nspname::text, ref.relname::text,
       array(select a.attname::text from unnest(k.confkey) with ordinality u(n, o)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o),
       exists (
         select from pg_constraint uq
         where uq.conrelid = k.conrelid and uq.contype in ('p', 'u')
           and array(select a.attname::text from unnest(uq.conkey) u(n)
                     join pg_attribute a on a.attrelid = uq.conrelid and a.attnum = u.n
                     order by a.attnum)
             = array(select a.attname::text from unnest(k.conkey) with ordinality u(n, o)
                     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n
                     order by u.o)),
       k.conrelid::int8, k.conkey, k.confrelid::int8, k.confkey
from pg_constraint k
join pg_namespace ns on ns.oid = k.connamespace
join pg_class tab on tab.oid = k.conrelid
join pg_class ref on ref.oid = k.confrelid
join pg_namespace rns on rns.oid = ref.relnamespace
where k.contype = 'f' and k.conparentid = 0 and ns.nspname = any($1)";

/// The parse trees of the views (and materialized views) of the schemas.
const VIEW_TREES: &str = "
select c.oid::int8, r.ev_action::text
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_rewrite r on r.ev_class = c.oid
where c.relkind in ('v', 'm') and n.nspname = any($1)
order by r.rulename <> '_RETURN', r.rulename";

/// Reads the catalog for `schemas`.
pub async fn introspect(
    client: &Client,
    schemas: &[String],
) -> Result<Catalog, tokio_postgres::Error> {
    let schemas_param: &(dyn tokio_postgres::types::ToSql + Sync) = &schemas;
    let mut catalog = Catalog {
        schemas: client
            .query(SCHEMAS, &[schemas_param])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        ..Catalog::default()
    };
    for row in client.query(RELATIONS, &[schemas_param]).await? {
        let kind: String = row.get(3);
        catalog.relations.push(Relation {
            id: row.get(0),
            schema: row.get(1),
            name: row.get(2),
            kind: match kind.as_str() {
                "f" => RelKind::Foreign,
                "v" => RelKind::View,
                "m" => RelKind::MaterializedView,
                _ => RelKind::Table,
            },
            insertable: row.get(4),
            updatable: row.get(5),
        });
    }
    for row in client.query(COLUMNS, &[schemas_param]).await? {
        catalog.columns.push(Column {
            relation_id: row.get(0),
            attnum: row.get(1),
            name: row.get(2),
            format: row.get(3),
            type_schema: row.get(4),
            has_default: row.get(5),
            is_identity: row.get(6),
            identity_always: row.get(7),
            is_generated: row.get(8),
            is_nullable: row.get(9),
            is_updatable: row.get(10),
        });
    }
    for row in client.query(TYPES, &[]).await? {
        let names: Vec<String> = row.get(5);
        let type_ids: Vec<i64> = row.get(6);
        catalog.types.push(PgType {
            id: row.get(0),
            name: row.get(1),
            schema: row.get(2),
            format: row.get(3),
            enums: row.get(4),
            attributes: names.into_iter().zip(type_ids).collect(),
            relation_id: row.get(7),
        });
    }
    for row in client.query(FUNCTIONS, &[schemas_param]).await? {
        catalog.functions.push(function(&row));
    }
    let mut keys = Vec::new();
    for row in client.query(FOREIGN_KEYS, &[schemas_param]).await? {
        keys.push(ForeignKey {
            relationship: Relationship {
                foreign_key_name: row.get(0),
                schema: row.get(1),
                relation: row.get(2),
                columns: row.get(3),
                referenced_schema: row.get(4),
                referenced_relation: row.get(5),
                referenced_columns: row.get(6),
                is_one_to_one: row.get(7),
            },
            table: row.get(8),
            table_columns: row.get(9),
            referenced_table: row.get(10),
            referenced_table_columns: row.get(11),
        });
    }
    let mut origins = HashMap::new();
    for row in client.query(VIEW_TREES, &[schemas_param]).await? {
        let tree: String = row.get(1);
        // Every rule of the view counts, the view's own (`_RETURN`) first.
        origins
            .entry(row.get::<_, i64>(0))
            .or_insert_with(Vec::new)
            .extend(node_tree::column_origins(&tree));
    }
    catalog.relationships = with_view_relationships(&catalog, keys, &origins);
    Ok(catalog)
}

/// Builds a function and its arguments: IN, OUT, INOUT, VARIADIC and TABLE ones in declaration
/// order. Defaults belong to the last input arguments; like the upstream generator, they are
/// matched by position over all arguments.
fn function(row: &tokio_postgres::Row) -> Function {
    let modes: Option<Vec<String>> = row.get(10);
    let names: Option<Vec<String>> = row.get(11);
    let type_ids: Vec<i64> = row.get(12);
    let nargs = row.get::<_, i16>(13) as usize;
    let ndefaults = row.get::<_, i16>(14) as usize;
    let args = type_ids
        .iter()
        .enumerate()
        .map(|(i, &type_id)| Arg {
            mode: match modes.as_ref().and_then(|m| m.get(i)).map(String::as_str) {
                Some("o") => ArgMode::Out,
                Some("b") => ArgMode::InOut,
                Some("v") => ArgMode::Variadic,
                Some("t") => ArgMode::Table,
                _ => ArgMode::In,
            },
            name: names
                .as_ref()
                .and_then(|n| n.get(i))
                .cloned()
                .unwrap_or_default(),
            type_id,
            has_default: i < nargs && i >= nargs - ndefaults.min(nargs),
        })
        .collect();
    Function {
        id: row.get(0),
        schema: row.get(1),
        name: row.get(2),
        argument_types: row.get(3),
        identity_argument_types: row.get(4),
        return_type: row.get(5),
        return_type_id: row.get(6),
        return_type_relation_id: row.get(7),
        is_set_returning: row.get(8),
        rows: row.get(9),
        args,
    }
}

/// A foreign key with the attribute numbers needed to follow it through views.
struct ForeignKey {
    relationship: Relationship,
    table: i64,
    table_columns: Vec<i16>,
    referenced_table: i64,
    referenced_table_columns: Vec<i16>,
}

/// A view whose columns cover every column of a key: for each key column, the names of the
/// view's columns that show it.
struct KeyInView<'a> {
    view: &'a Relation,
    columns: Vec<Vec<String>>,
}

/// The foreign keys, then (like PostgREST) the relationships they give the views that show all
/// of a key's columns: view to table, table to view and view to view, one per combination
/// when a view shows a key column more than once.
fn with_view_relationships(
    catalog: &Catalog,
    keys: Vec<ForeignKey>,
    origins: &HashMap<i64, Vec<node_tree::Origin>>,
) -> Vec<Relationship> {
    let views: Vec<&Relation> = catalog
        .relations
        .iter()
        .filter(|r| {
            matches!(r.kind, RelKind::View | RelKind::MaterializedView)
                && origins.contains_key(&r.id)
        })
        .collect();
    let column_name = |relation: i64, attnum: i16| {
        catalog
            .columns
            .iter()
            .find(|c| c.relation_id == relation && c.attnum == attnum)
            .map(|c| c.name.clone())
    };
    // (view, view attnum) -> the table column it shows, following views over views.
    let resolve = |view: i64, attnum: i16| -> Option<(i64, i16)> {
        let mut at = (view, attnum);
        let mut seen = vec![view];
        loop {
            let origin = origins.get(&at.0)?.iter().find(|o| o.resno == at.1)?;
            if origin.table == 0 {
                return None;
            }
            let next = (origin.table, origin.column);
            if !origins.contains_key(&next.0) {
                return Some(next);
            }
            if seen.contains(&next.0) {
                return None;
            }
            seen.push(next.0);
            at = next;
        }
    };
    let keys_in_views = |table: i64, key_columns: &[i16]| -> Vec<KeyInView<'_>> {
        views
            .iter()
            .filter_map(|view| {
                let shown: Vec<(i16, (i64, i16))> = origins[&view.id]
                    .iter()
                    .filter_map(|o| Some((o.resno, resolve(view.id, o.resno)?)))
                    .collect();
                let columns: Vec<Vec<String>> = key_columns
                    .iter()
                    .map(|&k| {
                        shown
                            .iter()
                            .filter(|(_, origin)| *origin == (table, k))
                            .filter_map(|(resno, _)| column_name(view.id, *resno))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (!key_columns.is_empty() && columns.iter().all(|c| !c.is_empty()))
                    .then_some(KeyInView { view, columns })
            })
            .collect()
    };
    let mut all: Vec<Relationship> = keys.iter().map(|k| k.relationship.clone()).collect();
    for key in &keys {
        let r = &key.relationship;
        let from_views = keys_in_views(key.table, &key.table_columns);
        let to_views = keys_in_views(key.referenced_table, &key.referenced_table_columns);
        for from in &from_views {
            for columns in combinations(&from.columns) {
                all.push(Relationship {
                    schema: from.view.schema.clone(),
                    relation: from.view.name.clone(),
                    columns,
                    ..r.clone()
                });
            }
        }
        for to in &to_views {
            for referenced_columns in combinations(&to.columns) {
                all.push(Relationship {
                    referenced_schema: to.view.schema.clone(),
                    referenced_relation: to.view.name.clone(),
                    referenced_columns,
                    ..r.clone()
                });
            }
        }
        for from in &from_views {
            for columns in combinations(&from.columns) {
                for to in &to_views {
                    for referenced_columns in combinations(&to.columns) {
                        all.push(Relationship {
                            foreign_key_name: r.foreign_key_name.clone(),
                            schema: from.view.schema.clone(),
                            relation: from.view.name.clone(),
                            columns: columns.clone(),
                            is_one_to_one: r.is_one_to_one,
                            referenced_schema: to.view.schema.clone(),
                            referenced_relation: to.view.name.clone(),
                            referenced_columns,
                        });
                    }
                }
            }
        }
    }
    all
}

/// Every way to pick one name from each list, in order.
fn combinations(lists: &[Vec<String>]) -> Vec<Vec<String>> {
    lists.iter().fold(vec![Vec::new()], |acc, list| {
        acc.iter()
            .flat_map(|prefix| {
                list.iter().map(move |name| {
                    let mut next = prefix.clone();
                    next.push(name.clone());
                    next
                })
            })
            .collect()
    })
}
