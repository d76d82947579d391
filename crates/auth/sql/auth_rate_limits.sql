-- craftbase's rate-limit counters (GoTrue keeps its own in each process's memory): one row per
-- bucket and key (a client address, an account, the project) holding the hits of its current
-- fixed window, so every craftbase node on this database enforces one limit. A request costs
-- one upsert; rows whose window has passed are deleted by auth's sweep.

create table if not exists auth.craftbase_rate_limits (
    bucket text not null,
    key text not null,
    hits integer not null,
    expires_at timestamptz not null,
    primary key (bucket, key)
);
comment on table auth.craftbase_rate_limits is
    'craftbase: rate-limit hits per bucket and key in the window ending at expires_at.';

create index if not exists craftbase_rate_limits_expires_at_idx
    on auth.craftbase_rate_limits (expires_at);
