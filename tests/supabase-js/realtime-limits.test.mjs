// Realtime's per-socket limits and websocket hygiene (issue 9, items 8 and 14), with only the anon
// key: oversized frames close with 1009, a client's Close is answered, invalid topics are refused
// with a reason, channels / joins / events / presence calls / bindings are bounded with Supabase
// Realtime's reasons, and a client that stops reading is dropped while others are served.
// Raw `ws` sockets speak the Phoenix protocol directly where supabase-js would not misbehave.
// One craftbase for the file, with small limits set through Supabase's variable names.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { WebSocket } from 'ws';

import { startCraftbase } from './lib/craftbase.mjs';
import { Inbox, clientAs, subscribed } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];
const sockets = [];

before(
  async () => {
    cb = await startCraftbase({
      env: {
        TENANT_MAX_CHANNELS_PER_CLIENT: '3',
        TENANT_MAX_JOINS_PER_SECOND: '10',
        TENANT_MAX_EVENTS_PER_SECOND: '20',
        CLIENT_PRESENCE_MAX_CALLS: '2',
        REALTIME_MAX_BINDINGS_PER_CHANNEL: '5',
        REALTIME_SEND_TIMEOUT_MS: '2000',
      },
    });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    for (const ws of sockets) ws.terminate();
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

/** A raw vsn-1 socket with an inbox of decoded frames and a promise of its close event. */
async function rawSocket(vsn = '1.0.0') {
  const ws = new WebSocket(`${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${cb.anonKey}&vsn=${vsn}`);
  sockets.push(ws);
  const inbox = new Inbox();
  ws.on('message', (data, isBinary) => inbox.push(isBinary ? { binary: data } : JSON.parse(String(data))));
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { ws, inbox };
}

function send(ws, topic, event, payload, ref, joinRef = ref) {
  ws.send(JSON.stringify({ topic, event, payload, ref, join_ref: joinRef }));
}

const reply = (ref) => (m) => m.event === 'phx_reply' && m.ref === ref;

/** Waits for the socket to close, failing after ms. */
function closedWithin(ws, ms) {
  return Promise.race([
    ws.closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms)),
  ]);
}

describe('websocket frames', () => {
  test('a message over the size limit is refused with close code 1009', async () => {
    const { ws } = await rawSocket();
    // Default limit: 256 kB of payload (Supabase's Free plan) and its envelope.
    send(ws, 'realtime:big', 'broadcast', { type: 'broadcast', event: 'e', payload: { x: 'y'.repeat(1_000_000) } }, '1');
    const { code } = await closedWithin(ws, 20_000);
    assert.equal(code, 1009);
  });

  test("a client's Close is answered with a Close", async () => {
    const { ws, inbox } = await rawSocket();
    send(ws, 'phoenix', 'heartbeat', {}, 'h1', null);
    await inbox.next(reply('h1'));
    ws.close(1000, 'bye');
    const { code } = await closedWithin(ws, 20_000);
    // ws reports 1006 when the connection ends without the server's Close frame.
    assert.equal(code, 1000);
  });

  test('a text frame that is not UTF-8 is closed with 1007, a frame with a reserved opcode with 1002', async () => {
    const { ws: text } = await rawSocket();
    // ws sends a Buffer as a text frame unchecked when told it is not binary.
    text.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    assert.equal((await closedWithin(text, 20_000)).code, 1007);

    const { ws: raw } = await rawSocket();
    // FIN + opcode 3 (reserved), masked, empty: written under ws, which would refuse to send it.
    raw._socket.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
    assert.equal((await closedWithin(raw, 20_000)).code, 1002);
  });

  test('a topic with a NUL or control characters is refused with a reason, not a database error', async () => {
    const { ws, inbox } = await rawSocket();
    send(ws, 'realtime:a\u0000b', 'phx_join', { config: { private: true } }, '1');
    const r = await inbox.next(reply('1'));
    assert.equal(r.payload.status, 'error');
    assert.equal(r.payload.response.reason, 'InvalidTopic: A topic name must not contain control characters');
    send(ws, `realtime:${'x'.repeat(300)}`, 'phx_join', { config: {} }, '2');
    const long = await inbox.next(reply('2'));
    assert.equal(long.payload.response.reason, 'InvalidTopic: A topic name is at most 255 bytes long');
  });
});

describe('per-socket limits', () => {
  test('channels per socket (TENANT_MAX_CHANNELS_PER_CLIENT): the fourth subscribe fails with Supabase reason', async () => {
    const c = await clientAs(cb, null);
    clients.push(c);
    for (const name of ['one', 'two', 'three']) await subscribed(c.channel(`limits-${name}`));
    await assert.rejects(subscribed(c.channel('limits-four')), /ChannelRateLimitReached: Too many channels/);
  });

  test('joins per second (TENANT_MAX_JOINS_PER_SECOND): refused, then the socket is closed', async () => {
    const { ws, inbox } = await rawSocket();
    // Rejoins of one topic: never more than one channel. 60 joins at 10 a second would take 5 s.
    for (let i = 0; i < 60; i++) send(ws, 'realtime:rejoin', 'phx_join', { config: {} }, `j${i}`);
    const refused = await inbox.next((m) => m.event === 'phx_reply' && m.payload.status === 'error');
    assert.equal(refused.payload.response.reason, 'ClientJoinRateLimitReached: Too many joins per second');
    await closedWithin(ws, 20_000);
  });

  test('events per second (TENANT_MAX_EVENTS_PER_SECOND): the channel is shut with a system error', async () => {
    const { ws, inbox } = await rawSocket();
    send(ws, 'realtime:chatty', 'phx_join', { config: {} }, '1');
    await inbox.next(reply('1'));
    for (let i = 0; i < 200; i++) {
      send(ws, 'realtime:chatty', 'broadcast', { type: 'broadcast', event: 'e', payload: { i } }, `b${i}`, '1');
    }
    const sys = await inbox.next((m) => m.event === 'system');
    assert.deepEqual(sys.payload, {
      extension: 'system',
      status: 'error',
      message: 'Too many messages per second',
      channel: 'chatty',
    });
    await inbox.next((m) => m.event === 'phx_close' && m.topic === 'realtime:chatty');
  });

  test('presence calls (CLIENT_PRESENCE_MAX_CALLS per window): the channel is shut', async () => {
    const c = await clientAs(cb, null);
    clients.push(c);
    const errors = new Inbox();
    const ch = c.channel('limits-lobby', { config: { presence: { key: 'k' } } });
    ch.on('system', {}, errors.push);
    await subscribed(ch);
    assert.equal(await ch.track({ n: 1 }), 'ok');
    assert.equal(await ch.track({ n: 2 }), 'ok');
    ch.track({ n: 3 }).catch(() => {});
    const sys = await errors.next((m) => m.status === 'error');
    assert.equal(sys.message, 'Client presence rate limit exceeded');
  });

  test('bindings per join (REALTIME_MAX_BINDINGS_PER_CHANNEL) are bounded', async () => {
    const c = await clientAs(cb, null);
    clients.push(c);
    const ch = c.channel('limits-db');
    for (let i = 0; i < 6; i++) ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: `t${i}` }, () => {});
    await assert.rejects(subscribed(ch), /TooManyBindings: A channel accepts at most 5 postgres_changes bindings/);
  });

  test('a broadcast over the payload limit is answered payload_size_exceeded and not relayed', async () => {
    const { ws, inbox } = await rawSocket();
    const peer = await rawSocket();
    for (const [s, ib] of [[ws, inbox], [peer.ws, peer.inbox]]) {
      send(s, 'realtime:sized', 'phx_join', { config: { broadcast: { ack: true } } }, 'j');
      await ib.next(reply('j'));
    }
    send(ws, 'realtime:sized', 'broadcast', { type: 'broadcast', event: 'big', payload: { x: 'y'.repeat(257_000) } }, 'b1', 'j');
    const r = await inbox.next(reply('b1'));
    assert.deepEqual(r.payload, { status: 'error', response: 'payload_size_exceeded' });
    send(ws, 'realtime:sized', 'broadcast', { type: 'broadcast', event: 'small', payload: {} }, 'b2', 'j');
    await peer.inbox.next((m) => m.event === 'broadcast' && m.payload.event === 'small');
    assert.ok(!peer.inbox.items.some((m) => m.payload?.event === 'big'), 'the big one was not relayed before the small one');
  });
});

describe('REST broadcast', () => {
  test('a payload over the limit is refused with 422 and Supabase errors, single and batch', async () => {
    const inbox = new Inbox();
    const c = await clientAs(cb, null);
    clients.push(c);
    const ch = c.channel('limits-rest').on('broadcast', { event: '*' }, inbox.push);
    await subscribed(ch);
    const big = { x: 'y'.repeat(257_000) };
    const single = await fetch(`${cb.url}/realtime/v1/api/broadcast/limits-rest/events/big`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify(big),
    });
    assert.equal(single.status, 422);
    assert.deepEqual(await single.json(), { errors: { payload: ['Payload size exceeds tenant limit'] } });
    const batch = await fetch(`${cb.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { topic: 'limits-rest', event: 'small', payload: {} },
          { topic: 'limits-rest', event: 'big', payload: big },
        ],
      }),
    });
    assert.equal(batch.status, 422);
    assert.deepEqual(await batch.json(), {
      errors: { messages: [{}, { payload: ['Payload size exceeds tenant limit'] }] },
    });
    const ok = await ch.httpSend('after', { n: 1 });
    assert.equal(ok.success, true, JSON.stringify(ok));
    await inbox.next((m) => m.event === 'after');
    assert.deepEqual(inbox.items.map((m) => m.event), ['after'], 'nothing of the refused batch was relayed');
  });
});

describe('slow readers', () => {
  test('a socket that stops reading is dropped; a reading one receives everything', async () => {
    const slow = await rawSocket();
    const honest = await rawSocket();
    for (const s of [slow, honest]) {
      send(s.ws, 'realtime:flood', 'phx_join', { config: {} }, 'j');
      await s.inbox.next(reply('j'));
    }
    slow.ws._socket.pause();
    // The slow socket is not silent: it heartbeats, it only stops reading.
    const beat = setInterval(() => send(slow.ws, 'phoenix', 'heartbeat', {}, 'hb', null), 5_000);
    const payload = { x: 'y'.repeat(200_000) };
    const n = 150;
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${cb.url}/realtime/v1/api/broadcast`, {
        method: 'POST',
        headers: { apikey: cb.serviceRoleKey, 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: 'flood', event: `m${i}`, payload }] }),
      });
      assert.equal(res.status, 202);
      // The honest socket reads each message before the next is sent.
      await honest.inbox.next((m) => m.event === 'broadcast' && m.payload.event === `m${i}`, 30_000);
    }
    const got = honest.inbox.items.filter((m) => m.event === 'broadcast').map((m) => m.payload.event);
    assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`));
    slow.ws._socket.resume();
    // Without the bounds the slow socket would get all 30 MB once it reads again and stay open.
    await closedWithin(slow.ws, 30_000).finally(() => clearInterval(beat));
    assert.ok(
      slow.inbox.items.filter((m) => m.event === 'broadcast').length < n,
      'the slow socket did not get the whole flood',
    );
  });
});
