// ES256 by default: users' access tokens are signed with a P-256 key craftbase generates, carry
// its kid, and verify locally in supabase-js (`auth.getClaims()` reads the JWKS, never /user);
// REST and realtime accept them. A rotation (`craftbase signing-keys new`, `promote`, SIGHUP)
// keeps old sessions valid while new ones use the new kid; a revoked kid is refused everywhere;
// an HS256 token forged with the ES256 kid is refused. An upgraded data directory (HS256 before)
// logs no one out. One craftbase for most of the file, a second for the upgrade.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { craftbaseBin, createClient, pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, subscribed } from './lib/realtime.mjs';

const PASSWORD = 'a-long-enough-password-42';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];
/** GET /auth/v1/user requests made by the clients of this file. */
let userRequests = 0;

function countingFetch(input, init) {
  const url = typeof input === 'string' ? input : (input.url ?? String(input));
  const method = init?.method ?? input?.method ?? 'GET';
  if (new URL(url).pathname === '/auth/v1/user' && method === 'GET') userRequests++;
  return fetch(input, init);
}

function client(instance = cb) {
  const c = createClient(instance.url, instance.anonKey, { global: { fetch: countingFetch } });
  clients.push(c);
  return c;
}

function header(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
}

/** Runs `craftbase signing-keys …` on the data directory; resolves with stdout. */
function signingKeys(instance, ...args) {
  return new Promise((resolve, reject) => {
    execFile(
      craftbaseBin(),
      ['signing-keys', ...args, '--data-dir', instance.dataDir],
      { env: instance.env },
      (err, stdout, stderr) =>
        err ? reject(new Error(`craftbase signing-keys ${args[0]} failed: ${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

/** SIGHUP, then waits until the JWKS shows `check` true. */
async function hangupUntil(instance, check) {
  process.kill(instance.pid, 'SIGHUP');
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${instance.url}/auth/v1/.well-known/jwks.json`, { headers: { apikey: instance.anonKey } });
    if (check((await res.json()).keys)) return;
    await sleep(100);
  }
  assert.fail('the JWKS did not change after SIGHUP' + instance.diagnostics());
}

async function jwks(instance = cb) {
  const res = await fetch(`${instance.url}/auth/v1/.well-known/jwks.json`, { headers: { apikey: instance.anonKey } });
  return { res, body: await res.json() };
}

async function signUp(c) {
  const email = `${randomUUID()}@example.com`;
  const { data, error } = await c.auth.signUp({ email, password: PASSWORD });
  assert.equal(error, null);
  assert.ok(data.session, 'sign-up returns a session (autoconfirm)');
  return { email, session: data.session };
}

/** GET the table over REST with a raw bearer token; resolves with the status (401 when refused). */
async function restStatus(token, instance = cb) {
  const res = await fetch(`${instance.url}/rest/v1/sk_notes?select=body`, {
    headers: { apikey: instance.anonKey, Authorization: `Bearer ${token}` },
  });
  await res.text();
  return res.status;
}

/** GET /auth/v1/user with a raw bearer token; resolves with the status (GoTrue's 403 bad_jwt when refused). */
async function userStatus(token, instance = cb) {
  const res = await fetch(`${instance.url}/auth/v1/user`, {
    headers: { apikey: instance.anonKey, Authorization: `Bearer ${token}` },
  });
  await res.text();
  return res.status;
}

/** Whether a realtime channel joins with `token`. */
async function realtimeJoins(token) {
  const c = createClient(cb.url, cb.anonKey);
  clients.push(c);
  await c.realtime.setAuth(token);
  const ch = c.channel(`sk-${randomUUID()}`).on('postgres_changes', { event: '*', schema: 'public', table: 'sk_notes' }, () => {});
  try {
    await subscribed(ch, 5000);
    return true;
  } catch {
    return false;
  } finally {
    await c.removeChannel(ch).catch(() => {});
    c.realtime.disconnect();
  }
}

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.sk_notes (id serial primary key, owner uuid not null default auth.uid(), body text not null);
       alter table public.sk_notes enable row level security;
       create policy own on public.sk_notes for all to authenticated
         using (owner = auth.uid()) with check (owner = auth.uid());
       grant select, insert on public.sk_notes to authenticated;
       grant usage on sequence public.sk_notes_id_seq to authenticated;
       alter publication supabase_realtime add table public.sk_notes;`,
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

/** The first session of the file, signed with the first key. */
let first;

describe('ES256 by default', () => {
  test('a session access token is ES256 with a kid the JWKS publishes (public keys only, cached 10 min)', async () => {
    const c = client();
    first = { client: c, ...(await signUp(c)) };
    const h = header(first.session.access_token);
    assert.equal(h.alg, 'ES256');
    assert.ok(h.kid);
    const { res, body } = await jwks();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('cache-control') ?? '', /max-age=600/);
    const key = body.keys.find((k) => k.kid === h.kid);
    assert.ok(key, 'the kid is in the JWKS');
    assert.equal(key.kty, 'EC');
    assert.equal(key.alg, 'ES256');
    for (const k of body.keys) {
      assert.notEqual(k.kty, 'oct', 'HMAC keys are never published');
      assert.equal(k.d, undefined, 'private halves are never published');
      assert.equal(k.k, undefined);
    }
    // The legacy API keys stay HS256.
    assert.equal(header(cb.anonKey).alg, 'HS256');
  });

  test('getClaims() verifies the session locally, without calling /user', async () => {
    const before = userRequests;
    const { data, error } = await first.client.auth.getClaims();
    assert.equal(error, null);
    assert.equal(data.header.alg, 'ES256');
    assert.equal(data.claims.email, first.email);
    assert.equal(userRequests, before, 'no GET /auth/v1/user');
    // A tampered token fails the local check.
    const [h, p, s] = first.session.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.role = 'service_role';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const bad = await first.client.auth.getClaims(forged);
    assert.ok(bad.error, 'a tampered ES256 token is refused');
  });

  test('REST and realtime accept it', async () => {
    const inbox = new Inbox();
    const ch = first.client
      .channel('sk-own')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'sk_notes' }, inbox.push);
    await subscribed(ch);
    const inserted = await first.client.from('sk_notes').insert({ body: 'mine' }).select('body');
    assert.equal(inserted.error, null);
    assert.deepEqual(inserted.data, [{ body: 'mine' }]);
    const change = await inbox.next((m) => m.eventType === 'INSERT');
    assert.equal(change.new.body, 'mine');
    await first.client.removeChannel(ch);
    assert.equal(await userStatus(first.session.access_token), 200);
  });

  test('an HS256 token forged with the ES256 kid is refused, even signed with the project secret', async () => {
    const kid = header(first.session.access_token).kid;
    const claims = JSON.parse(Buffer.from(first.session.access_token.split('.')[1], 'base64url').toString());
    const forge = (h) => {
      const head = Buffer.from(JSON.stringify(h)).toString('base64url');
      const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const sig = createHmac('sha256', cb.jwtSecret).update(`${head}.${body}`).digest('base64url');
      return `${head}.${body}.${sig}`;
    };
    const withKid = forge({ alg: 'HS256', typ: 'JWT', kid });
    assert.equal(await restStatus(withKid), 401);
    assert.equal(await userStatus(withKid), 403, "auth answers GoTrue's 403 bad_jwt");
    assert.equal(await realtimeJoins(withKid), false);
    // The same claims as a legacy HS256 token (no kid) still verify: the secret is not revoked.
    assert.equal(await restStatus(forge({ alg: 'HS256', typ: 'JWT' })), 200);
  });
});

describe('rotation', () => {
  let oldKid;
  let newKid;

  test('a standby key is published before promotion; after it, new sessions use it and old ones stay valid', async () => {
    oldKid = header(first.session.access_token).kid;
    newKid = await signingKeys(cb, 'new');
    assert.notEqual(newKid, oldKid);
    await hangupUntil(cb, (keys) => keys.some((k) => k.kid === newKid));
    const c = client();
    const { session: standbySession } = await signUp(c);
    assert.equal(header(standbySession.access_token).kid, oldKid, 'a standby key does not sign');

    await signingKeys(cb, 'promote', newKid);
    process.kill(cb.pid, 'SIGHUP');
    let fresh;
    for (let i = 0; i < 50; i++) {
      fresh = (await signUp(client())).session;
      if (header(fresh.access_token).kid === newKid) break;
      await sleep(100);
    }
    assert.equal(header(fresh.access_token).kid, newKid, 'new sessions use the promoted key');
    assert.equal(await restStatus(fresh.access_token), 200);
    assert.equal(await realtimeJoins(fresh.access_token), true);

    // The old session keeps working everywhere, and its refresh comes back with the new kid.
    assert.equal(await restStatus(first.session.access_token), 200);
    assert.equal(await userStatus(first.session.access_token), 200);
    assert.equal(await realtimeJoins(first.session.access_token), true);
    const before = userRequests;
    const claims = await first.client.auth.getClaims();
    assert.equal(claims.error, null);
    assert.equal(userRequests, before);
    const { data, error } = await first.client.auth.refreshSession();
    assert.equal(error, null);
    assert.equal(header(data.session.access_token).kid, newKid);
  });

  test('a revoked kid is refused by REST, auth and realtime', async () => {
    const oldToken = first.session.access_token;
    await signingKeys(cb, 'revoke', oldKid);
    await hangupUntil(cb, (keys) => !keys.some((k) => k.kid === oldKid));
    assert.equal(await restStatus(oldToken), 401);
    assert.equal(await userStatus(oldToken), 403, "auth answers GoTrue's 403 bad_jwt");
    assert.equal(await realtimeJoins(oldToken), false);
    const list = JSON.parse(await signingKeys(cb, 'list', '--json'));
    assert.deepEqual(
      list.map((k) => [k.kid, k.status]).sort(),
      [
        [oldKid, 'revoked'],
        [newKid, 'current'],
      ].sort(),
    );
    // The current key cannot be revoked (that would log everyone out).
    await assert.rejects(signingKeys(cb, 'revoke', newKid));
  });
});

describe('upgrading a data directory that signed HS256', () => {
  test('its HS256 sessions keep verifying; refreshed ones come back ES256', async () => {
    const old = await startCraftbase({ env: { CRAFTBASE_JWT_ALGORITHM: 'HS256' } });
    try {
      const c = client(old);
      const { session } = await signUp(c);
      assert.equal(header(session.access_token).alg, 'HS256');
      assert.deepEqual((await jwks(old)).body.keys, []);
      delete old.env.CRAFTBASE_JWT_ALGORITHM;
      await old.restart();
      const after = client(old);
      assert.equal(await userStatus(session.access_token, old), 200, 'still signed in');
      const { data, error } = await after.auth.refreshSession({ refresh_token: session.refresh_token });
      assert.equal(error, null);
      assert.equal(header(data.session.access_token).alg, 'ES256');
      assert.equal(await userStatus(data.session.access_token, old), 200);
    } finally {
      await old.stop();
    }
  });
});
