-- Passkeys and WebAuthn MFA factors, in the tables and columns GoTrue names them.
--
-- auth.webauthn_credentials: one passkey of a user. GoTrue's columns, plus `credential`: the
-- credential as craftbase's WebAuthn library verifies it (its public key, counter and flags),
-- kept beside the GoTrue columns so a sign-in needs no conversion. `public_key` holds the
-- credential's COSE public key as that library serialises it.
create table if not exists auth.webauthn_credentials (
    id uuid not null default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    credential_id bytea not null,
    public_key bytea not null,
    attestation_type text not null default '',
    aaguid uuid,
    sign_count bigint not null default 0,
    transports jsonb not null default '[]'::jsonb,
    backup_eligible boolean not null default false,
    backed_up boolean not null default false,
    friendly_name text not null default '',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_used_at timestamptz,
    credential jsonb,
    constraint webauthn_credentials_pkey primary key (id)
);
comment on table auth.webauthn_credentials is 'Passkeys (discoverable WebAuthn credentials) of users.';
create unique index if not exists webauthn_credentials_credential_id_key
    on auth.webauthn_credentials (credential_id);
create index if not exists webauthn_credentials_user_id_idx
    on auth.webauthn_credentials (user_id);

-- auth.webauthn_challenges: a passkey ceremony between its options and its verification. The
-- ceremony state (the challenge) stays on the server; a verification deletes the row, so each
-- challenge is used at most once, and expired rows are swept.
create table if not exists auth.webauthn_challenges (
    id uuid not null default gen_random_uuid(),
    user_id uuid references auth.users (id) on delete cascade,
    challenge_type text not null check (challenge_type in ('signup', 'registration', 'authentication')),
    session_data jsonb not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    constraint webauthn_challenges_pkey primary key (id)
);
comment on table auth.webauthn_challenges is 'Passkey ceremonies awaiting verification.';
create index if not exists webauthn_challenges_user_id_idx
    on auth.webauthn_challenges (user_id);
create index if not exists webauthn_challenges_expires_at_idx
    on auth.webauthn_challenges (expires_at);

-- WebAuthn MFA factors: the credential of a verified factor is in mfa_factors.web_authn_credential
-- and a challenge's ceremony state in mfa_challenges.web_authn_session_data (both in the base
-- schema); GoTrue also records the last ceremony of a factor.
alter table auth.mfa_factors add column if not exists last_webauthn_challenge_data jsonb;
comment on column auth.mfa_factors.last_webauthn_challenge_data is
    'The latest WebAuthn challenge of the factor: its type and when it was verified.';
