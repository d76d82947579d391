// Realtime payloads as Supabase writes them: the 400 form of a change on a table without a
// primary key, and numeric values with PostgreSQL's digits (`1.50`), checked both as
// supabase-js hands them to the callback and as the raw frame's text.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSocket } from 'ws';

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
      `create table public.rt_log (owner uuid, line text);
       alter table public.rt_log replica identity full;
       alter table public.rt_log enable row level security;
       create policy own on public.rt_log for select using (owner = auth.uid());
       grant select on public.rt_log to authenticated;
       alter publication supabase_realtime add table public.rt_log;
       create table public.rt_prices (id int primary key, amount numeric, ratio float8);
       grant select on public.rt_prices to authenticated;
       alter publication supabase_realtime add table public.rt_prices`,
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

/** Opens a vsn 1.0.0 socket as `token`, joins `config` on `topic`, and collects its frames' text. */
async function rawSocket(token, topic, config) {
  const ws = new WebSocket(`${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${cb.anonKey}&vsn=1.0.0`);
  const frames = new Inbox();
  ws.on('message', (data) => frames.push(data.toString()));
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.send(JSON.stringify({ topic, event: 'phx_join', payload: { config, access_token: token }, ref: '1', join_ref: '1' }));
  await frames.next((t) => JSON.parse(t).event === 'system');
  return { ws, frames };
}

describe('a table without a primary key', () => {
  test('INSERT and UPDATE arrive in the 400 form, only to whom the policy shows the row; DELETE as usual', async () => {
    const [a, b] = [await createUser(cb), await createUser(cb)];
    const inbox = { a: new Inbox(), b: new Inbox() };
    for (const [who, user] of [['a', a], ['b', b]]) {
      const c = await clientAs(cb, userToken(cb, user.id));
      clients.push(c);
      await subscribed(c.channel(`log-${who}`).on('postgres_changes', { event: '*', schema: 'public', table: 'rt_log' }, inbox[who].push));
    }
    const raw = await rawSocket(userToken(cb, a.id), 'realtime:log-raw', {
      postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'rt_log' }],
    });
    await pgQuery(cb.dbUrl, `insert into public.rt_log values ($1, 'first')`, [a.id]);
    await pgQuery(cb.dbUrl, `update public.rt_log set line = 'second' where owner = $1`, [a.id]);
    await pgQuery(cb.dbUrl, `delete from public.rt_log where owner = $1`, [a.id]);

    const insert = await inbox.a.next((m) => m.eventType === 'INSERT');
    assert.deepEqual(insert.errors, ['Error 400: Bad Request, no primary key']);
    assert.deepEqual(insert.new, {});
    assert.equal(insert.table, 'rt_log');
    const update = await inbox.a.next((m) => m.eventType === 'UPDATE');
    assert.deepEqual(update.errors, ['Error 400: Bad Request, no primary key']);
    assert.deepEqual([update.new, update.old], [{}, {}]);
    // As Supabase: a DELETE is not an error; on an RLS table its old record holds only the
    // primary key, which here has no columns.
    const del = await inbox.a.next((m) => m.eventType === 'DELETE');
    assert.equal(del.errors, null);
    assert.deepEqual(del.old, {});

    const frame = JSON.parse(await raw.frames.next((t) => JSON.parse(t).event === 'postgres_changes'));
    assert.deepEqual(frame.payload.data, {
      schema: 'public',
      table: 'rt_log',
      commit_timestamp: null,
      type: 'INSERT',
      columns: [],
      record: {},
      errors: ['Error 400: Bad Request, no primary key'],
    });
    raw.ws.close();

    assert.deepEqual(await inbox.b.settle(), [], "B's policy hides A's rows, errors included");
  });
});

describe('numeric values', () => {
  test('keep the digits PostgreSQL prints in the frame text; supabase-js reads them as numbers', async () => {
    const u = await createUser(cb);
    const c = await clientAs(cb, userToken(cb, u.id));
    clients.push(c);
    const inbox = new Inbox();
    await subscribed(c.channel('prices').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_prices' }, inbox.push));
    const raw = await rawSocket(userToken(cb, u.id), 'realtime:prices-raw', {
      postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'rt_prices' }],
    });
    const long = '12345678901234567890.123456789012345678900';
    await pgQuery(cb.dbUrl, `insert into public.rt_prices values (1, 1.50, 0.5), (2, ${long}, null)`);

    const text = (id) => raw.frames.next((t) => JSON.parse(t).payload?.data?.record?.id === id);
    const first = await text(1);
    assert.match(first, /"amount":1\.50[,}]/);
    assert.match(first, /"ratio":0\.5[,}]/);
    assert.ok((await text(2)).includes(`"amount":${long}`));
    raw.ws.close();

    const got = await inbox.next((m) => m.new.id === 1);
    assert.equal(got.new.amount, 1.5);
    assert.equal(got.new.ratio, 0.5);
  });
});
