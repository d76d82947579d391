-- craftbase's own bookkeeping of failed verifications (GoTrue keeps none, so its tables are
-- left as they are): a TOTP factor that saw too many wrong codes refuses verification for a
-- while, and a user whose emailed codes saw too many wrong guesses loses them. Indexes for
-- the sweep of expired rows written by unauthenticated endpoints.

create table if not exists auth.mfa_factor_failures (
    factor_id uuid primary key references auth.mfa_factors (id) on delete cascade,
    failures integer not null default 0,
    last_failed_at timestamptz not null default now()
);
comment on table auth.mfa_factor_failures is
    'craftbase: wrong TOTP codes per factor since its last success (lockout).';

create table if not exists auth.otp_failures (
    user_id uuid primary key references auth.users (id) on delete cascade,
    failures integer not null default 0,
    last_failed_at timestamptz not null default now()
);
comment on table auth.otp_failures is
    'craftbase: wrong guesses of a user''s emailed codes since the last one was sent.';

create index if not exists oauth_authorizations_expires_at_idx
    on auth.oauth_authorizations (expires_at);
