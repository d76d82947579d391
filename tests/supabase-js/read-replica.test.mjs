// Read replicas (issue 16, item 5): craftbase on a primary (DATABASE_URL) with a real streaming
// standby (pg_basebackup -R) as CRAFTBASE_DATABASE_READ_URL. REST reads go to the standby while
// it keeps up; when its replay is paused, they go to the primary once it is more than
// CRAFTBASE_DATABASE_READ_MAX_LAG behind, and back to the standby when it has caught up.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { startPgCluster } from './lib/pgcluster.mjs';

const MAX_LAG_MS = 2000;
let pg;
let standby;
let cb;

before(
  async () => {
    pg = await startPgCluster();
    standby = await pg.standby();
    cb = await startCraftbase({
      env: {
        DATABASE_URL: pg.url,
        CRAFTBASE_DATABASE_READ_URL: standby.url,
        CRAFTBASE_DATABASE_READ_MAX_LAG: `${MAX_LAG_MS}ms`,
      },
    });
    // After start-up: the migrations create the roles.
    await pgQuery(
      pg.url,
      `create table public.replica_notes (id int primary key, body text);
       grant select, insert on public.replica_notes to anon`,
    );
  },
  { timeout: 240_000 },
);

after(
  async () => {
    try {
      if (cb) await cb.stop();
    } finally {
      if (standby) await standby.stop();
      if (pg) await pg.stop();
    }
  },
  { timeout: 60_000 },
);

/** The ids REST answers now. */
async function ids() {
  const res = await fetch(`${cb.url}/rest/v1/replica_notes?select=id&order=id`, { headers: { apikey: cb.anonKey } });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.map((r) => r.id);
}

async function until(expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let seen;
  while (Date.now() < deadline) {
    seen = await ids().catch((e) => e.message);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await sleep(50);
  }
  assert.fail(`REST never answered ${JSON.stringify(expected)}; last: ${JSON.stringify(seen)}`);
}

async function insert(id) {
  // Written through REST: writes always go to the primary.
  const res = await fetch(`${cb.url}/rest/v1/replica_notes`, {
    method: 'POST',
    headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ id, body: `note ${id}` }),
  });
  assert.equal(res.status, 201, await res.text());
}

test('reads go to the standby while it keeps up, to the primary when it lags, and back', { timeout: 120_000 }, async () => {
  // The table reaches REST's schema cache (from the primary) and the standby.
  await until([], 30_000);
  await insert(1);
  await until([1], 30_000);
  // Let the watcher see the standby caught up.
  await sleep(MAX_LAG_MS);

  // Replay paused: the next write is on the primary only. A read right after it still comes
  // from the standby (within the accepted lag), so it does not see the row...
  await standby.pauseReplay();
  await insert(2);
  assert.deepEqual(await ids(), [1], 'the read did not go to the standby');
  // ...until the standby is more than the accepted lag behind: then reads go to the primary.
  const paused = Date.now();
  await until([1, 2], MAX_LAG_MS * 4);
  const switched = Date.now() - paused;
  assert.ok(switched >= MAX_LAG_MS / 2, `reads left a standby within its lag (${switched} ms)`);

  // Replay resumed: once caught up, reads return to the standby (seen by pausing it again).
  await standby.resumeReplay();
  await sleep(MAX_LAG_MS);
  await standby.pauseReplay();
  await insert(3);
  assert.deepEqual(await ids(), [1, 2], 'reads did not return to the standby');
  await until([1, 2, 3], MAX_LAG_MS * 4);
  await standby.resumeReplay();
});
