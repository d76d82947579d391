// Cluster mode (issue 16, item 3): two craftbase nodes on one PostgreSQL and one NATS, a
// supabase-js client on each, as a load balancer would spread them. A broadcast sent on either
// node (from a socket, or REST) reaches the subscribers on both, once, with `self` and `ack`
// kept; presence state is the union of both nodes' members, and joins and leaves reach both. A
// third node started later sees the presences already there, and when it is SIGKILLed its
// presences leave on the others once its membership expires.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { serviceClient } from './lib/craftbase.mjs';
import { startCluster } from './lib/cluster.mjs';
import { Inbox, clientAs, subscribed } from './lib/realtime.mjs';

const JWT_SECRET = 'cluster-bus-test-secret-of-at-least-thirty-two-chars';

let cluster;
/** @type {Awaited<ReturnType<typeof import('./lib/craftbase.mjs').startCraftbase>>[]} */
let nodes = [];
const clients = [];
/** The node started by the last test and SIGKILLed there. */
let late;

/** Waits until `cb`'s log says its bus is up (it starts in the background after `serve`). */
async function busUp(cb) {
  const deadline = Date.now() + 30_000;
  while (!/cluster bus: broadcast and presence shared/.test(cb.stdout() + cb.stderr())) {
    if (Date.now() > deadline) throw new Error(`the bus did not start:${cb.diagnostics(40)}`);
    await sleep(100);
  }
}

before(
  async () => {
    cluster = await startCluster({ JWT_SECRET });
    nodes = cluster.nodes;
    await cluster.startNodes(['bus-a', 'bus-b'], { started: busUp });
  },
  { timeout: 240_000 },
);

after(
  async () => {
    try {
      for (const c of clients) await c.removeAllChannels();
      for (const cb of nodes) await cb.stop();
      if (late) await late.stop().catch(() => {});
    } finally {
      if (cluster) await cluster.stop();
    }
  },
  { timeout: 60_000 },
);

/** An anon supabase-js client on node `i`. */
async function clientOn(i) {
  const c = await clientAs(nodes[i], null);
  clients.push(c);
  return c;
}

test('a broadcast on one node reaches the other node once; self and ack stay the sender node’s', async () => {
  const [onA, onA2, onB] = [await clientOn(0), await clientOn(0), await clientOn(1)];
  const [mine, nextDoor, remote] = [new Inbox(), new Inbox(), new Inbox()];
  const sender = onA.channel('bus-room', { config: { broadcast: { ack: true } } }).on('broadcast', { event: '*' }, mine.push);
  await subscribed(sender);
  await subscribed(onA2.channel('bus-room').on('broadcast', { event: '*' }, nextDoor.push));
  await subscribed(onB.channel('bus-room').on('broadcast', { event: '*' }, remote.push));

  assert.equal(await sender.send({ type: 'broadcast', event: 'move', payload: { x: 1 } }), 'ok');
  assert.deepEqual((await remote.next((m) => m.event === 'move')).payload, { x: 1 });
  assert.deepEqual((await nextDoor.next((m) => m.event === 'move')).payload, { x: 1 });

  // The other way, with self on: the sender on B hears itself once, A's subscribers once.
  const loud = onB.channel('bus-room-2', { config: { broadcast: { self: true, ack: true } } }).on('broadcast', { event: '*' }, remote.push);
  await subscribed(loud);
  await subscribed(onA2.channel('bus-room-2').on('broadcast', { event: '*' }, nextDoor.push));
  assert.equal(await loud.send({ type: 'broadcast', event: 'echo', payload: { y: 2 } }), 'ok');
  await nextDoor.next((m) => m.event === 'echo');
  await remote.next((m) => m.event === 'echo');

  const settled = await Promise.all([mine.settle(() => true, 1500), nextDoor.settle(), remote.settle()]);
  assert.deepEqual(settled[0], [], 'self is off for the sender on A');
  assert.deepEqual(settled[1].map((m) => m.event), ['move', 'echo'], 'each message once on A');
  assert.deepEqual(settled[2].map((m) => m.event), ['move', 'echo'], 'each message once on B');
});

test('REST broadcast on one node reaches subscribers on the other', async () => {
  const onA = await clientOn(0);
  const inbox = new Inbox();
  await subscribed(onA.channel('bus-rest').on('broadcast', { event: '*' }, inbox.push));
  const res = await fetch(`${nodes[1].url}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { apikey: nodes[1].serviceRoleKey, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ topic: 'bus-rest', event: 'batch', payload: { n: 1 } }] }),
  });
  assert.equal(res.status, 202);
  assert.deepEqual((await inbox.next((m) => m.event === 'batch')).payload, { n: 1 });
  const r = await serviceClient(nodes[1]).channel('bus-rest').httpSend('single', { n: 2 });
  assert.equal(r.success, true, JSON.stringify(r));
  assert.deepEqual((await inbox.next((m) => m.event === 'single')).payload, { n: 2 });
  assert.equal((await inbox.settle()).length, 2, 'each once');
});

test('presence: both nodes see the union, joins and leaves cross', async () => {
  const [onA, onB] = [await clientOn(0), await clientOn(1)];
  const [joinsA, leavesA, joinsB] = [new Inbox(), new Inbox(), new Inbox()];
  const alice = onA
    .channel('bus-lobby', { config: { presence: { key: 'alice' } } })
    .on('presence', { event: 'join' }, joinsA.push)
    .on('presence', { event: 'leave' }, leavesA.push);
  await subscribed(alice);
  assert.equal(await alice.track({ status: 'online' }), 'ok');
  await joinsA.next((j) => j.key === 'alice');
  // Give A's diff time to reach B, so that bob's presence_state carries alice.
  await sleep(300);
  const bob = onB.channel('bus-lobby', { config: { presence: { key: 'bob' } } }).on('presence', { event: 'join' }, joinsB.push);
  await subscribed(bob);
  await joinsB.next((j) => j.key === 'alice');
  assert.equal(bob.presenceState().alice?.[0]?.status, 'online');
  assert.equal(await bob.track({ status: 'away' }), 'ok');
  await joinsA.next((j) => j.key === 'bob');
  assert.deepEqual(Object.keys(alice.presenceState()).sort(), ['alice', 'bob']);
  assert.equal(alice.presenceState().bob[0].status, 'away');
  await joinsB.next((j) => j.key === 'bob');
  assert.deepEqual(Object.keys(bob.presenceState()).sort(), ['alice', 'bob']);

  await onB.removeChannel(bob);
  const left = await leavesA.next((l) => l.key === 'bob');
  assert.equal(left.leftPresences[0].status, 'away');
  assert.deepEqual(Object.keys(alice.presenceState()), ['alice']);
});

test('a node started later sees existing presences; when it is SIGKILLed its presences leave', { timeout: 120_000 }, async () => {
  const onA = await clientOn(0);
  const [joins, leaves] = [new Inbox(), new Inbox()];
  const watcher = onA
    .channel('bus-late', { config: { presence: { key: 'watcher' } } })
    .on('presence', { event: 'join' }, joins.push)
    .on('presence', { event: 'leave' }, leaves.push);
  await subscribed(watcher);
  assert.equal(await watcher.track({ on: 'a' }), 'ok');

  late = await cluster.startNode('bus-c');
  await busUp(late);
  const onC = await clientAs(late, null);
  const carolJoins = new Inbox();
  const carol = onC.channel('bus-late', { config: { presence: { key: 'carol' } } }).on('presence', { event: 'join' }, carolJoins.push);
  await subscribed(carol);
  // The watcher tracked before C existed: C asked the others for their state when it started.
  await carolJoins.next((j) => j.key === 'watcher', 15_000);
  assert.equal(carol.presenceState().watcher?.[0]?.on, 'a');
  assert.equal(await carol.track({ on: 'c' }), 'ok');
  await joins.next((j) => j.key === 'carol');

  await late.kill9();
  onC.realtime.disconnect();
  // Nothing came from C: its heartbeat (MEMBER_TTL, 10 s) expired and A dropped its presences.
  const left = await leaves.next((l) => l.key === 'carol', 40_000);
  assert.equal(left.leftPresences[0].on, 'c');
  assert.deepEqual(Object.keys(watcher.presenceState()), ['watcher']);
});
