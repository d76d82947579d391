// Realtime (/realtime/v1) driven by supabase-js: Tool Connect Craft's three channels under RLS for
// two users and anon, the comparison filter operators (like, ilike, AND and refusals: realtime-filters.test.mjs), both serializers, broadcast, presence, private
// channels, token renewal and expiry, and a lost replication connection. One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { WebSocket } from 'ws';

import { anonClient, mintJwt, nowSeconds, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, clientAs, createUser, subscribed, userToken } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.rt_items (id int primary key, n int, label text, flag boolean, tags text[]);
       grant select on public.rt_items to anon, authenticated;
       alter table public.rt_items replica identity full;
       alter publication supabase_realtime add table public.rt_items`,
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

async function connectorId() {
  const [row] = await pgQuery(cb.dbUrl, 'select id from public.connectors order by slug limit 1');
  return row.id;
}

const pgChanges = (m) => m && typeof m === 'object' && 'eventType' in m;

describe("Tool Connect Craft's channels", () => {
  test('each user receives her own jobs, connections and events; never the other user; anon nothing', async () => {
    const [a, b] = [await createUser(cb), await createUser(cb)];
    const connector = await connectorId();
    const inbox = { a: { jobs: new Inbox(), conns: new Inbox(), events: new Inbox() }, b: { jobs: new Inbox(), conns: new Inbox(), events: new Inbox() } };
    for (const [who, user] of [['a', a], ['b', b]]) {
      const c = await client(userToken(cb, user.id));
      await subscribed(
        c.channel('jobs-changes').on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_jobs', filter: `user_id=eq.${user.id}` }, inbox[who].jobs.push),
      );
      await subscribed(
        c.channel('connections-changes').on('postgres_changes', { event: '*', schema: 'public', table: 'user_connections', filter: `user_id=eq.${user.id}` }, inbox[who].conns.push),
      );
      await subscribed(
        c.channel('events-changes').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'pipeline_events' }, inbox[who].events.push),
      );
    }
    // Anon subscribes to the same tables without a filter: RLS has no policy for anon.
    const anon = await client(null);
    const anonInbox = new Inbox();
    await subscribed(
      anon
        .channel('anon-everything')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_jobs' }, anonInbox.push)
        .on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_events' }, anonInbox.push)
        .on('postgres_changes', { event: '*', schema: 'public', table: 'user_connections' }, anonInbox.push),
    );

    // A runs a tool: job, three events, two job updates.
    const [job] = await pgQuery(
      cb.dbUrl,
      `insert into pipeline_jobs (user_id, connector_id, type, status, input) values ($1, $2, 'tool_execution', 'queued', '{"q":"hi"}') returning id`,
      [a.id, connector],
    );
    for (const message of ['Starting', 'Processing request...', 'completed']) {
      await pgQuery(cb.dbUrl, `insert into pipeline_events (job_id, message) values ($1, $2)`, [job.id, message]);
    }
    await pgQuery(cb.dbUrl, `update pipeline_jobs set status = 'running', started_at = now() where id = $1`, [job.id]);
    await pgQuery(cb.dbUrl, `update pipeline_jobs set status = 'succeeded', output = '{"ok":true}', finished_at = now() where id = $1`, [job.id]);

    const insert = await inbox.a.jobs.next((m) => m.eventType === 'INSERT');
    assert.equal(insert.schema, 'public');
    assert.equal(insert.table, 'pipeline_jobs');
    assert.equal(insert.new.id, job.id);
    assert.deepEqual(insert.new.input, { q: 'hi' });
    assert.equal(insert.errors, null);
    assert.match(insert.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const done = await inbox.a.jobs.next((m) => m.eventType === 'UPDATE' && m.new.status === 'succeeded');
    assert.equal(done.old.status, 'running', 'REPLICA IDENTITY FULL: the whole old row');
    assert.deepEqual(done.new.output, { ok: true });
    const events = await inbox.a.events.next(() => inbox.a.events.items.length >= 3);
    assert.ok(events);
    assert.deepEqual(
      inbox.a.events.items.map((e) => e.new.message),
      ['Starting', 'Processing request...', 'completed'],
      'events arrive in commit order',
    );

    // A connects, disconnects and deletes a connection.
    const [conn] = await pgQuery(
      cb.dbUrl,
      `insert into user_connections (user_id, connector_id, status, scopes) values ($1, $2, 'active', '{read,write}') returning id`,
      [a.id, connector],
    );
    await pgQuery(cb.dbUrl, `update user_connections set status = 'revoked' where id = $1`, [conn.id]);
    await pgQuery(cb.dbUrl, `delete from user_connections where id = $1`, [conn.id]);
    const cIns = await inbox.a.conns.next((m) => m.eventType === 'INSERT');
    assert.deepEqual(cIns.new.scopes, ['read', 'write']);
    const cUpd = await inbox.a.conns.next((m) => m.eventType === 'UPDATE');
    assert.equal(cUpd.old.status, 'active');
    assert.equal(cUpd.new.status, 'revoked');
    const cDel = await inbox.a.conns.next((m) => m.eventType === 'DELETE');
    assert.deepEqual(cDel.old, { id: conn.id }, 'a DELETE on an RLS table carries the primary key only');

    // The job is deleted too (as the server would).
    await pgQuery(cb.dbUrl, `delete from pipeline_jobs where id = $1`, [job.id]);
    const jDel = await inbox.a.jobs.next((m) => m.eventType === 'DELETE');
    assert.equal(jDel.old.id, job.id);

    // B and anon received nothing of A's.
    assert.deepEqual(await inbox.b.jobs.settle(pgChanges, 1000), []);
    assert.deepEqual(inbox.b.conns.items, []);
    assert.deepEqual(inbox.b.events.items, [], "the unfiltered events channel never shows A's events to B");
    assert.deepEqual(anonInbox.items, []);
  });
});

describe('filters', () => {
  test('eq, neq, lt, lte, gt, gte and in select the rows they name', async () => {
    const anon = await client(null, { realtime: { vsn: '1.0.0' } });
    const cases = {
      'n=eq.3': [3],
      'n=neq.3': [1, 2, 4, 5],
      'n=lt.3': [1, 2],
      'n=lte.3': [1, 2, 3],
      'n=gt.3': [4, 5],
      'n=gte.3': [3, 4, 5],
      'label=in.(one,"four")': [1, 4],
      'n=in.(2,5)': [2, 5],
    };
    const inboxes = {};
    let ch = anon.channel('filters');
    for (const filter of Object.keys(cases)) {
      inboxes[filter] = new Inbox();
      ch = ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items', filter }, inboxes[filter].push);
    }
    await subscribed(ch);
    const labels = ['one', 'two', 'three', 'four', 'five'];
    await pgQuery(
      cb.dbUrl,
      `insert into rt_items (id, n, label) select 100 + g, g, ($1::text[])[g] from generate_series(1, 5) g`,
      [labels],
    );
    const all = new Inbox();
    // Wait until every case has at least its expected count, then check exact sets.
    for (const [filter, expected] of Object.entries(cases)) {
      await inboxes[filter].next(() => inboxes[filter].items.length >= expected.length);
    }
    await sleep(500);
    for (const [filter, expected] of Object.entries(cases)) {
      assert.deepEqual(
        inboxes[filter].items.map((m) => m.new.n).sort(),
        expected,
        `filter ${filter}`,
      );
    }
    assert.deepEqual(all.items, []);
  });

  test('an UPDATE is filtered on the new row, a DELETE on the old row', async () => {
    const anon = await client(null);
    const inbox = new Inbox();
    await subscribed(anon.channel('filter-upd').on('postgres_changes', { event: '*', schema: 'public', table: 'rt_items', filter: 'label=eq.keep' }, inbox.push));
    await pgQuery(cb.dbUrl, `insert into rt_items (id, n, label) values (200, 1, 'keep'), (201, 1, 'drop')`);
    await pgQuery(cb.dbUrl, `update rt_items set n = 2 where id in (200, 201)`);
    await pgQuery(cb.dbUrl, `delete from rt_items where id in (200, 201)`);
    const del = await inbox.next((m) => m.eventType === 'DELETE');
    assert.equal(del.old.id, 200);
    assert.equal(del.old.label, 'keep', 'no RLS on this table: the whole old row');
    assert.deepEqual(
      inbox.items.map((m) => [m.eventType, (m.new.id ?? m.old.id)]),
      [['INSERT', 200], ['UPDATE', 200], ['DELETE', 200]],
    );
  });

  test('a filter on an unknown column is refused with a system error', async () => {
    const anon = await client(null);
    const system = new Inbox();
    const ch = anon
      .channel('bad-filter')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_items', filter: 'nope=eq.1' }, () => {})
      .on('system', {}, system.push);
    await subscribed(ch);
    const msg = await system.next((m) => m.status === 'error');
    assert.match(msg.message, /invalid column for filter nope/);
  });
});

describe('serializers', () => {
  for (const vsn of ['1.0.0', '2.0.0']) {
    test(`vsn ${vsn}: postgres_changes and broadcast`, async () => {
      const c = await client(null, { realtime: { vsn } });
      const inbox = new Inbox();
      const ch = c
        .channel(`vsn-${vsn}`, { config: { broadcast: { self: true, ack: true } } })
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items', filter: `label=eq.vsn-${vsn}` }, inbox.push)
        .on('broadcast', { event: 'hello' }, inbox.push);
      await subscribed(ch);
      await pgQuery(cb.dbUrl, `insert into rt_items (id, n, label, flag, tags) values ($1, 7, $2, true, '{a,b}')`, [vsn === '1.0.0' ? 300 : 301, `vsn-${vsn}`]);
      const change = await inbox.next((m) => m.eventType === 'INSERT');
      assert.equal(change.new.flag, true);
      assert.deepEqual(change.new.tags, ['a', 'b']);
      assert.equal(await ch.send({ type: 'broadcast', event: 'hello', payload: { vsn } }), 'ok');
      const echo = await inbox.next((m) => m.event === 'hello');
      assert.deepEqual(echo.payload, { vsn });
    });
  }
});

describe('broadcast and presence', () => {
  test('self off by default; another client receives; ack resolves ok', async () => {
    const [c1, c2] = [await client(null), await client(null)];
    const [in1, in2] = [new Inbox(), new Inbox()];
    const ch1 = c1.channel('room1', { config: { broadcast: { ack: true } } }).on('broadcast', { event: '*' }, in1.push);
    const ch2 = c2.channel('room1').on('broadcast', { event: 'move' }, in2.push);
    await subscribed(ch1);
    await subscribed(ch2);
    assert.equal(await ch1.send({ type: 'broadcast', event: 'move', payload: { x: 1 } }), 'ok');
    const got = await in2.next();
    assert.deepEqual(got.payload, { x: 1 });
    assert.equal(got.event, 'move');
    assert.deepEqual(await in1.settle(() => true, 500), [], 'self is false by default');
  });

  test('REST broadcast reaches subscribers (batch and single endpoints)', async () => {
    const c = await client(null);
    const inbox = new Inbox();
    await subscribed(c.channel('rest-room').on('broadcast', { event: '*' }, inbox.push));
    const res = await fetch(`${cb.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: cb.serviceRoleKey, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic: 'rest-room', event: 'batch', payload: { n: 1 } }] }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual((await inbox.next((m) => m.event === 'batch')).payload, { n: 1 });
    const svc = serviceClient(cb);
    const unjoined = svc.channel('rest-room');
    const r = await unjoined.httpSend('single', { n: 2 });
    assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual((await inbox.next((m) => m.event === 'single')).payload, { n: 2 });
  });

  test('vsn 2: user broadcasts arrive as kind-4 binary frames; an ArrayBuffer payload stays one', async () => {
    const [c1, c2, c3] = [await client(null), await client(null), await client(null, { realtime: { vsn: '1.0.0' } })];
    const [in2, in3] = [new Inbox(), new Inbox()];
    const ch1 = c1.channel('bin-room', { config: { broadcast: { ack: true } } });
    await subscribed(ch1);
    await subscribed(c2.channel('bin-room').on('broadcast', { event: '*' }, in2.push));
    await subscribed(c3.channel('bin-room').on('broadcast', { event: '*' }, in3.push));
    // A bare vsn-2 socket on the same topic sees the frames themselves.
    const frames = new Inbox();
    const ws = new WebSocket(`${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${cb.anonKey}&vsn=2.0.0`);
    ws.on('message', (data, isBinary) => frames.push({ data, isBinary }));
    await new Promise((resolve, reject) => ws.on('open', resolve).on('error', reject));
    ws.send(JSON.stringify(['1', '1', 'realtime:bin-room', 'phx_join', { config: {} }]));
    await frames.next((f) => !f.isBinary && String(f.data).includes('phx_reply'));

    assert.equal(await ch1.send({ type: 'broadcast', event: 'json', payload: { x: 1 } }), 'ok');
    assert.deepEqual((await in2.next((m) => m.event === 'json')).payload, { x: 1 });
    assert.deepEqual((await in3.next((m) => m.event === 'json')).payload, { x: 1 });
    const frame = await frames.next((f) => f.isBinary);
    const topic = 'realtime:bin-room';
    assert.deepEqual([...frame.data.subarray(0, 5)], [4, topic.length, 4, 0, 1], 'kind 4, JSON encoding');
    assert.equal(frame.data.subarray(5).toString(), `${topic}json{"x":1}`);

    const bytes = new Uint8Array([0, 1, 254, 255]);
    assert.equal(await ch1.send({ type: 'broadcast', event: 'raw', payload: bytes.buffer }), 'ok');
    const got = await in2.next((m) => m.event === 'raw');
    assert.ok(got.payload instanceof ArrayBuffer, 'a vsn-2 client gets the bytes as an ArrayBuffer');
    assert.deepEqual([...new Uint8Array(got.payload)], [0, 1, 254, 255]);
    // A vsn-1 client cannot take bytes: as in Supabase, it does not get them (never an array of numbers).
    assert.equal(await ch1.send({ type: 'broadcast', event: 'after-raw', payload: {} }), 'ok');
    await in3.next((m) => m.event === 'after-raw');
    assert.deepEqual(in3.items.filter((m) => m.event === 'raw'), [], 'vsn 1: raw bytes are not delivered');
    const rawFrame = await frames.next((f) => f.isBinary && f.data[4] === 0);
    assert.deepEqual([...rawFrame.data.subarray(-4)], [0, 1, 254, 255]);

    // httpSend of an ArrayBuffer (octet-stream) is relayed as raw bytes too.
    const r = await serviceClient(cb).channel('bin-room').httpSend('rest-raw', new Uint8Array([7, 8]).buffer);
    assert.equal(r.success, true, JSON.stringify(r));
    const rest = await in2.next((m) => m.event === 'rest-raw');
    assert.deepEqual([...new Uint8Array(rest.payload)], [7, 8]);
    ws.close();
  });

  test('presence: sync, join and leave between two clients', async () => {
    const [c1, c2] = [await client(null), await client(null)];
    const joins = new Inbox();
    const leaves = new Inbox();
    const ch1 = c1
      .channel('lobby', { config: { presence: { key: 'alice' } } })
      .on('presence', { event: 'join' }, joins.push)
      .on('presence', { event: 'leave' }, leaves.push);
    await subscribed(ch1);
    assert.equal(await ch1.track({ status: 'online' }), 'ok');
    const ch2 = c2.channel('lobby', { config: { presence: { key: 'bob' } } }).on('presence', { event: 'sync' }, () => {});
    await subscribed(ch2);
    assert.equal(await ch2.track({ status: 'away' }), 'ok');
    await joins.next((j) => j.key === 'bob');
    const state = ch1.presenceState();
    assert.equal(state.alice[0].status, 'online');
    assert.equal(state.bob[0].status, 'away');
    assert.ok(state.bob[0].presence_ref);
    // bob sees alice (presence_state on join).
    await sleep(200);
    assert.equal(ch2.presenceState().alice?.[0]?.status, 'online');
    await c2.removeChannel(ch2);
    const left = await leaves.next((l) => l.key === 'bob');
    assert.equal(left.leftPresences[0].status, 'away');
  });

  test('a private channel is refused to a user its policy excludes, and allowed to one it includes', async () => {
    await pgQuery(
      cb.dbUrl,
      `create policy members_read on realtime.messages for select to authenticated
         using (realtime.topic() = 'team-' || (auth.jwt() ->> 'team'));
       create policy members_write on realtime.messages for insert to authenticated
         with check (realtime.topic() = 'team-' || (auth.jwt() ->> 'team'))`,
    );
    const [a, b] = [await createUser(cb), await createUser(cb)];
    const ca = await client(userToken(cb, a.id, 3600, { team: 'red' }));
    const cbUser = await client(userToken(cb, b.id, 3600, { team: 'blue' }));
    const inbox = new Inbox();
    const cha = ca.channel('team-red', { config: { private: true, broadcast: { self: true, ack: true } } }).on('broadcast', { event: '*' }, inbox.push);
    await subscribed(cha);
    assert.equal(await cha.send({ type: 'broadcast', event: 'plan', payload: { go: true } }), 'ok');
    assert.deepEqual((await inbox.next()).payload, { go: true });
    const chb = cbUser.channel('team-red', { config: { private: true } });
    await assert.rejects(subscribed(chb), /Unauthorized: You do not have permissions to read from this Channel topic: team-red/);
    await cbUser.removeChannel(chb);
    // A public channel of the same name does not receive private traffic.
    const pub = await client(null);
    const pubInbox = new Inbox();
    await subscribed(pub.channel('team-red').on('broadcast', { event: '*' }, pubInbox.push));
    await cha.send({ type: 'broadcast', event: 'plan', payload: { second: true } });
    await inbox.next((m) => m.payload.second);
    assert.deepEqual(await pubInbox.settle(() => true, 500), []);
  });
});

describe('tokens', () => {
  test('an expired token is refused at join with the InvalidJWTToken reason', async () => {
    const u = await createUser(cb);
    const c = await client(userToken(cb, u.id, -10));
    await assert.rejects(subscribed(c.channel('expired')), /InvalidJWTToken: Token has expired \d+ seconds ago/);
  });

  test('a channel is closed when its token expires, and access_token renewal keeps it alive', async () => {
    const u = await createUser(cb);
    const connector = await connectorId();
    // Short-lived token, then renewed before it expires.
    const renewed = await client(userToken(cb, u.id, 3));
    const inbox = new Inbox();
    const ch = renewed.channel('renewed').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'pipeline_jobs', filter: `user_id=eq.${u.id}` }, inbox.push);
    await subscribed(ch);
    await renewed.realtime.setAuth(userToken(cb, u.id, 3600));
    // Another that is not renewed.
    const lapsing = await client(userToken(cb, u.id, 3));
    const system = new Inbox();
    const closed = new Inbox();
    const ch2 = lapsing.channel('lapsing').on('system', {}, system.push);
    ch2.subscribe((status) => status === 'CLOSED' && closed.push(status));
    await sleep(4500);
    const sys = await system.next((m) => m.status === 'error');
    assert.equal(sys.extension, 'system');
    assert.match(sys.message, /Token has expired/);
    await closed.next();
    await pgQuery(cb.dbUrl, `insert into pipeline_jobs (user_id, connector_id, type) values ($1, $2, 'renewed')`, [u.id, connector]);
    const got = await inbox.next();
    assert.equal(got.new.type, 'renewed', 'the renewed channel still receives changes after the first token expired');
  });

  test('the websocket upgrade needs a valid apikey', async () => {
    const status = (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => {});
      });
    const base = `${cb.url.replace('http', 'ws')}/realtime/v1/websocket`;
    assert.equal(await status(`${base}?vsn=2.0.0`), 401);
    assert.equal(await status(`${base}?apikey=nope&vsn=2.0.0`), 401);
    assert.equal(await status(`${base}?apikey=${cb.anonKey}&vsn=2.0.0`), 101);
  });
});

describe('robustness', () => {
  test('after the replication connection is lost, later changes arrive exactly once', async () => {
    const anon = await client(null);
    const inbox = new Inbox();
    await subscribed(anon.channel('reconnect').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_items', filter: 'label=eq.reconnect' }, inbox.push));
    await pgQuery(cb.dbUrl, `insert into rt_items (id, n, label) values (400, 1, 'reconnect')`);
    await inbox.next((m) => m.new.id === 400);
    const killed = await pgQuery(cb.dbUrl, `select pg_terminate_backend(pid) as ok from pg_stat_replication where application_name <> 'walreceiver'`);
    assert.ok(killed.length >= 1, 'a walsender was running');
    await pgQuery(cb.dbUrl, `insert into rt_items (id, n, label) values (401, 2, 'reconnect')`);
    await inbox.next((m) => m.new.id === 401, 30_000);
    await pgQuery(cb.dbUrl, `insert into rt_items (id, n, label) values (402, 3, 'reconnect')`);
    await inbox.next((m) => m.new.id === 402, 30_000);
    await sleep(1000);
    assert.deepEqual(inbox.items.map((m) => m.new.id), [400, 401, 402]);
  });
});
