// craftbase's own PostgreSQL killed outright (as the OOM killer would) while a signed-in user
// listens to her jobs: craftbase starts it again by itself, REST serves again, and every job
// inserted afterwards reaches her exactly once, with the one from before not delivered again.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, clientAs, createUser, newChangesArriveOnce, subscribed, userToken } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
let client;

before(
  async () => {
    cb = await startCraftbase();
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (client) await client.removeAllChannels().catch(() => {});
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

/** The postmaster's pid, from the cluster's postmaster.pid wherever the data dir put it. */
async function postmasterPid() {
  const [row] = await pgQuery(cb.dbUrl, `select current_setting('data_directory') as dir`);
  const text = await fs.readFile(path.join(row.dir, 'postmaster.pid'), 'utf8');
  return Number(text.split('\n')[0]);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function insertJob(userId, connector, type) {
  for (;;) {
    try {
      const [row] = await pgQuery(
        cb.dbUrl,
        `insert into pipeline_jobs (user_id, connector_id, type) values ($1, $2, $3) returning id`,
        [userId, connector, type],
      );
      return row.id;
    } catch (e) {
      // Until PostgreSQL is back.
      await sleep(200);
    }
  }
}

test('a killed PostgreSQL is started again; REST serves and each later change arrives exactly once', { timeout: 150_000 }, async () => {
  const user = await createUser(cb);
  const [{ id: connector }] = await pgQuery(cb.dbUrl, 'select id from public.connectors order by slug limit 1');
  client = await clientAs(cb, userToken(cb, user.id));
  const inbox = new Inbox();
  await subscribed(
    client
      .channel('jobs-changes')
      .on('postgres_changes', { event: '*', schema: 'public', table: 'pipeline_jobs', filter: `user_id=eq.${user.id}` }, inbox.push),
  );
  const firstId = await insertJob(user.id, connector, 'before-kill');
  await inbox.next((m) => m.new?.id === firstId, 15_000);

  const pid = await postmasterPid();
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 60_000;
  while (alive(pid)) {
    assert.ok(Date.now() < deadline, 'the postmaster did not die');
    await sleep(50);
  }

  // REST answers from the restarted PostgreSQL.
  for (;;) {
    const res = await fetch(`${cb.url}/rest/v1/connectors?select=slug`, { headers: { apikey: cb.anonKey } }).catch(() => null);
    const body = res ? await res.text() : '';
    if (res?.status === 200) {
      assert.equal(JSON.parse(body).length, 8);
      break;
    }
    assert.ok(Date.now() < deadline, `REST did not come back: ${res?.status} ${body}${cb.diagnostics()}`);
    await sleep(250);
  }
  assert.notEqual(await postmasterPid(), pid);

  await newChangesArriveOnce(inbox, cb, firstId, (i) => insertJob(user.id, connector, `after-kill-${i}`));
});
