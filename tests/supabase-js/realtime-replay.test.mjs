// Broadcast replay driven by supabase-js: a private channel joined with
// `broadcast.replay: {since, limit}` first receives the stored broadcasts its user may read
// (oldest first, `meta: {replayed: true, id}`), then live ones; public channels and bad params
// are refused with Supabase's reasons. Messages are stored as `realtime.send()` stores them.

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
    // Team rooms; a message whose payload names a recipient (`to`) is only for that user.
    await pgQuery(
      cb.dbUrl,
      `create policy team_read on realtime.messages for select to authenticated
         using (realtime.topic() = 'room-' || (auth.jwt() ->> 'team')
                and coalesce(payload ->> 'to', auth.uid()::text) = auth.uid()::text);
       create policy team_write on realtime.messages for insert to authenticated
         with check (realtime.topic() = 'room-' || (auth.jwt() ->> 'team'))`,
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

/** Stores a broadcast `ageSeconds` old. */
async function store(topic, event, payload, { isPrivate = true, ageSeconds = 0 } = {}) {
  await pgQuery(
    cb.dbUrl,
    `insert into realtime.messages (topic, extension, event, payload, private, inserted_at)
     values ($1, 'broadcast', $2, $3, $4, now() - make_interval(secs => $5))`,
    [topic, event, JSON.stringify(payload), isPrivate, ageSeconds],
  );
}

describe('broadcast replay', () => {
  for (const vsn of ['2.0.0', '1.0.0']) {
    test(`vsn ${vsn}: a user gets the earlier messages it may read, oldest first, then live ones`, async () => {
      const room = `room-${vsn.replace(/\./g, '')}`;
      const [a, b] = [await createUser(cb), await createUser(cb)];
      await store(room, 'note', { n: 0 }, { ageSeconds: 7200 });
      await store(room, 'note', { n: 1 }, { ageSeconds: 40 });
      await store(room, 'note', { n: 2, to: a.id }, { ageSeconds: 30 });
      await store(room, 'note', { n: 3, to: b.id }, { ageSeconds: 20 });
      await store(room, 'note', { n: 4 }, { isPrivate: false, ageSeconds: 15 });
      await store('room-other', 'note', { n: 5 }, { ageSeconds: 12 });
      await store(room, 'note', { n: 6 }, { ageSeconds: 10 });

      const team = room.slice('room-'.length);
      const ca = await client(userToken(cb, a.id, 3600, { team }), { realtime: { vsn } });
      const inbox = new Inbox();
      const since = Date.now() - 3600_000;
      const ch = ca
        .channel(room, { config: { private: true, broadcast: { self: true, ack: true, replay: { since, limit: 10 } } } })
        .on('broadcast', { event: '*' }, inbox.push);
      await subscribed(ch);
      await inbox.next((m) => m.payload.n === 6);
      assert.deepEqual(
        inbox.items.map((m) => m.payload.n),
        [1, 2, 6],
      );
      for (const m of inbox.items) {
        assert.equal(m.event, 'note');
        assert.equal(m.meta.replayed, true);
        assert.match(m.meta.id, /^[0-9a-f-]{36}$/);
      }

      assert.equal(await ch.send({ type: 'broadcast', event: 'live', payload: { n: 7 } }), 'ok');
      const live = await inbox.next((m) => m.event === 'live');
      assert.deepEqual(live.payload, { n: 7 });
      assert.equal(live.meta, undefined);

      // The limit keeps the newest; B sees none of A's direct message.
      const cb2 = await client(userToken(cb, b.id, 3600, { team }), { realtime: { vsn } });
      const inboxB = new Inbox();
      const chB = cb2
        .channel(room, { config: { private: true, broadcast: { replay: { since, limit: 2 } } } })
        .on('broadcast', { event: '*' }, inboxB.push);
      await subscribed(chB);
      await inboxB.next((m) => m.payload.n === 6);
      assert.deepEqual(
        inboxB.items.map((m) => m.payload.n),
        [3, 6],
      );
    });
  }

  test('bytes stored by realtime.send_binary replay as bytes (vsn 2.0.0) and are skipped for vsn 1.0.0', async () => {
    const room = 'room-bin';
    const u = await createUser(cb);
    const bytes = [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff];
    await pgQuery(cb.dbUrl, `select realtime.send_binary($1::bytea, 'blob', $2, true)`, [Buffer.from(bytes), room]);
    await store(room, 'note', { n: 1 });
    const since = Date.now() - 60_000;
    const token = userToken(cb, u.id, 3600, { team: 'bin' });

    const c2 = await client(token);
    const inbox = new Inbox();
    const ch = c2
      .channel(room, { config: { private: true, broadcast: { replay: { since, limit: 10 } } } })
      .on('broadcast', { event: '*' }, inbox.push);
    await subscribed(ch);
    const blob = await inbox.next((m) => m.event === 'blob');
    assert.ok(blob.payload instanceof ArrayBuffer, `bytes arrive as an ArrayBuffer, got ${JSON.stringify(blob.payload)}`);
    assert.deepEqual([...new Uint8Array(blob.payload)], bytes);
    assert.equal(blob.meta.replayed, true);
    assert.match(blob.meta.id, /^[0-9a-f-]{36}$/);
    await inbox.next((m) => m.event === 'note');
    assert.deepEqual(inbox.items.map((m) => m.event), ['blob', 'note']);

    // A vsn-1.0.0 socket cannot carry bytes: it gets the JSON message only.
    const c1 = await client(token, { realtime: { vsn: '1.0.0' } });
    const inbox1 = new Inbox();
    const ch1 = c1
      .channel(room, { config: { private: true, broadcast: { replay: { since, limit: 10 } } } })
      .on('broadcast', { event: '*' }, inbox1.push);
    await subscribed(ch1);
    await inbox1.next((m) => m.event === 'note');
    assert.deepEqual((await inbox1.settle(() => true, 500)).map((m) => m.event), ['note']);
  });

  test('bad replay params and unreadable topics are refused at join', async () => {
    const u = await createUser(cb);
    const c = await client(userToken(cb, u.id, 3600, { team: 'red' }));
    const bad = c.channel('room-red', { config: { private: true, broadcast: { replay: { since: 'yesterday' } } } });
    await assert.rejects(subscribed(bad), /UnableToReplayMessages: Replay params are not valid/);
    await c.removeChannel(bad);
    const other = c.channel('room-blue', { config: { private: true, broadcast: { replay: { since: 0 } } } });
    await assert.rejects(subscribed(other), /Unauthorized: You do not have permissions to read from this Channel topic: room-blue/);
    await c.removeChannel(other);
    // realtime-js itself refuses replay on a public channel before joining.
    assert.throws(
      () => c.channel('room-red', { config: { broadcast: { replay: { since: 0 } } } }).subscribe(),
      /must be a private channel/,
    );
  });
});
