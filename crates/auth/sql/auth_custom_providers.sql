-- Custom OAuth 2.0 / OpenID Connect providers registered through the admin API
-- (auth-js `auth.admin.customProviders`), in GoTrue's table and column names so a Supabase dump of
-- auth.custom_oauth_providers restores unchanged. GoTrue's https-only checks are enforced by the
-- service rather than here, so tests may register providers on loopback addresses when allowed.

create table if not exists auth.custom_oauth_providers (
    id uuid not null default gen_random_uuid(),
    provider_type text not null check (provider_type in ('oauth2', 'oidc')),
    identifier text not null,
    name text not null,
    client_id text not null,
    client_secret text not null,
    acceptable_client_ids text[] not null default '{}',
    scopes text[] not null default '{}',
    pkce_enabled boolean not null default true,
    attribute_mapping jsonb not null default '{}',
    authorization_params jsonb not null default '{}',
    enabled boolean not null default true,
    email_optional boolean not null default false,
    issuer text null,
    discovery_url text null,
    skip_nonce_check boolean not null default false,
    cached_discovery jsonb null,
    discovery_cached_at timestamptz null,
    authorization_url text null,
    token_url text null,
    userinfo_url text null,
    jwks_uri text null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    custom_claims_allowlist text[] not null default '{}',
    constraint custom_oauth_providers_pkey primary key (id),
    constraint custom_oauth_providers_identifier_key unique (identifier),
    constraint custom_oauth_providers_oidc_requires_issuer check (
        provider_type != 'oidc' or issuer is not null
    ),
    constraint custom_oauth_providers_oauth2_requires_endpoints check (
        provider_type != 'oauth2' or (
            authorization_url is not null and token_url is not null and userinfo_url is not null
        )
    ),
    constraint custom_oauth_providers_identifier_format check (
        identifier ~ '^[a-z0-9][a-z0-9:-]{0,48}[a-z0-9]$'
    ),
    constraint custom_oauth_providers_name_length check (
        char_length(name) >= 1 and char_length(name) <= 100
    ),
    constraint custom_oauth_providers_client_id_length check (
        char_length(client_id) >= 1 and char_length(client_id) <= 512
    )
);

create index if not exists custom_oauth_providers_provider_type_idx
    on auth.custom_oauth_providers (provider_type);
create index if not exists custom_oauth_providers_created_at_idx
    on auth.custom_oauth_providers (created_at);
