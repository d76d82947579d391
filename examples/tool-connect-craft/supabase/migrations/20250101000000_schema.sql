-- Tool Connect Craft's schema: the tables, types and realtime settings the app's code depends on.
-- Names and types must match the app exactly (see shared/reference/tool-connect-craft.md).
-- Needs auth.users (auth_schema.sql) and the supabase_realtime publication (realtime.sql).
-- Statements are guarded so the file can be applied again without harm.

-- Enum types. CREATE TYPE has no IF NOT EXISTS, hence the exception guards.
do $$
begin
    create type public.auth_type as enum ('oauth', 'api_key', 'none');
exception when duplicate_object then null;
end
$$;

do $$
begin
    create type public.tool_source as enum ('mcp', 'rest');
exception when duplicate_object then null;
end
$$;

do $$
begin
    create type public.connection_status as enum ('pending', 'active', 'expired', 'revoked', 'error');
exception when duplicate_object then null;
end
$$;

do $$
begin
    create type public.job_status as enum ('queued', 'running', 'succeeded', 'failed', 'canceled');
exception when duplicate_object then null;
end
$$;

do $$
begin
    create type public.event_level as enum ('info', 'warn', 'error');
exception when duplicate_object then null;
end
$$;

do $$
begin
    create type public.oauth_transaction_status as enum ('started', 'completed', 'failed');
exception when duplicate_object then null;
end
$$;

-- The catalogue of integrations every visitor browses; seeded from the app's catalogue (seed.sql).
create table if not exists public.connectors (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    slug text not null unique,
    description text,
    category text,
    icon_url text,
    auth_type public.auth_type not null default 'none',
    oauth_provider text,
    oauth_scopes text[],
    oauth_config jsonb default '{}',
    mcp_server_url text,
    is_active boolean default true,
    created_at timestamptz not null default now()
);
comment on table public.connectors is 'Catalogue of integrations users can connect to.';

-- The tools each connector offers; the app validates run arguments against "schema".
create table if not exists public.connector_tools (
    id uuid primary key default gen_random_uuid(),
    connector_id uuid not null references public.connectors (id) on delete cascade,
    name text not null,
    description text,
    schema jsonb default '{}',
    source public.tool_source not null default 'rest',
    created_at timestamptz not null default now(),
    -- Not in the app's first schema; later versions upsert tools on exactly this pair.
    constraint connector_tools_connector_id_name_key unique (connector_id, name)
);
comment on table public.connector_tools is 'Tools of a connector, with the JSON Schema of their arguments.';

-- One row per user and connector they connected; the app upserts on (user_id, connector_id).
create table if not exists public.user_connections (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    connector_id uuid not null references public.connectors (id) on delete cascade,
    status public.connection_status not null default 'pending',
    secret_ref_access text,
    secret_ref_refresh text,
    expires_at timestamptz,
    scopes text[],
    last_used_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint user_connections_user_id_connector_id_key unique (user_id, connector_id)
);
comment on table public.user_connections is 'A user''s connection to a connector, with references to its stored secrets.';

-- PKCE state of an OAuth connect flow, found again by "state" when the provider redirects back.
create table if not exists public.oauth_transactions (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    connector_id uuid not null references public.connectors (id) on delete cascade,
    state text not null unique,
    code_verifier_hash text not null,
    redirect_uri text not null,
    status public.oauth_transaction_status not null default 'started',
    created_at timestamptz not null default now(),
    completed_at timestamptz
);
comment on table public.oauth_transactions is 'In-flight OAuth connect flows (PKCE), keyed by state.';

-- A tool run; the dashboard lists the latest and follows them live.
create table if not exists public.pipeline_jobs (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    connector_id uuid not null references public.connectors (id) on delete cascade,
    type text not null,
    status public.job_status not null default 'queued',
    input jsonb default '{}',
    output jsonb,
    error text,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz not null default now()
);
comment on table public.pipeline_jobs is 'Tool runs and their outcome, streamed to the dashboard.';

-- Progress lines of a job, streamed live. It has "ts" instead of created_at, as the app expects.
create table if not exists public.pipeline_events (
    id uuid primary key default gen_random_uuid(),
    job_id uuid not null references public.pipeline_jobs (id) on delete cascade,
    ts timestamptz not null default now(),
    level public.event_level not null default 'info',
    message text not null,
    data jsonb default '{}',
    -- Not in the app's schema: who the event belongs to, always copied from the job by a trigger below,
    -- so ownership is on the row itself (for audits and realtime filters) and cannot be forged.
    user_id uuid not null references auth.users (id) on delete cascade
);
comment on table public.pipeline_events is 'Progress events of a job, streamed live; user_id mirrors the job''s owner.';

-- Audit of every tool call with its latency, for the user's activity view.
create table if not exists public.action_logs (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    connector_id uuid not null references public.connectors (id) on delete cascade,
    tool_name text not null,
    request jsonb default '{}',
    response jsonb,
    status text,
    error text,
    latency_ms integer,
    created_at timestamptz not null default now()
);
comment on table public.action_logs is 'Audit log of tool calls made by users.';

-- Indexes for the app's queries (filters on user, job, status and state).
create index if not exists user_connections_user_id_idx on public.user_connections (user_id);
create index if not exists user_connections_connector_id_idx on public.user_connections (connector_id);
create index if not exists pipeline_jobs_user_id_idx on public.pipeline_jobs (user_id);
create index if not exists pipeline_jobs_status_idx on public.pipeline_jobs (status);
create index if not exists pipeline_events_job_id_idx on public.pipeline_events (job_id);
create index if not exists pipeline_events_user_id_idx on public.pipeline_events (user_id);
create index if not exists action_logs_user_id_idx on public.action_logs (user_id);
create index if not exists oauth_transactions_state_idx on public.oauth_transactions (state);

-- updated_at reflects the last write whatever the client sends.
create or replace function public.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create or replace trigger user_connections_set_updated_at
    before update on public.user_connections
    for each row execute function public.set_updated_at();

-- The app inserts events without user_id, and a client must not be able to claim someone else's.
-- SECURITY DEFINER so the job is found whatever the inserting role may see; the fixed, empty search_path
-- keeps callers from substituting objects. It runs on updates too, so the copy can never drift.
create or replace function public.set_pipeline_event_user_id() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    select j.user_id into new.user_id from public.pipeline_jobs j where j.id = new.job_id;
    return new;
end
$$;

create or replace trigger pipeline_events_set_user_id
    before insert or update of job_id, user_id on public.pipeline_events
    for each row execute function public.set_pipeline_event_user_id();

-- Realtime: these tables stream changes, and FULL replica identity puts the whole old row into
-- UPDATE and DELETE events (the app reads payload.old.id and filters on user_id).
alter table public.pipeline_jobs replica identity full;
alter table public.pipeline_events replica identity full;
alter table public.user_connections replica identity full;

do $$
declare
    t text;
begin
    foreach t in array array['pipeline_jobs', 'pipeline_events', 'user_connections'] loop
        if not exists (
            select 1 from pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
        ) then
            execute format('alter publication supabase_realtime add table public.%I', t);
        end if;
    end loop;
end
$$;

-- roles.sql grants request roles everything through default privileges of the role that ran it; grant
-- explicitly as well in case this file is applied by another role. Rows are guarded by policies.sql.
grant all on all tables in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
