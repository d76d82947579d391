-- Supabase's statement timeouts: anon 3s, authenticated 8s, and authenticator 8s (the session
-- default, so service_role requests and realtime's checks are bounded too). The gateway applies a
-- request role's own settings per request, so `alter role anon set statement_timeout = '10s'`
-- (then `notify pgrst, 'reload schema'`) overrides these.
--
-- Roles are cluster-global while this file runs once per database: a timeout is set only on a role
-- that has none yet, so an override made earlier survives a new database in the same cluster.

do $$
declare
    r record;
begin
    for r in select * from (values ('anon', '3s'), ('authenticated', '8s'), ('authenticator', '8s')) v(role, timeout)
    loop
        if not exists (
            select 1
            from pg_db_role_setting s
            join pg_roles o on o.oid = s.setrole
            cross join lateral unnest(s.setconfig) cfg
            where o.rolname = r.role and s.setdatabase = 0 and cfg like 'statement_timeout=%'
        ) then
            execute format('alter role %I set statement_timeout = %L', r.role, r.timeout);
        end if;
    end loop;
end
$$;
