// Separate database pools: private-channel checks that hold every connection of realtime's pool
// (their policy waits on a lock the test holds) do not keep auth from signing a user in, nor
// REST from answering. Pools are made small through the environment so two joins fill one.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import pg from 'pg';

import { anonClient, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { clientAs } from './lib/realtime.mjs';

const POOL = 2;
const LOCK = 424242;
/** Generous bound for an operation that should take milliseconds. */
const DEADLINE_MS = 15_000;

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        PGRST_DB_POOL: String(2 * POOL),
        GOTRUE_DB_MAX_POOL_SIZE: String(POOL),
        CRAFTBASE_REALTIME_POOL_SIZE: String(POOL),
      },
    });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

/** Resolves with what `promise` gives, or 'late' after `ms`. */
async function within(promise, ms) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, 'late');
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('private-channel checks filling realtime’s pool do not block auth sign-in or REST', async () => {
  await pgQuery(
    cb.dbUrl,
    `create function public.private_gate() returns boolean language sql security definer
       set search_path = '' as $$ select pg_advisory_xact_lock_shared(${LOCK}); select true $$;
     create policy gated_read on realtime.messages for select to anon, authenticated
       using (realtime.topic() like 'gated-%' and public.private_gate())`,
  );
  const email = `${randomUUID()}@example.com`;
  const password = 'pool-test-password-1';
  const created = await serviceClient(cb).auth.admin.createUser({ email, password, email_confirm: true });
  assert.equal(created.error, null, created.error?.message);

  const holder = new pg.Client({ connectionString: cb.dbUrl });
  await holder.connect();
  const clients = [];
  try {
    await holder.query('select pg_advisory_lock($1)', [LOCK]);
    // Twice as many private joins as realtime has connections: every one is taken.
    for (let i = 0; i < 2 * POOL; i++) {
      const client = await clientAs(cb, null);
      clients.push(client);
      client.channel(`gated-${i}`, { config: { private: true } }).subscribe();
    }
    let waiting = 0;
    for (const stop = Date.now() + DEADLINE_MS; Date.now() < stop; await sleep(100)) {
      const [row] = await pgQuery(
        cb.dbUrl,
        `select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = $1 and not granted`,
        [LOCK],
      );
      waiting = row.n;
      if (waiting >= POOL) break;
    }
    assert.equal(waiting, POOL, 'the private-channel checks did not fill realtime’s pool');

    const signIn = await within(anonClient(cb).auth.signInWithPassword({ email, password }), DEADLINE_MS);
    assert.notEqual(signIn, 'late', `sign-in waited over ${DEADLINE_MS} ms behind realtime's checks`);
    assert.equal(signIn.error, null, signIn.error?.message);
    assert.ok(signIn.data.session?.access_token, 'no session');

    const rest = await within(anonClient(cb).from('connectors').select('slug'), DEADLINE_MS);
    assert.notEqual(rest, 'late', `REST waited over ${DEADLINE_MS} ms behind realtime's checks`);
    assert.equal(rest.error, null, rest.error?.message);
  } finally {
    await holder.query('select pg_advisory_unlock_all()').catch(() => {});
    await holder.end();
    for (const client of clients) {
      await client.removeAllChannels();
      client.realtime.disconnect();
    }
  }
});
