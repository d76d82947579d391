// Realtime across a PostgreSQL restart: craftbase runs against a cluster this file controls
// (DATABASE_URL), a signed-in user listens to her jobs, PostgreSQL is restarted (fast shutdown,
// same port), and every job inserted after it is back reaches her exactly once, with the one
// from before the restart not delivered again.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { startPgCluster } from './lib/pgcluster.mjs';
import { Inbox, clientAs, createUser, newChangesArriveOnce, subscribed, userToken } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startPgCluster>>} */
let cluster;
/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
let client;

before(
  async () => {
    cluster = await startPgCluster();
    cb = await startCraftbase({ env: { DATABASE_URL: cluster.url } });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (client) await client.removeAllChannels().catch(() => {});
    try {
      if (cb) await cb.stop();
    } finally {
      if (cluster) await cluster.stop();
    }
  },
  { timeout: 60_000 },
);

async function healthStatus() {
  try {
    const res = await fetch(`${cb.url}/health`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

async function insertJob(userId, connector, type) {
  const [row] = await pgQuery(
    cluster.url,
    `insert into pipeline_jobs (user_id, connector_id, type) values ($1, $2, $3) returning id`,
    [userId, connector, type],
  );
  return row.id;
}

test('after PostgreSQL restarts, each new change reaches a subscriber that stayed connected exactly once', { timeout: 150_000 }, async () => {
  const user = await createUser(cb);
  const [{ id: connector }] = await pgQuery(cluster.url, 'select id from public.connectors order by slug limit 1');
  client = await clientAs(cb, userToken(cb, user.id));
  const inbox = new Inbox();
  await subscribed(
    client
      .channel('jobs-changes')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_jobs', filter: `user_id=eq.${user.id}` }, inbox.push),
  );

  const firstId = await insertJob(user.id, connector, 'before-restart');
  const first = await inbox.next((m) => m.new?.id === firstId, 15_000);
  assert.equal(first.eventType, 'INSERT');

  await cluster.restart();
  const deadline = Date.now() + 60_000;
  while ((await healthStatus()) !== 200) {
    assert.ok(Date.now() < deadline, `craftbase /health not 200 within 60 s of the restart${cb.diagnostics()}`);
    await sleep(250);
  }

  const all = await newChangesArriveOnce(inbox, cb, firstId, (i) => insertJob(user.id, connector, `after-restart-${i}`));
  assert.ok(all.every((m) => m.eventType === 'INSERT' && m.new.user_id === user.id));
});
