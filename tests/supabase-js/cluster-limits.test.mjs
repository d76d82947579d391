// Cluster mode (issue 16, item 4): two craftbase nodes on one PostgreSQL and one NATS
// (`CRAFTBASE_NATS_URL`) share auth's rate limits: a limit of 30 sign-in attempts holds across
// both, however the load balancer spreads them. And a node whose NATS is unreachable does not
// start alone.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { craftbaseBin, createClient, freePort, hermeticEnv, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { startCluster } from './lib/cluster.mjs';

const run = promisify(execFile);
const PASSWORD = 'correct-horse-battery';
const LIMIT = 30;
const JWT_SECRET = 'cluster-test-secret-of-at-least-thirty-two-chars';

let cluster;
let pg;
/** @type {Awaited<ReturnType<typeof startCraftbase>>[]} */
let nodes = [];

before(
  async () => {
    cluster = await startCluster({
      JWT_SECRET,
      CRAFTBASE_AUTH_TRUSTED_PROXIES: '1',
      GOTRUE_RATE_LIMIT_TOKEN_REFRESH: String(LIMIT),
    });
    ({ pg, nodes } = cluster);
    await cluster.startNodes(['node-a', 'node-b']);
  },
  { timeout: 240_000 },
);

after(
  async () => {
    try {
      for (const cb of nodes) await cb.stop();
    } finally {
      if (cluster) await cluster.stop();
    }
  },
  { timeout: 60_000 },
);

test('both nodes joined the cluster', () => {
  for (const [i, cb] of nodes.entries()) {
    const log = cb.stdout() + cb.stderr();
    assert.match(log, /cluster mode: joined/, `node ${i} did not join:${cb.diagnostics(20)}`);
  }
});

test(`a rate limit of ${LIMIT} holds across both nodes`, async () => {
  const email = `cluster-${Date.now()}@example.com`;
  const { error } = await serviceClient(nodes[0]).auth.admin.createUser({ email, password: PASSWORD, email_confirm: true });
  assert.equal(error, null);
  // One client address, its sign-ins spread over the two nodes by a round-robin balancer.
  const ip = '203.0.113.77';
  const outcomes = [];
  for (let i = 0; i < LIMIT + 10; i++) {
    const cb = nodes[i % 2];
    const client = createClient(cb.url, cb.anonKey, {
      auth: { autoRefreshToken: false, persistSession: false },
      global: { headers: { 'X-Forwarded-For': ip } },
    });
    const { error } = await client.auth.signInWithPassword({ email, password: PASSWORD });
    outcomes.push(error ? `${error.status} ${error.code}` : 'ok');
  }
  // Counted per node, each would allow 30 and all 40 would pass.
  assert.deepEqual(outcomes, [...Array(LIMIT).fill('ok'), ...Array(10).fill('429 over_request_rate_limit')]);
});

test('a node whose NATS is unreachable stops at start-up, naming the server but not its password', { timeout: 120_000 }, async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-nonats-'));
  const deadPort = await freePort();
  try {
    const env = {
      ...hermeticEnv(),
      DATABASE_URL: pg.url,
      JWT_SECRET,
      CRAFTBASE_NATS_URL: `nats://admin:hunter2@127.0.0.1:${deadPort}`,
    };
    const args = ['start', '--data-dir', dataDir, '--port', String(await freePort()), '--project-dir', path.join(dataDir)];
    const failed = await run(craftbaseBin(), args, { env, timeout: 90_000 }).then(
      () => null,
      (e) => e,
    );
    assert.ok(failed, 'craftbase started without its NATS');
    assert.notEqual(failed.code, 0);
    const out = `${failed.stdout}${failed.stderr}`;
    assert.match(out, new RegExp(`127\\.0\\.0\\.1:${deadPort}`));
    assert.doesNotMatch(out, /hunter2/);
  } finally {
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
