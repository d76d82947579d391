// The new API keys (sb_publishable_…, sb_secret_…) from supabase-js: a client made with the
// publishable key works for REST (as anon, under RLS), auth (sign up, sign in) and realtime;
// the secret key bypasses RLS from Node and is refused from a browser User-Agent; a revoked key
// is refused; `Authorization: Bearer sb_…` counts as no Authorization. One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { craftbaseBin, createClient, pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, subscribed } from './lib/realtime.mjs';

const CHROME =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const PASSWORD = 'a-long-enough-password-42';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];

function client(key, options) {
  const c = createClient(cb.url, key, options);
  clients.push(c);
  return c;
}

/** Runs `craftbase keys …` on the instance's data directory; resolves with stdout. */
function keys(...args) {
  return new Promise((resolve, reject) => {
    execFile(craftbaseBin(), ['keys', ...args, '--data-dir', cb.dataDir], { env: cb.env }, (err, stdout, stderr) =>
      err ? reject(new Error(`craftbase keys ${args[0]} failed: ${stderr}`)) : resolve(stdout.trim()),
    );
  });
}

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.ak_notes (id serial primary key, owner uuid, body text not null);
       alter table public.ak_notes enable row level security;
       create policy public_notes on public.ak_notes for select to anon, authenticated using (body like 'public%');
       create policy own_notes on public.ak_notes for all to authenticated
         using (owner = auth.uid()) with check (owner = auth.uid());
       grant select, insert on public.ak_notes to anon, authenticated, service_role;
       grant usage on sequence public.ak_notes_id_seq to authenticated, service_role;
       alter table public.ak_notes replica identity full;
       alter publication supabase_realtime add table public.ak_notes;
       insert into public.ak_notes (body) values ('public: hello'), ('private: nobody''s');`,
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

/** The table through the REST API as `c`, once the schema cache knows it. */
async function notes(c) {
  for (let i = 0; ; i++) {
    const res = await c.from('ak_notes').select('body').order('id');
    if (!res.error || i === 50 || res.status === 401) return res;
    await sleep(100);
  }
}

describe('status --json', () => {
  test('prints a publishable and a secret key beside the legacy ones', () => {
    assert.match(cb.status.publishable_key, /^sb_publishable_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/);
    assert.match(cb.status.secret_key, /^sb_secret_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/);
    assert.ok(cb.status.anon_key.startsWith('eyJ'));
    assert.ok(cb.status.service_role_key.startsWith('eyJ'));
  });
});

describe('publishable key', () => {
  test('REST runs as anon, under RLS', async () => {
    const { data, error } = await notes(client(cb.status.publishable_key));
    assert.equal(error, null);
    assert.deepEqual(data.map((r) => r.body), ['public: hello']);
  });

  test('sign up and sign in; then REST runs as the user (her Authorization stays hers)', async () => {
    const c = client(cb.status.publishable_key);
    const email = `${randomUUID()}@example.com`;
    const signedUp = await c.auth.signUp({ email, password: PASSWORD });
    assert.equal(signedUp.error, null);
    assert.ok(signedUp.data.session, 'a session (autoconfirm)');
    await c.auth.signOut({ scope: 'local' });
    const signedIn = await c.auth.signInWithPassword({ email, password: PASSWORD });
    assert.equal(signedIn.error, null);
    const me = signedIn.data.user.id;
    const { data: user } = await c.auth.getUser();
    assert.equal(user.user.id, me);
    const inserted = await c.from('ak_notes').insert({ owner: me, body: 'mine' }).select('body, owner');
    assert.equal(inserted.error, null);
    assert.deepEqual(inserted.data, [{ body: 'mine', owner: me }]);
    const { data } = await notes(c);
    assert.deepEqual(data.map((r) => r.body), ['public: hello', 'mine']);
  });

  test('realtime: postgres_changes under RLS and broadcast', async () => {
    const c = client(cb.status.publishable_key);
    const inbox = new Inbox();
    const ch = c
      .channel('ak-room', { config: { broadcast: { self: true, ack: true } } })
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'ak_notes' }, inbox.push)
      .on('broadcast', { event: 'ping' }, inbox.push);
    await subscribed(ch);
    await pgQuery(cb.dbUrl, `insert into public.ak_notes (body) values ('private: not for anon'), ('public: news')`);
    const change = await inbox.next((m) => m.eventType === 'INSERT');
    assert.equal(change.new.body, 'public: news');
    assert.deepEqual(await inbox.settle((m) => m.new?.body === 'private: not for anon', 500), []);
    assert.equal(await ch.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } }), 'ok');
    const echo = await inbox.next((m) => m.event === 'ping');
    assert.deepEqual(echo.payload, { n: 1 });
  });
});

describe('secret key', () => {
  test('bypasses RLS from Node (service_role), and the admin API answers', async () => {
    const c = client(cb.status.secret_key);
    const { data, error } = await notes(c);
    assert.equal(error, null);
    assert.ok(data.some((r) => r.body === "private: nobody's"));
    const users = await c.auth.admin.listUsers();
    assert.equal(users.error, null);
  });

  test('is refused when the client says it is a browser', async () => {
    const c = client(cb.status.secret_key, { global: { headers: { 'User-Agent': CHROME } } });
    const { data, error, status } = await c.from('ak_notes').select('body');
    assert.equal(data, null);
    assert.equal(status, 401);
    assert.equal(error.message, 'Forbidden use of secret API key in browser');
  });
});

describe('secret key on realtime', () => {
  test('runs as service_role: the sb_ key supabase-js sends as access_token is ignored', async () => {
    const c = client(cb.status.secret_key);
    const inbox = new Inbox();
    const ch = c
      .channel('ak-service')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'ak_notes', filter: 'body=eq.private: for the server' }, inbox.push);
    await subscribed(ch);
    // Sent explicitly too, as a renewal: an sb_ value is no user token.
    await c.realtime.setAuth(cb.status.publishable_key);
    await pgQuery(cb.dbUrl, `insert into public.ak_notes (body) values ('private: for the server')`);
    const change = await inbox.next((m) => m.eventType === 'INSERT');
    assert.equal(change.new.body, 'private: for the server');
  });

  test('a browser cannot open a socket with it', async () => {
    const { WebSocket } = await import('ws');
    const url = `${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${cb.status.secret_key}&vsn=1.0.0`;
    const status = await new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { 'User-Agent': CHROME } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', reject);
    });
    assert.equal(status, 401);
  });
});

describe('Authorization: Bearer sb_…', () => {
  test('counts as no Authorization: the apikey alone decides', async () => {
    const get = (apikey, bearer) =>
      fetch(`${cb.url}/rest/v1/ak_notes?select=body&order=id`, {
        headers: { apikey, authorization: `Bearer ${bearer}` },
      });
    // The secret key in Authorization does not lift a publishable apikey above anon.
    let res = await get(cb.status.publishable_key, cb.status.secret_key);
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).map((r) => r.body).filter((b) => !b.startsWith('public')), []);
    // And the publishable key there does not lower a secret apikey.
    res = await get(cb.status.secret_key, cb.status.publishable_key);
    assert.equal(res.status, 200);
    assert.ok((await res.json()).some((r) => r.body === "private: nobody's"));
  });
});

describe('craftbase keys', () => {
  test('a new secret key works; once revoked it is refused with Supabase’s 401', async () => {
    const key = await keys('new', '--secret', '--name', 'ci');
    assert.match(key, /^sb_secret_/);
    const c = client(key);
    let res;
    for (let i = 0; i < 60; i++) {
      res = await c.from('ak_notes').select('body');
      if (res.status === 200) break;
      await sleep(100);
    }
    assert.equal(res.status, 200, 'the new key is accepted within a few seconds');
    const listed = JSON.parse(await keys('list', '--json'));
    assert.equal(listed.filter((k) => k.kind === 'secret').length, 2);
    assert.ok(!JSON.stringify(listed).includes(key), 'list never shows a secret key whole');
    await keys('revoke', key.slice(0, 16));
    for (let i = 0; i < 60; i++) {
      res = await c.from('ak_notes').select('body');
      if (res.status === 401) break;
      await sleep(100);
    }
    assert.equal(res.status, 401, 'the revoked key is refused within a few seconds');
    assert.equal(res.error.message, 'Invalid API key');
    // The default secret key still works.
    const { error } = await client(cb.status.secret_key).from('ak_notes').select('body');
    assert.equal(error, null);
  });

  test('revoking a key closes the realtime sockets opened with it', async () => {
    const key = await keys('new', '--secret', '--name', 'socket');
    const { WebSocket } = await import('ws');
    const url = `${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${key}&vsn=1.0.0`;
    let ws;
    for (let i = 0; i < 60 && !ws; i++) {
      ws = await new Promise((resolve) => {
        const s = new WebSocket(url);
        s.on('open', () => resolve(s));
        s.on('unexpected-response', () => resolve(null));
        s.on('error', () => resolve(null));
      });
      if (!ws) await sleep(100);
    }
    assert.ok(ws, 'the new key opens a socket within a few seconds');
    const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    // supabase-js on the same key: subscribed, then told of the error once the key is revoked.
    const c = client(key);
    const statuses = [];
    c.channel('ak-revoked').subscribe((status) => statuses.push(status));
    for (let i = 0; i < 100 && !statuses.includes('SUBSCRIBED'); i++) await sleep(50);
    assert.ok(statuses.includes('SUBSCRIBED'), statuses.join());
    await keys('revoke', key.slice(0, 16));
    const result = await Promise.race([closed, sleep(10_000).then(() => null)]);
    assert.deepEqual(result, { code: 1008, reason: 'API key revoked' });
    for (let i = 0; i < 100 && !statuses.some((s) => s === 'CHANNEL_ERROR' || s === 'CLOSED'); i++) await sleep(50);
    assert.ok(statuses.some((s) => s === 'CHANNEL_ERROR' || s === 'CLOSED'), statuses.join());
    await c.removeAllChannels();
    c.realtime.disconnect();
  });

  test('an sb_ key that was never issued gets the same 401', async () => {
    const res = await fetch(`${cb.url}/rest/v1/ak_notes`, { headers: { apikey: 'sb_publishable_made_up' } });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).message, 'Invalid API key');
  });
});
