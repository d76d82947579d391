-- Broadcasts from the database, authorized per message: which stored messages each subscriber of
-- a private topic may read, by the SELECT policies of realtime.messages evaluated under the
-- subscriber's role and claims with realtime.topic() set to the topic, on the committed rows.
-- Supabase asks the policies once, at join; craftbase asks them again for every message, so a
-- policy that reads the message (its event, its payload) holds for live delivery as it does for
-- replay.
--
-- One call checks a whole batch: group g (1-based) acts as roles[g] with claims[g] on
-- topics[g] and asks for the messages ids[i] inserted at ats[i], i in bounds[g] ..
-- bounds[g+1] - 1 (each read by its primary key from its day's partition); the result names
-- the (group, id) pairs it may read. With isolated, each check runs in its own subtransaction,
-- so a policy that fails hides that message from that group alone; without (the first try,
-- cheaper), a failure fails the call and the caller asks again isolated. The SET clause makes
-- the role and settings the groups take end with the call.

create or replace function realtime.craftbase_readable_messages(
    roles text[], claims text[], topics text[], bounds int[], ids uuid[], ats timestamp[],
    isolated boolean)
returns table (grp int, id uuid)
language plpgsql
volatile
set search_path = ''
as $$
declare
    g int;
    i int;
    x text;
    seen boolean;
begin
    for g in 1 .. coalesce(array_length(roles, 1), 0) loop
        -- Groups come sorted by role: the role changes only between roles.
        if g = 1 or roles[g] is distinct from roles[g - 1] then
            x := set_config('role', roles[g], true);
        end if;
        x := set_config('request.jwt.claims', claims[g], true);
        x := set_config('realtime.topic', topics[g], true);
        for i in bounds[g] .. bounds[g + 1] - 1 loop
            if isolated then
                begin
                    seen := exists (select 1 from realtime.messages m
                                     where m.id = ids[i] and m.inserted_at = ats[i]
                                       and m.topic = topics[g] and m.private is true
                                       and m.extension = 'broadcast');
                exception when others then
                    seen := false;
                end;
            else
                seen := exists (select 1 from realtime.messages m
                                 where m.id = ids[i] and m.inserted_at = ats[i]
                                   and m.topic = topics[g] and m.private is true
                                   and m.extension = 'broadcast');
            end if;
            if seen then
                grp := g;
                id := ids[i];
                return next;
            end if;
        end loop;
    end loop;
end
$$;

revoke all on function realtime.craftbase_readable_messages(text[], text[], text[], int[], uuid[], timestamp[], boolean) from public;

comment on function realtime.craftbase_readable_messages(text[], text[], text[], int[], uuid[], timestamp[], boolean) is
    'craftbase realtime: which stored private broadcasts each subscriber group may read (RLS on realtime.messages).';
