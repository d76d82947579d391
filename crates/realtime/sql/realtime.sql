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

-- authenticator calls the visibility probes craftbase generates here (realtime.craftbase_probe_*).
grant usage on schema realtime to anon, authenticated, service_role, authenticator;
grant select, insert on realtime.messages to anon, authenticated, service_role;
grant execute on function realtime.topic() to anon, authenticated, service_role;

