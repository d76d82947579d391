-- Row-level security for Tool Connect Craft: the policies the app relies on
-- (shared/reference/tool-connect-craft.md, "Row-level security").
-- Table grants give request roles every privilege (roles.sql), so these policies are the only guard.
-- service_role has BYPASSRLS and needs none. auth.uid() is wrapped in a scalar subquery so PostgreSQL
-- evaluates it once per statement instead of once per row.
-- Each policy is dropped and recreated so the file can be applied again.

alter table public.connectors enable row level security;
alter table public.connector_tools enable row level security;
alter table public.user_connections enable row level security;
alter table public.oauth_transactions enable row level security;
alter table public.pipeline_jobs enable row level security;
alter table public.pipeline_events enable row level security;
alter table public.action_logs enable row level security;

-- The active catalogue is public: the anonymous landing page shows it too. Nobody but the server writes it.
drop policy if exists connectors_select_active on public.connectors;
create policy connectors_select_active on public.connectors
    for select to anon, authenticated
    using (is_active);

drop policy if exists connector_tools_select_active on public.connector_tools;
create policy connector_tools_select_active on public.connector_tools
    for select to anon, authenticated
    using (exists (
        select 1 from public.connectors c
        where c.id = connector_tools.connector_id and c.is_active
    ));

-- A user manages only their own connections (the app upserts, updates and deletes them).
drop policy if exists user_connections_select_own on public.user_connections;
create policy user_connections_select_own on public.user_connections
    for select to authenticated
    using (user_id = (select auth.uid()));

drop policy if exists user_connections_insert_own on public.user_connections;
create policy user_connections_insert_own on public.user_connections
    for insert to authenticated
    with check (user_id = (select auth.uid()));

drop policy if exists user_connections_update_own on public.user_connections;
create policy user_connections_update_own on public.user_connections
    for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

drop policy if exists user_connections_delete_own on public.user_connections;
create policy user_connections_delete_own on public.user_connections
    for delete to authenticated
    using (user_id = (select auth.uid()));

-- OAuth flows: read, start and complete one's own; never deleted by clients.
drop policy if exists oauth_transactions_select_own on public.oauth_transactions;
create policy oauth_transactions_select_own on public.oauth_transactions
    for select to authenticated
    using (user_id = (select auth.uid()));

drop policy if exists oauth_transactions_insert_own on public.oauth_transactions;
create policy oauth_transactions_insert_own on public.oauth_transactions
    for insert to authenticated
    with check (user_id = (select auth.uid()));

drop policy if exists oauth_transactions_update_own on public.oauth_transactions;
create policy oauth_transactions_update_own on public.oauth_transactions
    for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

-- Jobs: read, create and advance one's own; no delete, so the run history stays.
drop policy if exists pipeline_jobs_select_own on public.pipeline_jobs;
create policy pipeline_jobs_select_own on public.pipeline_jobs
    for select to authenticated
    using (user_id = (select auth.uid()));

drop policy if exists pipeline_jobs_insert_own on public.pipeline_jobs;
create policy pipeline_jobs_insert_own on public.pipeline_jobs
    for insert to authenticated
    with check (user_id = (select auth.uid()));

drop policy if exists pipeline_jobs_update_own on public.pipeline_jobs;
create policy pipeline_jobs_update_own on public.pipeline_jobs
    for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

-- Events belong to whoever owns their job. The events channel has no filter, so the select policy is
-- what keeps one user's events off another user's screen. Events are append-only: no update or delete.
drop policy if exists pipeline_events_select_own_job on public.pipeline_events;
create policy pipeline_events_select_own_job on public.pipeline_events
    for select to authenticated
    using (exists (
        select 1 from public.pipeline_jobs j
        where j.id = pipeline_events.job_id and j.user_id = (select auth.uid())
    ));

drop policy if exists pipeline_events_insert_own_job on public.pipeline_events;
create policy pipeline_events_insert_own_job on public.pipeline_events
    for insert to authenticated
    with check (exists (
        select 1 from public.pipeline_jobs j
        where j.id = pipeline_events.job_id and j.user_id = (select auth.uid())
    ));

-- Action logs are an audit trail: users read and append their own, never change them.
drop policy if exists action_logs_select_own on public.action_logs;
create policy action_logs_select_own on public.action_logs
    for select to authenticated
    using (user_id = (select auth.uid()));

drop policy if exists action_logs_insert_own on public.action_logs;
create policy action_logs_insert_own on public.action_logs
    for insert to authenticated
    with check (user_id = (select auth.uid()));
