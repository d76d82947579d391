-- Reload the REST gateway's schema cache after any DDL, as Supabase's pgrst_ddl_watch does: an event
-- trigger sends NOTIFY pgrst, 'reload schema', which the gateway LISTENs for.
-- Event triggers need a superuser; on a server where craftbase's role is not one, this is skipped and
-- `NOTIFY pgrst, 'reload schema'` remains the way to reload. Safe to run repeatedly.

create schema if not exists craftbase;

create or replace function craftbase.notify_schema_reload() returns event_trigger
language plpgsql as $$
begin
    notify pgrst, 'reload schema';
end
$$;

do $$
begin
    if (select rolsuper from pg_roles where rolname = current_user) then
        drop event trigger if exists craftbase_schema_reload;
        create event trigger craftbase_schema_reload on ddl_command_end
            execute function craftbase.notify_schema_reload();
        drop event trigger if exists craftbase_schema_reload_drop;
        create event trigger craftbase_schema_reload_drop on sql_drop
            execute function craftbase.notify_schema_reload();
    end if;
end
$$;
