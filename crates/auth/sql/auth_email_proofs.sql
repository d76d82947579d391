-- craftbase's own: which address each user proved it receives mail at (a mailed link or code
-- used, an admin confirmation, a provider that verified it). Sign-ins through providers join an
-- existing user by email only when that user proved the address: an autoconfirmed sign-up did
-- not. Not a GoTrue table; a user without a row simply has proven nothing yet.

create table if not exists auth.craftbase_email_proofs (
    user_id uuid primary key references auth.users (id) on delete cascade,
    email text not null,
    method text not null,
    proven_at timestamptz not null
);
