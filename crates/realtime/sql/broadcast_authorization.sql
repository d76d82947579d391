-- Broadcasts from the database, authorized per message: which stored messages each subscriber of
-- a private topic may read, by the SELECT policies of realtime.messages evaluated under the
-- subscriber's role and claims with realtime.topic() set to the topic, on the committed rows.
-- Supabase asks the policies once, at join; craftbase asks them again for every message, so a
-- policy that reads the message (its event, its payload) holds for live delivery as it does for
-- replay.
--
-- One call checks a whole batch: group g (1-based) acts as roles[g] with claims[g] on
-- topics[g] and asks for ids[bounds[g] : bounds[g+1] - 1], all inserted between lo and hi (so
-- only their days' partitions are read); the result names the (group, id) pairs it may read. Each group runs in its own subtransaction, so a policy that fails hides
-- messages from that group alone. The SET clause makes the role and settings each group takes
-- end with the call.

create or replace function realtime.craftbase_readable_messages(
    roles text[], claims text[], topics text[], bounds int[], ids uuid[], lo timestamp, hi timestamp)
returns table (grp int, id uuid)
language plpgsql
volatile
set search_path = ''
as $$
declare
    g int;
    found uuid[];
begin
    for g in 1 .. coalesce(array_length(roles, 1), 0) loop
        found := null;
        begin
            perform set_config('role', roles[g], true),
                    set_config('request.jwt.claims', claims[g], true),
                    set_config('realtime.topic', topics[g], true);
            select array_agg(m.id) into found
              from realtime.messages m
             where m.inserted_at between lo and hi
               and m.id = any (ids[bounds[g] : bounds[g + 1] - 1])
               and m.topic = topics[g]
               and m.private is true
               and m.extension = 'broadcast';
        exception when others then
            found := null;
        end;
        if found is not null then
            grp := g;
            foreach id in array found loop
                return next;
            end loop;
        end if;
    end loop;
end
$$;

revoke all on function realtime.craftbase_readable_messages(text[], text[], text[], int[], uuid[], timestamp, timestamp) from public;

comment on function realtime.craftbase_readable_messages(text[], text[], text[], int[], uuid[], timestamp, timestamp) is
    'craftbase realtime: which stored private broadcasts each subscriber group may read (RLS on realtime.messages).';
