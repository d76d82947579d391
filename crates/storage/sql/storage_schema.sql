-- The `storage` schema as Supabase Storage lays it out: buckets and objects, the helper
-- functions policies call, RLS on with no policies (anon and authenticated may do nothing until
-- the project writes policies), grants as Supabase's. Only the service writes bytes; these rows
-- are their catalogue.

create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;
alter default privileges in schema storage grant all on tables to anon, authenticated, service_role;
alter default privileges in schema storage grant all on functions to anon, authenticated, service_role;
alter default privileges in schema storage grant all on sequences to anon, authenticated, service_role;

do $$
begin
    if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                   where n.nspname = 'storage' and t.typname = 'buckettype') then
        create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
    end if;
end $$;

create table if not exists storage.buckets (
    id text not null primary key,
    name text not null,
    owner uuid,
    owner_id text,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[],
    type storage.buckettype not null default 'STANDARD'
);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';
create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
    id uuid not null default gen_random_uuid() primary key,
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    owner_id text,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    user_metadata jsonb,
    version text,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored
);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
create index if not exists idx_objects_bucket_id_name on storage.objects (bucket_id, name collate "C");

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

grant all on storage.buckets, storage.objects to anon, authenticated, service_role;

-- The folders of an object's name: 'a/b/c.png' -> {a,b}.
create or replace function storage.foldername(name text)
returns text[] language plpgsql immutable as $$
declare
    parts text[] := string_to_array(name, '/');
begin
    return parts[1 : array_length(parts, 1) - 1];
end
$$;

-- The last segment of an object's name: 'a/b/c.png' -> 'c.png'.
create or replace function storage.filename(name text)
returns text language plpgsql immutable as $$
declare
    parts text[] := string_to_array(name, '/');
begin
    return parts[array_length(parts, 1)];
end
$$;

-- What follows the last dot of the file name: 'a/b/c.tar.gz' -> 'gz'.
create or replace function storage.extension(name text)
returns text language plpgsql immutable as $$
declare
    parts text[] := string_to_array(name, '/');
begin
    return reverse(split_part(reverse(parts[array_length(parts, 1)]), '.', 1));
end
$$;

-- Bytes stored per bucket.
create or replace function storage.get_size_by_bucket()
returns table (size bigint, bucket_id text) language sql stable as $$
    select sum((o.metadata ->> 'size')::bigint)::bigint, o.bucket_id
    from storage.objects o
    group by o.bucket_id
$$;

-- One level of a bucket below `prefix`, as the Storage API's `list` shows it: each folder
-- once (id and dates null), then the files. Runs as the caller, so RLS decides what is seen.
-- `levels` is kept for the signature Supabase's callers use; the level comes from `prefix`.
create or replace function storage.search(
    prefix text,
    bucketname text,
    limits int default 100,
    levels int default 1,
    offsets int default 0,
    search text default '',
    sortcolumn text default 'name',
    sortorder text default 'asc'
)
returns table (
    name text,
    id uuid,
    updated_at timestamptz,
    created_at timestamptz,
    last_accessed_at timestamptz,
    metadata jsonb
)
language plpgsql stable security invoker as $$
declare
    folder text := case when coalesce(prefix, '') = '' or right(prefix, 1) = '/'
                        then coalesce(prefix, '') else prefix || '/' end;
    depth int := coalesce(array_length(string_to_array(nullif(folder, ''), '/'), 1), 1);
    column_name text := case lower(coalesce(sortcolumn, 'name'))
        when 'updated_at' then 'updated_at'
        when 'created_at' then 'created_at'
        when 'last_accessed_at' then 'last_accessed_at'
        else 'name' end;
    direction text := case when lower(coalesce(sortorder, 'asc')) = 'desc' then 'desc' else 'asc' end;
begin
    return query execute format(
        $q$
        with level as (
            select o.path_tokens[$1] as entry,
                   array_length(o.path_tokens, 1) > $1 as is_folder,
                   o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata
            from storage.objects o
            where o.bucket_id = $2
              and lower(o.name) like lower(replace(replace(replace($3, '\', '\\'), '%%', '\%%'), '_', '\_')) || '%%'
        ),
        folders as (
            select distinct l.entry from level l where l.is_folder
        )
        select r.name, r.id, r.updated_at, r.created_at, r.last_accessed_at, r.metadata from (
            (select f.entry, null::uuid, null::timestamptz, null::timestamptz, null::timestamptz, null::jsonb,
                    0 as kind
             from folders f
             where lower(f.entry) like lower(replace(replace(replace($4, '\', '\\'), '%%', '\%%'), '_', '\_')) || '%%')
            union all
            (select l.entry, l.id, l.updated_at, l.created_at, l.last_accessed_at, l.metadata, 1
             from level l
             where not l.is_folder
               and lower(l.entry) like lower(replace(replace(replace($4, '\', '\\'), '%%', '\%%'), '_', '\_')) || '%%')
        ) r (name, id, updated_at, created_at, last_accessed_at, metadata, kind)
        order by r.kind, %s %s, r.name collate "C"
        limit $5 offset $6
        $q$,
        case when column_name = 'name' then 'r.name collate "C"' else 'r.' || column_name end,
        direction
    ) using depth, bucketname, folder, coalesce(search, ''), least(coalesce(limits, 100), 1500), coalesce(offsets, 0);
end
$$;

-- Rows leave only through the Storage API, which deletes the bytes with them.
create or replace function storage.protect_delete()
returns trigger language plpgsql as $$
begin
    if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
        raise exception 'rows of storage.% are deleted through the Storage API only', tg_table_name
            using hint = 'Deleting them directly would leave their bytes behind.', errcode = '42501';
    end if;
    return null;
end
$$;
drop trigger if exists protect_buckets_delete on storage.buckets;
create trigger protect_buckets_delete before delete on storage.buckets
    for each statement execute function storage.protect_delete();
drop trigger if exists protect_objects_delete on storage.objects;
create trigger protect_objects_delete before delete on storage.objects
    for each statement execute function storage.protect_delete();

-- updated_at follows every update.
create or replace function storage.update_updated_at_column()
returns trigger language plpgsql as $$
begin
    new.updated_at = now();
    return new;
end
$$;
drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at before update on storage.objects
    for each row execute function storage.update_updated_at_column();

grant execute on all functions in schema storage to anon, authenticated, service_role;
