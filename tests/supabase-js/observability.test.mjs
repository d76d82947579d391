// Observability: GET /metrics (Prometheus text) behind the service_role key on the API port and
// without a key on --metrics-addr; counters that grow with REST, auth and realtime activity;
// latency histograms and pool gauges; GET /ready and its 503; JSON log lines without secrets.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { anonClient, freePort, pgQuery, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';
import { Inbox, clientAs, subscribed } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
let metricsPort;
const clients = [];
/** Secrets that must never appear in a log line: filled in as they are made. */
const secrets = [];

before(
  async () => {
    metricsPort = await freePort();
    cb = await startCraftbase({
      env: { CRAFTBASE_LOG_FORMAT: 'json', GOTRUE_MAILER_AUTOCONFIRM: 'true', RUST_LOG: 'debug,tokio_postgres=warn,pg_walstream=warn' },
      args: ['--metrics-addr', `127.0.0.1:${metricsPort}`],
    });
    secrets.push(cb.anonKey, cb.serviceRoleKey, cb.jwtSecret, cb.statusJson.publishable_key, cb.statusJson.secret_key);
    await pgQuery(
      cb.dbUrl,
      `create table public.obs_items (id int primary key, label text);
       grant select, insert on public.obs_items to anon, authenticated;
       alter publication supabase_realtime add table public.obs_items`,
    );
    // The schema cache reloads on its own task after DDL.
    await waitForSchema(async () => (await serviceClient(cb).from('obs_items').select('id')).error === null);
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

/** Parses Prometheus text into {'name{labels}': value}, with labels in the order given. */
function parse(text) {
  const samples = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return samples;
}

/** The sample whose name is `name` and whose labels include every pair of `labels`. */
function sample(samples, name, labels = {}) {
  let total;
  for (const [key, value] of Object.entries(samples)) {
    const brace = key.indexOf('{');
    const n = brace < 0 ? key : key.slice(0, brace);
    if (n !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`));
    if (has) total = (total ?? 0) + value;
  }
  return total;
}

async function scrape(headers = { apikey: cb.serviceRoleKey }) {
  const res = await fetch(`${cb.url}/metrics`, { headers });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

test('/metrics on the API port needs the service_role key, as apikey or Bearer', async () => {
  let res = await fetch(`${cb.url}/metrics`);
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { message: 'No API key found in request' });

  res = await fetch(`${cb.url}/metrics`, { headers: { apikey: cb.anonKey } });
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { message: 'Invalid authentication credentials' });

  res = await fetch(`${cb.url}/metrics`, { headers: { Authorization: `Bearer ${cb.anonKey}` } });
  assert.equal(res.status, 401);

  res = await fetch(`${cb.url}/metrics`, { headers: { apikey: 'not-a-key' } });
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { message: 'Invalid authentication credentials' });

  await scrape({ apikey: cb.serviceRoleKey });
  await scrape({ Authorization: `Bearer ${cb.serviceRoleKey}` });
});

test('counters grow after REST, auth and realtime activity; histograms and pool gauges are there', async () => {
  const before = await scrape();
  const anon = anonClient(cb);

  // REST: a table read and an RPC-less insert.
  const { error: readError } = await anon.from('obs_items').select('*');
  assert.equal(readError, null);

  // Auth: a sign-up, a password sign-in and a refused one.
  const email = `${randomUUID()}@example.com`;
  const password = `pw-${randomUUID()}`;
  secrets.push(password);
  const { data: signUp, error: signUpError } = await anon.auth.signUp({ email, password });
  assert.equal(signUpError, null);
  const { data: signIn, error: signInError } = await anon.auth.signInWithPassword({ email, password });
  assert.equal(signInError, null);
  secrets.push(signIn.session.access_token, signIn.session.refresh_token, signUp.session?.access_token);
  const { error: refused } = await anonClient(cb).auth.signInWithPassword({ email, password: 'wrong-password' });
  assert.ok(refused);

  // Realtime: a channel with postgres_changes, broadcast to itself and presence.
  const rt = await clientAs(cb, null, { realtime: { params: { log_level: 'error' } } });
  clients.push(rt);
  const changes = new Inbox();
  const broadcasts = new Inbox();
  const channel = rt
    .channel(`obs-${randomUUID()}`, { config: { broadcast: { self: true }, presence: { key: 'me' } } })
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'obs_items' }, changes.push)
    .on('broadcast', { event: 'ping' }, broadcasts.push)
    .on('presence', { event: 'sync' }, () => {});
  await subscribed(channel);
  await channel.track({ online: true });
  await channel.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } });
  await broadcasts.next();
  const { error: insertError } = await serviceClient(cb).from('obs_items').insert({ id: 1, label: 'one' });
  assert.equal(insertError, null);
  await changes.next((c) => c.new?.id === 1);

  const afterSamples = await scrape();
  const grew = (name, labels) => {
    const was = sample(before, name, labels) ?? 0;
    const now = sample(afterSamples, name, labels);
    assert.ok(now > was, `${name} ${JSON.stringify(labels)}: ${was} -> ${now}`);
  };
  grew('craftbase_http_requests_total', { service: 'rest', route: 'table', status: '200' });
  grew('craftbase_http_requests_total', { service: 'rest', route: 'table', status: '201' });
  grew('craftbase_http_requests_total', { service: 'auth', route: 'signup' });
  grew('craftbase_http_requests_total', { service: 'auth', route: 'token', status: '200' });
  grew('craftbase_http_requests_total', { service: 'auth', route: 'token', status: '400' });
  grew('craftbase_http_requests_total', { service: 'realtime', route: 'websocket', status: '101' });
  grew('craftbase_auth_sign_ins_total', { grant: 'password' });
  grew('craftbase_auth_sign_in_failures_total', { grant: 'password' });
  grew('craftbase_realtime_deliveries_total', { kind: 'postgres_changes' });
  grew('craftbase_realtime_deliveries_total', { kind: 'broadcast' });
  grew('craftbase_realtime_deliveries_total', { kind: 'presence' });
  for (const service of ['rest', 'auth', 'realtime']) {
    grew('craftbase_http_request_duration_seconds_count', { service });
    assert.ok(sample(afterSamples, 'craftbase_http_request_duration_seconds_bucket', { service, le: '+Inf' }) > 0);
    assert.ok(sample(afterSamples, 'craftbase_http_request_duration_seconds_bucket', { service, le: '0.005' }) !== undefined);
  }
  assert.ok(sample(afterSamples, 'craftbase_realtime_sockets') >= 1);
  assert.ok(sample(afterSamples, 'craftbase_realtime_channels') >= 1);
  assert.equal(sample(afterSamples, 'craftbase_realtime_replication_connected'), 1);
  assert.ok(sample(afterSamples, 'craftbase_realtime_replication_slot_lag_bytes') >= 0);
  for (const [service, role] of [
    ['rest', 'authenticator'],
    ['auth', 'owner'],
    ['realtime', 'owner'],
    ['realtime', 'authenticator'],
  ]) {
    for (const gauge of [
      'craftbase_db_pool_max_connections',
      'craftbase_db_pool_connections',
      'craftbase_db_pool_connections_in_use',
      'craftbase_db_pool_waiting',
    ]) {
      assert.ok(sample(afterSamples, gauge, { service, role }) >= 0, `${gauge} ${service} ${role}`);
    }
  }
  assert.equal(sample(afterSamples, 'craftbase_db_pool_max_connections', { service: 'rest' }), 20);
  // No raw path is a label: the table's name appears nowhere.
  assert.ok(!Object.keys(afterSamples).some((k) => k.includes('obs_items')));

  await rt.removeAllChannels();
});

test('/ready answers 200 with its three parts, and 503 naming the part that is down', async () => {
  let res = await fetch(`${cb.url}/ready`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { database: 'up', migrations: 'applied', replication: 'streaming' });

  // Cut realtime's replication connection: until it reconnects, /ready says so.
  let seen;
  const deadline = Date.now() + 10_000;
  while (!seen && Date.now() < deadline) {
    await pgQuery(cb.dbUrl, `select pg_terminate_backend(pid) from pg_stat_replication`);
    for (let i = 0; i < 20 && !seen; i++) {
      res = await fetch(`${cb.url}/ready`);
      if (res.status === 503) seen = await res.json();
      else await res.arrayBuffer();
      await sleep(10);
    }
  }
  assert.deepEqual(seen, { database: 'up', migrations: 'applied', replication: 'disconnected' });

  // It comes back by itself.
  const back = Date.now() + 15_000;
  while (Date.now() < back) {
    res = await fetch(`${cb.url}/ready`);
    if (res.status === 200) break;
    await res.arrayBuffer();
    await sleep(100);
  }
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { database: 'up', migrations: 'applied', replication: 'streaming' });

  res = await fetch(`${cb.url}/health`);
  assert.equal(res.status, 200);
});

test('--metrics-addr serves /metrics without a key', async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  const samples = parse(await res.text());
  assert.ok(sample(samples, 'craftbase_http_requests_total', { service: 'rest' }) > 0);
  // The API port's own routes are not served there.
  const rest = await fetch(`http://127.0.0.1:${metricsPort}/rest/v1/obs_items`);
  assert.equal(rest.status, 404);
});

test('CRAFTBASE_LOG_FORMAT=json writes JSON lines that carry no key, token or password', async () => {
  // Something for the log to say about a request carrying a key in its query.
  await fetch(`${cb.url}/rest/v1/obs_items?apikey=${cb.anonKey}`);
  await sleep(200);
  const lines = cb.stderr().split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length > 10, `only ${lines.length} log lines`);
  for (const line of lines) {
    let parsed;
    assert.doesNotThrow(() => {
      parsed = JSON.parse(line);
    }, `not JSON: ${line}`);
    assert.equal(typeof parsed.timestamp, 'string');
    assert.equal(typeof parsed.level, 'string');
  }
  assert.ok(lines.some((l) => JSON.parse(l).span?.path === '/rest/v1/obs_items'), 'request spans are logged');
  const text = cb.stderr();
  for (const secret of secrets.filter(Boolean)) {
    assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 8)}…) is in the log`);
  }
});
