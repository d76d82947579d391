// Realtime in cluster mode (issue 16): RLS-checked postgres_changes deliveries per second with
// 1, 2 and 3 craftbase nodes on one PostgreSQL and one NATS, against the same work on one node
// without NATS (the baseline measured in the same run), with CPU per delivery for each node, for
// NATS and for PostgreSQL (from /proc); then the failover gap: a steady insert rate while the
// decoding node is SIGKILLed, and the longest pause subscribers on the surviving nodes see.
//
// Run from the repository root, after `cargo build --release -p craftbase` and
// `cd tests/supabase-js && npm ci` (it uses that folder's supabase-js and harness):
//   CRAFTBASE_BIN=$PWD/target/release/craftbase node bench/realtime_cluster.mjs
// BENCH_SUBSCRIBERS (default 300: distinct users, spread over the nodes), BENCH_EVENTS (20,000),
// BENCH_TX_ROWS (100), BENCH_NODES (e.g. "0,1,2,3"; 0 = one node without NATS),
// BENCH_FAILOVER_RUNS (3). Nothing else should run on the machine: PostgreSQL's CPU is the sum
// over every `postgres` process.

import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient, mintJwt, pgQuery, startCraftbase, withPg } from '../tests/supabase-js/lib/craftbase.mjs';
import { startNats } from '../tests/supabase-js/lib/nats.mjs';
import { startPgCluster } from '../tests/supabase-js/lib/pgcluster.mjs';

const SECRET = 'realtime-cluster-bench-secret-of-32-chars-or-more';
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 300);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const TX_ROWS = Number(process.env.BENCH_TX_ROWS ?? 100);
const NODES = (process.env.BENCH_NODES ?? '0,1,2,3').split(',').filter(Boolean).map(Number);
const FAILOVER_RUNS = Number(process.env.BENCH_FAILOVER_RUNS ?? 3);
const TICK = 100; // clock ticks per second in /proc

function ticks(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return 0;
  }
}

function pidsNamed(name) {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** CPU seconds so far of each node, NATS and PostgreSQL (every postgres process alive now). */
function cpu(nodes) {
  const sum = (pids) => pids.reduce((s, p) => s + ticks(p), 0) / TICK;
  return {
    nodes: nodes.map((n) => ticks(n.child.pid) / TICK),
    nats: sum(pidsNamed('nats-server')),
    postgres: sum(pidsNamed('postgres')),
  };
}

const SETUP_SQL = `
  create table if not exists public.bench_events (
    id bigint generated always as identity primary key,
    user_id uuid not null,
    body text not null,
    sent_at bigint not null
  );
  alter table public.bench_events enable row level security;
  drop policy if exists own on public.bench_events;
  create policy own on public.bench_events for select to authenticated using (user_id = auth.uid());
  grant select on public.bench_events to authenticated;
  do $$ begin
    if not exists (select 1 from pg_publication_tables where tablename = 'bench_events') then
      alter publication supabase_realtime add table public.bench_events;
    end if;
  end $$;`;

/** Starts `count` nodes (0: one node without NATS) on `pg`. */
async function startNodes(pg, nats, count) {
  const env = {
    DATABASE_URL: pg.url,
    JWT_SECRET: SECRET,
    // Three nodes' pools within the server's max_connections.
    PGRST_DB_POOL: '5',
    GOTRUE_DB_MAX_POOL_SIZE: '3',
    CRAFTBASE_REALTIME_POOL_SIZE: '8',
    RUST_LOG: 'warn',
  };
  if (count > 0) env.CRAFTBASE_NATS_URL = nats.url;
  const nodes = [];
  for (let i = 0; i < Math.max(count, 1); i++) {
    nodes.push(await startCraftbase({ env: { ...env, CRAFTBASE_NODE_ID: `bench-${i}` } }));
  }
  return nodes;
}

/** One supabase-js client per user, round-robin over the nodes, subscribed to its own rows. */
async function subscribe(nodes, users, onEvent) {
  const clients = [];
  const joins = [];
  users.forEach((user, i) => {
    const node = nodes[i % nodes.length];
    const jwt = mintJwt(SECRET, { sub: user, role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600 });
    const client = createClient(node.url, node.anonKey, { global: { headers: { Authorization: `Bearer ${jwt}` } } });
    client.realtime.setAuth(jwt);
    const channel = client
      .channel(`events-${i}`)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'bench_events' }, (p) =>
        onEvent(i % nodes.length, p.new),
      );
    joins.push(
      new Promise((resolve, reject) =>
        channel.subscribe((status, err) => {
          if (status === 'SUBSCRIBED') resolve();
          else if (status !== 'CLOSED') reject(new Error(`${status} ${err?.message ?? ''}`));
        }),
      ),
    );
    clients.push(client);
  });
  await Promise.all(joins);
  return clients;
}

async function closeAll(clients) {
  await Promise.all(clients.map((c) => c.removeAllChannels()));
}

/** Inserts `events` rows owned by `users`, `TX_ROWS` per transaction, as fast as one connection goes. */
async function write(pg, users, events) {
  await withPg(pg.url, async (c) => {
    for (let done = 0; done < events; done += TX_ROWS) {
      const n = Math.min(TX_ROWS, events - done);
      await c.query(
        `insert into public.bench_events (user_id, body, sent_at)
         select ($1::uuid[])[1 + (g % $2)], 'event ' || g, $3 from generate_series($4::int, $5::int) g`,
        [users, users.length, Date.now(), done, done + n - 1],
      );
    }
  });
}

async function waitFor(cond, ms) {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(20);
  return cond();
}

async function throughput(pg, nats, count, users) {
  await pgQuery(pg.url, 'truncate public.bench_events');
  const nodes = await startNodes(pg, nats, count);
  let received = 0;
  let last = 0;
  const clients = await subscribe(nodes, users, () => {
    received++;
    last = Date.now();
  });
  await sleep(1000);
  // Warm-up: every node's catalog and probes.
  await write(pg, users, users.length);
  await waitFor(() => received >= users.length, 30_000);
  received = 0;
  const before = cpu(nodes);
  const started = Date.now();
  await write(pg, users, EVENTS);
  const writeMs = Date.now() - started;
  const complete = await waitFor(() => received >= EVENTS, 120_000);
  await sleep(300);
  const after = cpu(nodes);
  const seconds = (last - started) / 1000;
  const result = {
    nodes: count === 0 ? '1, no NATS' : String(count),
    deliveries: received,
    complete: complete && received === EVENTS,
    deliveriesPerSecond: Math.round(received / seconds),
    writeOnlyPerSecond: Math.round(EVENTS / (writeMs / 1000)),
    cpuPerDeliveryUs: after.nodes.map((t, i) => Math.round(((t - before.nodes[i]) * 1e6) / received)),
    natsUsPerDelivery: Math.round(((after.nats - before.nats) * 1e6) / received),
    postgresUsPerDelivery: Math.round(((after.postgres - before.postgres) * 1e6) / received),
  };
  await closeAll(clients);
  for (const n of nodes) await n.stop();
  return result;
}

/** The longest pause in deliveries at the surviving nodes while the decoder is killed. */
async function failover(pg, nats, users) {
  await pgQuery(pg.url, 'truncate public.bench_events');
  const nodes = await startNodes(pg, nats, 3);
  const seen = nodes.map(() => []);
  const clients = await subscribe(nodes, users, (node, row) => seen[node].push([Date.now(), Number(row.id)]));
  await sleep(1000);
  let decoder = -1;
  for (let tries = 0; decoder < 0 && tries < 100; tries++) {
    const states = await Promise.all(nodes.map(async (n) => (await fetch(`${n.url}/ready`)).json()));
    decoder = states.findIndex((s) => s.cluster === 'decoding');
    if (decoder < 0) await sleep(100);
  }
  if (decoder < 0) throw new Error('no node decodes');
  let stop = false;
  let written = 0;
  const writer = withPg(pg.url, async (c) => {
    while (!stop) {
      await c.query(
        `insert into public.bench_events (user_id, body, sent_at) values ($1, 'tick', $2)`,
        [users[written % users.length], Date.now()],
      );
      written++;
      await sleep(10);
    }
  });
  await sleep(2000);
  const killedAt = Date.now();
  await nodes[decoder].kill9();
  await sleep(8000);
  stop = true;
  await writer;
  const survivors = nodes.map((_, i) => i).filter((i) => i !== decoder);
  // Only rows owned by subscribers of surviving nodes reach them.
  const rows = (await pgQuery(pg.url, 'select user_id, id, sent_at from public.bench_events order by id')).filter((r) =>
    survivors.includes(users.indexOf(r.user_id) % nodes.length),
  );
  const expected = rows.length;
  await waitFor(() => survivors.reduce((s, i) => s + seen[i].length, 0) >= expected, 20_000);
  const times = survivors.flatMap((i) => seen[i]).sort((a, b) => a[0] - b[0]);
  const ids = survivors.flatMap((i) => seen[i].map(([, id]) => id));
  let gap = 0;
  for (let k = 1; k < times.length; k++) {
    if (times[k][0] >= killedAt - 1000) gap = Math.max(gap, times[k][0] - times[k - 1][0]);
  }
  const got = new Set(ids);
  const missing = rows.filter((r) => !got.has(Number(r.id))).map((r) => ({ id: r.id, afterKillMs: Number(r.sent_at) - killedAt }));
  const result = {
    missing,
    decoder,
    written,
    expected,
    received: ids.length,
    duplicates: ids.length - new Set(ids).size,
    gapMs: gap,
  };
  if (missing.length && process.env.BENCH_DEBUG) {
    for (const i of survivors) console.error(nodes[i].diagnostics().split("\n").filter((l) => /WARN|ERROR/.test(l)).join("\n"));
  }
  await closeAll(clients);
  for (const [i, n] of nodes.entries()) if (i !== decoder) await n.stop();
  await nodes[decoder].stop().catch(() => {});
  return result;
}

// A pg client's connection error surfaces as an 'error' event with no listener; report it.
process.on('uncaughtException', (e) => console.error(`error: ${e.message}`));

const pg = await startPgCluster();
const nats = await startNats();
try {
  await pgQuery(pg.url, 'select 1');
  // The first node applies the migrations; the table is the bench's own.
  const first = await startNodes(pg, nats, 0);
  await pgQuery(pg.url, SETUP_SQL);
  for (const n of first) await n.stop();
  const users = Array.from({ length: SUBSCRIBERS }, () => randomUUID());
  console.log(`${SUBSCRIBERS} subscribers (distinct users), ${EVENTS} events, ${TX_ROWS} per transaction`);
  for (const count of NODES) {
    console.log(JSON.stringify(await throughput(pg, nats, count, users)));
  }
  for (let run = 0; run < FAILOVER_RUNS; run++) {
    console.log(JSON.stringify({ failover: await failover(pg, nats, users) }));
  }
} finally {
  await nats.stop();
  await pg.stop();
}
