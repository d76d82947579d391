-- SAML 2.0 single sign-on, under GoTrue's table and column names so a Supabase dump carries over:
-- identity providers (sso_providers, their saml_providers row and sso_domains), the relay states
-- of sign-ins in flight, and craftbase's own record of consumed assertion IDs (replay guard).

create table if not exists auth.sso_providers (
    id uuid not null primary key,
    resource_id text null check (resource_id is null or char_length(resource_id) > 0),
    disabled boolean null,
    created_at timestamptz null,
    updated_at timestamptz null
);
comment on table auth.sso_providers is 'Auth: Manages SSO identity provider information; see saml_providers for SAML.';
create unique index if not exists sso_providers_resource_id_idx on auth.sso_providers (lower(resource_id));
create index if not exists sso_providers_resource_id_pattern_idx on auth.sso_providers (resource_id text_pattern_ops);

create table if not exists auth.sso_domains (
    id uuid not null primary key,
    sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
    domain text not null check (char_length(domain) > 0),
    created_at timestamptz null,
    updated_at timestamptz null
);
comment on table auth.sso_domains is 'Auth: Manages SSO email address domain mapping to an SSO Identity Provider.';
create index if not exists sso_domains_sso_provider_id_idx on auth.sso_domains (sso_provider_id);
create unique index if not exists sso_domains_domain_idx on auth.sso_domains (lower(domain));

create table if not exists auth.saml_providers (
    id uuid not null primary key,
    sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
    entity_id text not null unique check (char_length(entity_id) > 0),
    metadata_xml text not null check (char_length(metadata_xml) > 0),
    metadata_url text null check (metadata_url is null or char_length(metadata_url) > 0),
    attribute_mapping jsonb null,
    created_at timestamptz null,
    updated_at timestamptz null,
    name_id_format text null
);
comment on table auth.saml_providers is 'Auth: Manages SAML Identity Provider connections.';
create index if not exists saml_providers_sso_provider_id_idx on auth.saml_providers (sso_provider_id);

create table if not exists auth.saml_relay_states (
    id uuid not null primary key,
    sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
    request_id text not null check (char_length(request_id) > 0),
    for_email text null,
    redirect_to text null,
    created_at timestamptz null,
    updated_at timestamptz null,
    flow_state_id uuid null references auth.flow_state (id) on delete cascade
);
comment on table auth.saml_relay_states is 'Auth: Contains SAML Relay State information for each Service Provider initiated login.';
create index if not exists saml_relay_states_sso_provider_id_idx on auth.saml_relay_states (sso_provider_id);
create index if not exists saml_relay_states_for_email_idx on auth.saml_relay_states (for_email);
create index if not exists saml_relay_states_created_at_idx on auth.saml_relay_states (created_at desc);

-- craftbase's own: each accepted assertion ID, kept until the assertion would have expired, so
-- one signed assertion signs in once.
create table if not exists auth.craftbase_saml_assertions (
    sso_provider_id uuid not null references auth.sso_providers (id) on delete cascade,
    assertion_id text not null check (char_length(assertion_id) between 1 and 256),
    expires_at timestamptz not null,
    primary key (sso_provider_id, assertion_id)
);
comment on table auth.craftbase_saml_assertions is 'SAML assertion IDs already consumed (replay guard), until they expire.';
create index if not exists craftbase_saml_assertions_expires_at_idx on auth.craftbase_saml_assertions (expires_at);
