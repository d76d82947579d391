-- Broadcast from the database, as Supabase Realtime has it: `realtime.send`, `realtime.send_binary`
-- and `realtime.broadcast_changes` write rows into `realtime.messages`, which is partitioned by day
-- so that old days are dropped whole; the rows reach the topic's subscribers from the replication
-- stream (publication `supabase_realtime_messages_publication`).
--
-- The table was a plain one (realtime.sql); this file rebuilds it partitioned, keeping its rows of
-- the retained days, the policies a project wrote on it, its grants and the replay index.

do $$
declare
    day date;
    p record;
    roles text;
    stmt text;
begin
    if exists (select 1 from pg_partitioned_table where partrelid = 'realtime.messages'::regclass) then
        return;
    end if;

    create table realtime.messages_partitioned (
        topic text not null,
        extension text not null,
        payload jsonb,
        event text,
        private boolean default false,
        updated_at timestamp not null default now(),
        inserted_at timestamp not null default now(),
        id uuid not null default gen_random_uuid(),
        binary_payload bytea,
        constraint messages_payload_exclusive check (payload is null or binary_payload is null),
        primary key (id, inserted_at)
    ) partition by range (inserted_at);

    -- Yesterday to three days ahead: sessions in other time zones write other dates.
    for day in select generate_series(current_date - 1, current_date + 3, interval '1 day')::date loop
        execute format(
            'create table realtime.%I partition of realtime.messages_partitioned for values from (%L) to (%L)',
            'messages_' || to_char(day, 'YYYY_MM_DD'), day, day + 1);
    end loop;

    insert into realtime.messages_partitioned
        (topic, extension, payload, event, private, updated_at, inserted_at, id)
    select topic, extension, payload, event, private, updated_at, inserted_at, id
      from realtime.messages
     where inserted_at >= current_date - 1 and inserted_at < current_date + 4;

    -- The project's policies, as written, on the new table.
    for p in
        select pol.polname, pol.polpermissive, pol.polcmd, pol.polroles,
               pg_get_expr(pol.polqual, pol.polrelid) as qual,
               pg_get_expr(pol.polwithcheck, pol.polrelid) as with_check
          from pg_policy pol
         where pol.polrelid = 'realtime.messages'::regclass
    loop
        select string_agg(case when r = 0 then 'public' else quote_ident(a.rolname) end, ', ')
          into roles
          from unnest(p.polroles) as r
          left join pg_roles a on a.oid = r;
        stmt := format('create policy %I on realtime.messages_partitioned as %s for %s to %s',
            p.polname,
            case when p.polpermissive then 'permissive' else 'restrictive' end,
            case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                          when 'd' then 'delete' else 'all' end,
            roles);
        if p.qual is not null then
            stmt := stmt || format(' using (%s)', p.qual);
        end if;
        if p.with_check is not null then
            stmt := stmt || format(' with check (%s)', p.with_check);
        end if;
        execute stmt;
    end loop;

    drop table realtime.messages;
    alter table realtime.messages_partitioned rename to messages;
    alter table realtime.messages rename constraint messages_partitioned_pkey to messages_pkey;
end
$$;

comment on table realtime.messages is
    'Broadcasts from the database and private-channel checks, partitioned by day; RLS policies here decide who may join, send and receive.';
alter table realtime.messages enable row level security;
grant select, insert on realtime.messages to anon, authenticated, service_role;

create index if not exists messages_replay_idx
    on realtime.messages (topic, inserted_at desc)
    where extension = 'broadcast' and private is true;

-- Creates the partitions from yesterday to `days_ahead` days ahead and drops those older than
-- `retention_days`; realtime calls it at start and every hour. Returns how many it dropped.
create or replace function realtime.craftbase_maintain_partitions(
    days_ahead integer default 3,
    retention_days integer default 3
) returns integer
language plpgsql
set search_path = ''
as $$
declare
    day date;
    part record;
    dropped integer := 0;
begin
    for day in select generate_series(current_date - 1, current_date + days_ahead, interval '1 day')::date loop
        if to_regclass(format('realtime.%I', 'messages_' || to_char(day, 'YYYY_MM_DD'))) is null then
            execute format(
                'create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
                'messages_' || to_char(day, 'YYYY_MM_DD'), day, day + 1);
        end if;
    end loop;
    for part in
        select c.relname
          from pg_inherits i
          join pg_class c on c.oid = i.inhrelid
         where i.inhparent = 'realtime.messages'::regclass
           and c.relname ~ '^messages_\d{4}_\d{2}_\d{2}$'
           and to_date(substr(c.relname, 10), 'YYYY_MM_DD') < current_date - retention_days
    loop
        execute format('drop table realtime.%I', part.relname);
        dropped := dropped + 1;
    end loop;
    return dropped;
end
$$;
revoke all on function realtime.craftbase_maintain_partitions(integer, integer) from public;

-- Sends `payload` to `topic` as a broadcast of `event`: one row in realtime.messages, checked
-- against its INSERT policies under the caller's role. As in Supabase, a failure never fails
-- the caller's transaction (a trigger's write stands): it is a warning.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
    message_id uuid := gen_random_uuid();
begin
    begin
        -- The topic's policies read it through realtime.topic().
        perform set_config('realtime.topic', topic, true);
        insert into realtime.messages (id, payload, event, topic, private, extension)
        values (message_id,
                case when payload ? 'id' then payload else payload || jsonb_build_object('id', message_id) end,
                event, topic, private, 'broadcast');
    exception when others then
        raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
    end;
end
$$;

-- `realtime.send` for bytes: subscribers receive them as a binary broadcast.
create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
begin
    begin
        perform set_config('realtime.topic', topic, true);
        insert into realtime.messages (binary_payload, event, topic, private, extension)
        values (payload, event, topic, private, 'broadcast');
    exception when others then
        raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
    end;
end
$$;

-- For row triggers: broadcasts a table change to `topic_name` as `event_name`, with the record
-- before and after, the operation and the table, as Supabase's function does.
create or replace function realtime.broadcast_changes(
    topic_name text, event_name text, operation text, table_name text, table_schema text,
    new record, old record, level text default 'ROW'
) returns void
language plpgsql
as $$
begin
    if level = 'STATEMENT' then
        raise exception 'function can only be triggered for each row, not for each statement';
    end if;
    if operation not in ('INSERT', 'UPDATE', 'DELETE') then
        raise exception 'Unexpected operation type: %', operation;
    end if;
    perform realtime.send(
        jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                           'table', table_name, 'schema', table_schema),
        event_name, topic_name);
end
$$;

grant execute on function realtime.send(jsonb, text, text, boolean),
                          realtime.send_binary(bytea, text, text, boolean),
                          realtime.broadcast_changes(text, text, text, text, text, record, record, text)
   to anon, authenticated, service_role;

-- Inserts into realtime.messages, published under the partitioned table's own name.
do $$
begin
    if not exists (select 1 from pg_publication where pubname = 'supabase_realtime_messages_publication') then
        create publication supabase_realtime_messages_publication
            for table realtime.messages with (publish = 'insert', publish_via_partition_root = true);
    elsif not exists (select 1 from pg_publication_tables
                       where pubname = 'supabase_realtime_messages_publication'
                         and schemaname = 'realtime' and tablename = 'messages') then
        alter publication supabase_realtime_messages_publication add table realtime.messages;
    end if;
end
$$;
