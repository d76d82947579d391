-- PKCE towards external providers: the code verifier of a sign-in round trip through a provider
-- that wants PKCE (custom providers with pkce_enabled), kept server-side until the callback, in
-- GoTrue's table so the state travelling through the browser never carries it.

create table if not exists auth.oauth_client_states (
    id uuid primary key,
    provider_type text not null,
    code_verifier text,
    created_at timestamptz not null
);

create index if not exists idx_oauth_client_states_created_at on auth.oauth_client_states (created_at);
