-- The whole schema cache in one query: tables and views with their columns and keys, foreign keys,
-- functions with their arguments, and the names of types a cast may name. $1 = exposed schemas.
with rels as (
    select c.oid, n.nspname as schema, c.relname as name, c.relkind
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'v', 'm', 'p', 'f') and n.nspname = any ($1::text[])
),
-- The one table a simple view reads from (views over several tables have none), so that the view
-- takes part in that table's relationships.
view_bases as (
    select rw.ev_class as view_oid, min(d.refobjid) as base_oid
    from pg_rewrite rw
    join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid
        and d.refclassid = 'pg_class'::regclass and d.refobjid <> rw.ev_class
    join pg_class bc on bc.oid = d.refobjid and bc.relkind in ('r', 'p')
    where rw.ev_class in (select oid from rels where relkind in ('v', 'm'))
    group by rw.ev_class
    having count(distinct d.refobjid) = 1
),
tables as (
    select json_agg(json_build_object(
        'schema', r.schema,
        'name', r.name,
        'is_view', r.relkind in ('v', 'm'),
        'base', (
            select json_build_object('schema', bn.nspname, 'name', bc.relname)
            from view_bases vb
            join pg_class bc on bc.oid = vb.base_oid
            join pg_namespace bn on bn.oid = bc.relnamespace
            where vb.view_oid = r.oid
        ),
        'columns', coalesce((
            select json_agg(json_build_object(
                'name', a.attname,
                'type', format_type(a.atttypid, a.atttypmod),
                'type_name', t.typname,
                'nullable', not a.attnotnull,
                'default', case
                    when a.attidentity = 'd' then format('nextval(%L)', pg_get_serial_sequence(format('%I.%I', r.schema, r.name), a.attname))
                    else pg_get_expr(d.adbin, d.adrelid)
                end,
                'generated', a.attgenerated <> '' or a.attidentity = 'a'
            ) order by a.attnum)
            from pg_attribute a
            join pg_type t on t.oid = a.atttypid
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
        ), '[]'),
        'primary_key', coalesce((
            select json_agg(a.attname order by k.ord)
            from pg_constraint con
            cross join lateral unnest(con.conkey) with ordinality as k(attnum, ord)
            join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
            where con.conrelid = r.oid and con.contype = 'p'
        ), '[]'),
        'unique_keys', coalesce((
            select json_agg((
                select json_agg(a.attname order by k.ord)
                from unnest(con.conkey) with ordinality as k(attnum, ord)
                join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
            ))
            from pg_constraint con
            where con.conrelid = r.oid and con.contype in ('p', 'u')
        ), '[]')
    )) as v
    from rels r
),
fks as (
    select json_agg(json_build_object(
        'name', con.conname,
        'schema', sn.nspname,
        'table', sc.relname,
        'columns', (
            select json_agg(a.attname order by k.ord)
            from unnest(con.conkey) with ordinality as k(attnum, ord)
            join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
        ),
        'foreign_schema', fn.nspname,
        'foreign_table', fc.relname,
        'foreign_columns', (
            select json_agg(a.attname order by k.ord)
            from unnest(con.confkey) with ordinality as k(attnum, ord)
            join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum
        )
    )) as v
    from pg_constraint con
    join pg_class sc on sc.oid = con.conrelid
    join pg_namespace sn on sn.oid = sc.relnamespace
    join pg_class fc on fc.oid = con.confrelid
    join pg_namespace fn on fn.oid = fc.relnamespace
    where con.contype = 'f'
      and (sn.nspname = any ($1::text[]) or sc.oid in (select base_oid from view_bases))
      and (fn.nspname = any ($1::text[]) or fc.oid in (select base_oid from view_bases))
),
functions as (
    select json_agg(json_build_object(
        'schema', n.nspname,
        'name', p.proname,
        'args', coalesce((
            select json_agg(json_build_object(
                'name', coalesce(p.proargnames[a.ord], ''),
                'type', format_type(a.type_oid, null),
                'has_default', a.ord > p.pronargs - p.pronargdefaults and a.ord <= p.pronargs,
                'variadic', coalesce(p.proargmodes[a.ord], 'i') = 'v'
            ) order by a.ord)
            from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality as a(type_oid, ord)
            where coalesce(p.proargmodes[a.ord], 'i') in ('i', 'b', 'v')
        ), '[]'),
        'columns', coalesce(
            (
                select json_agg(json_build_object('name', p.proargnames[a.ord], 'type', format_type(a.type_oid, null)) order by a.ord)
                from unnest(p.proallargtypes) with ordinality as a(type_oid, ord)
                where p.proargmodes[a.ord] in ('o', 'b', 't')
            ),
            (
                select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
                from pg_attribute a
                where a.attrelid = rt.typrelid and rt.typrelid <> 0 and a.attnum > 0 and not a.attisdropped
            ),
            '[]'),
        'return_type', format_type(p.prorettype, null),
        'returns_set', p.proretset,
        'returns_composite', rt.typtype = 'c' or (rt.oid = 'record'::regtype and p.proallargtypes is not null),
        'volatility', p.provolatile,
        -- The table or view whose row type it returns: embeds on its result use that table's
        -- relationships and computed fields.
        'table', (
            select json_build_object('schema', tn.nspname, 'name', tc.relname)
            from pg_class tc
            join pg_namespace tn on tn.oid = tc.relnamespace
            where tc.reltype = p.prorettype and tc.relkind in ('r', 'v', 'm', 'p', 'f')
        )
    ) order by p.oid) as v
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    join pg_type rt on rt.oid = p.prorettype
    where n.nspname = any ($1::text[]) and p.prokind = 'f'
),
-- Functions of one parameter, a table's or view's row type, in that table's (exposed) schema:
-- computed fields (`select=id,fn`) and, when they return a table's row type, computed
-- relationships (`select=id,fn(*)`: SETOF for to-many, a single row or `ROWS 1` for to-one).
computed as (
    select json_agg(json_build_object(
        'schema', fn.nspname,
        'name', p.proname,
        'table_schema', an.nspname,
        'table', ac.relname,
        'arg_type_oid', p.proargtypes[0]::int8,
        'return_type_oid', p.prorettype::int8,
        'target_schema', tn.nspname,
        'target', tc.relname,
        'type', format_type(p.prorettype, null),
        'type_name', rt.typname,
        'returns_set', p.proretset,
        'single_row', not p.proretset or p.prorows = 1
    ) order by p.oid) as v
    from pg_proc p
    join pg_namespace fn on fn.oid = p.pronamespace
    join pg_class ac on ac.reltype = p.proargtypes[0] and ac.relkind in ('r', 'v', 'm', 'p', 'f')
    join pg_namespace an on an.oid = ac.relnamespace
    join pg_type rt on rt.oid = p.prorettype
    left join pg_class tc on tc.reltype = p.prorettype and tc.relkind in ('r', 'v', 'm', 'p', 'f')
    left join pg_namespace tn on tn.oid = tc.relnamespace
    where p.pronargs = 1 and p.prokind = 'f'
      and fn.nspname = any ($1::text[]) and an.nspname = fn.nspname
),
types as (
    select json_agg(distinct t.typname) as v
    from pg_type t
    join pg_namespace n on n.oid = t.typnamespace
    -- Casts resolve through the request's search_path: the exposed and the extra schemas.
    where (n.nspname = 'pg_catalog' or n.nspname = any ($1::text[]) or n.nspname = any ($2::text[]))
      and t.typtype in ('b', 'c', 'd', 'e', 'r', 'm')
      and t.typname !~ '^_'
)
select json_build_object(
    -- Settings of the request roles (ALTER ROLE ... SET), applied per request since SET ROLE
    -- does not apply them; database-specific ones win over global ones.
    'role_settings', coalesce((
        select json_object_agg(rolname, settings)
        from (
            select r.rolname, json_object_agg(split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1)
                                              order by s.setdatabase) as settings
            from pg_db_role_setting s
            join pg_roles r on r.oid = s.setrole
            cross join lateral unnest(s.setconfig) cfg
            where s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
            group by r.rolname
        ) per_role
    ), '{}'),
    'tables', coalesce((select v from tables), '[]'),
    'foreign_keys', coalesce((select v from fks), '[]'),
    'functions', coalesce((select v from functions), '[]'),
    'computed', coalesce((select v from computed), '[]'),
    'types', coalesce((select v from types), '[]'),
    -- Whose ALTER ROLE ... SET pgrst.* settings are PostgREST's in-database configuration.
    'connecting_role', current_user
)::text
