-- What Realtime needs in the database: the publication whose tables stream postgres_changes, and the
-- messages table whose RLS policies authorize private broadcast and presence channels.
-- Statements are guarded so the file can be applied again without harm.

-- Starts empty; application schemas add their tables to it.
do $$
begin
    if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$$;

create schema if not exists realtime;

-- Broadcast and presence traffic of private channels. Realtime authorizes a join by inserting probe rows
-- and reading them back under the subscriber's role, so the table's policies are the channel's ACL.
-- Supabase partitions it by day; a plain table with the same columns and key serves the same queries.
create table if not exists realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp not null default now(),
    inserted_at timestamp not null default now(),
    id uuid not null default gen_random_uuid(),
    primary key (id, inserted_at)
);
comment on table realtime.messages is 'Private-channel messages; RLS policies here decide who may join and send.';

-- With no policies nobody but the owner and BYPASSRLS roles passes, so private channels are closed
-- until a project writes policies.
alter table realtime.messages enable row level security;

-- The sub-topic being authorized, set by Realtime for the duration of the check; for use in policies.
create or replace function realtime.topic() returns text
language sql stable
as $$
    select nullif(current_setting('realtime.topic', true), '')
$$;

grant usage on schema realtime to anon, authenticated, service_role, authenticator;
grant select, insert on realtime.messages to anon, authenticated, service_role;
grant execute on function realtime.topic() to anon, authenticated, service_role;

-- Which of a batch of WAL rows each group of subscribers may SELECT. `probe` is built by craftbase
-- from the table's SELECT policies that apply to the groups' role and selects `ordinality` from
-- `jsonb_populate_recordset(null::<table>, $1) with ordinality`, so the policies are evaluated on
-- the row values that were committed, not on a later re-read of the table. Each group runs under
-- its own role and claims, in its own subtransaction: a policy error hides the rows from that group
-- alone and never loses the change for the others. Only the probe runs under the subscriber's role.
create or replace function realtime.craftbase_visible(probe text, groups jsonb, wal_rows jsonb)
returns table (grp int, idx int)
language plpgsql volatile
as $$
declare
    g jsonb;
    n int := 0;
    wanted int[];
    i int;
begin
    for g in select value from jsonb_array_elements(groups) loop
        wanted := array(select jsonb_array_elements_text(g->'rows')::int);
        begin
            perform set_config('role', g->>'role', true);
            perform set_config('request.jwt.claims', g->>'claims', true);
            for i in execute probe using wal_rows, wanted loop
                grp := n;
                idx := i;
                return next;
            end loop;
            perform set_config('role', 'none', true);
            perform set_config('request.jwt.claims', '', true);
        exception when others then
            raise warning 'realtime visibility probe failed for one group: %', sqlerrm;
        end;
        n := n + 1;
    end loop;
    perform set_config('role', 'none', true);
end
$$;
revoke all on function realtime.craftbase_visible(text, jsonb, jsonb) from public;
grant execute on function realtime.craftbase_visible(text, jsonb, jsonb) to authenticator;
