-- Limits on what one request's SQL may cost, set on the roles requests run as.
--
-- statement_timeout as Supabase sets it: anon 3s, authenticated 8s, and authenticator 8s (the session
-- default, so service_role requests and realtime's checks are bounded too).
--
-- jit off: LLVM compiles a costly plan (e.g. a select list of hundreds of embeds) without checking for
-- cancellation, so neither statement_timeout nor a cancel stops it; such a request took 70 s against a
-- 3 s timeout. Without JIT the same statement runs in milliseconds.
--
-- The gateway applies a request role's own settings per request, so `alter role anon set
-- statement_timeout = '10s'` (then `notify pgrst, 'reload schema'`) overrides these. Roles are
-- cluster-global while this file runs once per database: a setting is made only on a role that has none
-- of its own yet, so an override made earlier survives a new database in the same cluster.

do $$
declare
    r record;
begin
    for r in
        select * from (values
            ('anon', 'statement_timeout', '3s'),
            ('authenticated', 'statement_timeout', '8s'),
            ('authenticator', 'statement_timeout', '8s'),
            ('anon', 'jit', 'off'),
            ('authenticated', 'jit', 'off'),
            ('authenticator', 'jit', 'off')
        ) v(role, name, value)
    loop
        if not exists (
            select 1
            from pg_db_role_setting s
            join pg_roles o on o.oid = s.setrole
            cross join lateral unnest(s.setconfig) cfg
            where o.rolname = r.role and s.setdatabase = 0 and cfg like r.name || '=%'
        ) then
            execute format('alter role %I set %I = %L', r.role, r.name, r.value);
        end if;
    end loop;
end
$$;
