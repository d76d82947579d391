-- Platform roles and the grants Supabase projects start with.
--
-- Roles are cluster-global while this file may run in several databases of one cluster, so each role is
-- created only when absent and then brought to the attributes craftbase relies on. Safe to run repeatedly.

do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        create role anon;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticated') then
        create role authenticated;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'service_role') then
        create role service_role;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'authenticator') then
        -- No password here: the deployment sets one (or uses trust/peer auth) outside the migrations.
        create role authenticator;
    end if;
end
$$;

-- The request roles never log in; NOINHERIT keeps each one's privileges to what it was granted itself.
alter role anon nologin noinherit;
alter role authenticated nologin noinherit;
-- The server side's key must see every row, whatever the policies say.
alter role service_role nologin noinherit bypassrls;
-- The gateway logs in as authenticator and switches to the JWT's role per request (SET LOCAL ROLE),
-- so it holds nothing of its own.
alter role authenticator login noinherit;

-- In PostgreSQL 15 re-granting an existing membership only raises a notice.
grant anon, authenticated, service_role to authenticator;

-- Access to public is decided by RLS, not by table grants: every request role gets every privilege,
-- now and (through default privileges of the role running the migrations) on everything created later.
grant usage on schema public to anon, authenticated, service_role;
grant all on all tables in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
grant all on all functions in schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

-- Supabase search paths name "extensions"; gen_random_uuid() is core since PostgreSQL 13, so nothing is
-- installed here, but the schema must exist for those search paths and for extensions added later.
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
