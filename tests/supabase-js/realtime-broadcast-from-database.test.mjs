// Broadcast from the database, driven by supabase-js: rows that `realtime.send`,
// `realtime.send_binary` and a trigger calling `realtime.broadcast_changes` insert into
// `realtime.messages` reach the topic's subscribers live from the replication stream. Private
// topics are checked per message against the `realtime.messages` policies (with
// `realtime.topic()`), public ones reach public channels only, binary payloads arrive as bytes
// (live and replayed), and `broadcast.replication_ready` answers with the `system` push.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, clientAs, createUser, subscribed, userToken } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.notes (
         id bigint generated always as identity primary key,
         owner uuid not null,
         body text not null);
       -- Each owner's notes are broadcast to the owner's own topic.
       create function public.notes_broadcast() returns trigger
         language plpgsql security definer set search_path = '' as $$
       begin
         perform realtime.broadcast_changes(
           'notes:' || coalesce(new.owner, old.owner)::text, tg_op, tg_op,
           tg_table_name, tg_table_schema, new, old);
         return null;
       end $$;
       create trigger notes_broadcast after insert or update or delete on public.notes
         for each row execute function public.notes_broadcast();

       -- notes:<uid> is readable by that user only.
       create policy own_notes on realtime.messages for select to authenticated
         using (realtime.topic() = 'notes:' || auth.uid()::text);

       -- Rooms: members only; a message naming a recipient ('to') is for that user alone.
       create table public.room_members (room text, user_id uuid, primary key (room, user_id));
       create policy room_read on realtime.messages for select to authenticated
         using (exists (select 1 from public.room_members m
                         where m.room = realtime.topic() and m.user_id = auth.uid())
                and coalesce(payload ->> 'to', auth.uid()::text) = auth.uid()::text);`,
    );
  },
  { timeout: 180_000 },
);

after(
  async () => {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

async function client(token, options) {
  const c = await clientAs(cb, token, options);
  clients.push(c);
  return c;
}

/** A private channel on `topic`, subscribed, collecting its broadcasts. */
async function listen(c, topic, { isPrivate = true, config = {} } = {}) {
  const inbox = new Inbox();
  const ch = c
    .channel(topic, { config: { private: isPrivate, ...config } })
    .on('broadcast', { event: '*' }, inbox.push);
  await subscribed(ch);
  return { ch, inbox };
}

describe('broadcast from the database', () => {
  test('a trigger with realtime.broadcast_changes on an app table reaches the owner only', async () => {
    const [a, b] = [await createUser(cb), await createUser(cb)];
    const ca = await client(userToken(cb, a.id));
    const cbb = await client(userToken(cb, b.id));
    const { inbox } = await listen(ca, `notes:${a.id}`);
    // B may not join A's topic at all.
    const denied = cbb.channel(`notes:${a.id}`, { config: { private: true } });
    await assert.rejects(subscribed(denied), /Unauthorized/);
    await cbb.removeChannel(denied);
    const { inbox: inboxB } = await listen(cbb, `notes:${b.id}`);

    const [{ id }] = await pgQuery(
      cb.dbUrl,
      `insert into public.notes (owner, body) values ($1, 'first') returning id::int`,
      [a.id],
    );
    await pgQuery(cb.dbUrl, `update public.notes set body = 'second' where id = $1`, [id]);
    await pgQuery(cb.dbUrl, `delete from public.notes where id = $1`, [id]);

    const ins = await inbox.next((m) => m.event === 'INSERT');
    assert.equal(ins.type, 'broadcast');
    assert.equal(ins.payload.operation, 'INSERT');
    assert.equal(ins.payload.table, 'notes');
    assert.equal(ins.payload.schema, 'public');
    assert.deepEqual(ins.payload.record, { id, owner: a.id, body: 'first' });
    assert.equal(ins.payload.old_record, null);
    assert.match(ins.meta.id, /^[0-9a-f-]{36}$/);
    const upd = await inbox.next((m) => m.event === 'UPDATE');
    assert.equal(upd.payload.record.body, 'second');
    assert.equal(upd.payload.old_record.body, 'first');
    const del = await inbox.next((m) => m.event === 'DELETE');
    assert.equal(del.payload.record, null);
    assert.equal(del.payload.old_record.body, 'second');
    assert.deepEqual(
      inbox.items.map((m) => m.event),
      ['INSERT', 'UPDATE', 'DELETE'],
      'in commit order, once each',
    );
    assert.deepEqual(await inboxB.settle(), [], "B hears nothing of A's notes");
  });

  test('realtime.send to a private room: each message is checked against the policies', async () => {
    const [a, b, outsider] = [await createUser(cb), await createUser(cb), await createUser(cb)];
    const room = `room-${a.id.slice(0, 8)}`;
    await pgQuery(cb.dbUrl, `insert into public.room_members values ($1, $2), ($1, $3)`, [room, a.id, b.id]);
    const { inbox: ia } = await listen(await client(userToken(cb, a.id)), room);
    const { inbox: ib } = await listen(await client(userToken(cb, b.id)), room);
    const co = await client(userToken(cb, outsider.id));
    const refused = co.channel(room, { config: { private: true } });
    await assert.rejects(subscribed(refused), /Unauthorized/);
    await co.removeChannel(refused);
    // A public channel of the same name hears none of the private messages.
    const { inbox: ipub } = await listen(co, room, { isPrivate: false });

    await pgQuery(cb.dbUrl, `select realtime.send($1::jsonb, 'all', $2)`, [JSON.stringify({ n: 1 }), room]);
    await pgQuery(cb.dbUrl, `select realtime.send($1::jsonb, 'direct', $2, true)`, [
      JSON.stringify({ n: 2, to: b.id }),
      room,
    ]);
    await pgQuery(cb.dbUrl, `select realtime.send($1::jsonb, 'last', $2)`, [JSON.stringify({ n: 3 }), room]);

    await ia.next((m) => m.payload.n === 3);
    await ib.next((m) => m.payload.n === 3);
    assert.deepEqual(
      ia.items.map((m) => m.payload.n),
      [1, 3],
      'the message for B is withheld from A by the policy reading its payload',
    );
    assert.deepEqual(
      ib.items.map((m) => m.payload.n),
      [1, 2, 3],
    );

    // Removing B from the room stops the next message at once: the policy is asked per message.
    await pgQuery(cb.dbUrl, `delete from public.room_members where room = $1 and user_id = $2`, [room, b.id]);
    await pgQuery(cb.dbUrl, `select realtime.send($1::jsonb, 'after', $2)`, [JSON.stringify({ n: 4 }), room]);
    await ia.next((m) => m.payload.n === 4);
    assert.deepEqual(await ib.settle((m) => m.payload.n === 4, 1000), []);

    // A public message reaches the public channel only.
    await pgQuery(cb.dbUrl, `select realtime.send($1::jsonb, 'public', $2, false)`, [JSON.stringify({ n: 5 }), room]);
    const pub = await ipub.next((m) => m.payload.n === 5);
    assert.equal(pub.event, 'public');
    assert.deepEqual(
      ipub.items.map((m) => m.payload.n),
      [5],
    );
    assert.deepEqual(await ia.settle((m) => m.payload.n === 5, 500), []);
  });

  test('send_binary arrives as bytes on vsn 2.0.0, live and replayed', async () => {
    const a = await createUser(cb);
    const ca = await client(userToken(cb, a.id), { realtime: { vsn: '2.0.0' } });
    const topic = `notes:${a.id}`;
    const { inbox } = await listen(ca, topic);
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await pgQuery(cb.dbUrl, `select realtime.send_binary($1, 'blob', $2)`, [bytes, topic]);
    const live = await inbox.next((m) => m.event === 'blob');
    assert.ok(live.payload instanceof ArrayBuffer, `an ArrayBuffer, not ${typeof live.payload}`);
    assert.deepEqual(Buffer.from(live.payload), bytes);

    const c2 = await client(userToken(cb, a.id), { realtime: { vsn: '2.0.0' } });
    const { inbox: replayed } = await listen(c2, topic, {
      config: { broadcast: { replay: { since: Date.now() - 60_000 } } },
    });
    const again = await replayed.next((m) => m.event === 'blob');
    assert.equal(again.meta.replayed, true);
    assert.equal(again.meta.id, live.meta.id);
    assert.deepEqual(Buffer.from(again.payload), bytes);
    assert.deepEqual(
      (await replayed.settle((m) => m.event === 'blob', 1000)).length,
      1,
      'a replayed message is not delivered again live',
    );
  });

  test('broadcast.replication_ready: the system push once delivery is live', async () => {
    const a = await createUser(cb);
    const ca = await client(userToken(cb, a.id));
    const system = new Inbox();
    const ch = ca
      .channel(`notes:${a.id}`, { config: { private: true, broadcast: { replication_ready: true } } })
      .on('system', {}, system.push);
    await subscribed(ch);
    const ready = await system.next((m) => m.extension === 'system');
    assert.equal(ready.status, 'ok');
    assert.equal(ready.message, 'Replication connection established');
    assert.equal(ready.channel, `notes:${a.id}`);
    // Without the option, no such push.
    const plain = new Inbox();
    const c2 = await client(userToken(cb, a.id));
    const ch2 = c2.channel(`notes:${a.id}`, { config: { private: true } }).on('system', {}, plain.push);
    await subscribed(ch2);
    assert.deepEqual(await plain.settle((m) => m.extension === 'system', 1000), []);
  });
});
