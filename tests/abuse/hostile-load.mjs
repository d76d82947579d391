// A bounded hostile-load run against one craftbase, with only the anon key for the attackers:
// oversized and flooding websocket frames, join storms, slow readers that stop reading, deep
// embeds and long filters over REST, long realtime filters. Meanwhile an honest supabase-js user
// reads over REST (latency recorded) and receives her own inserts over postgres_changes (each
// must arrive exactly once). The server's RSS is sampled from /proc throughout.
//
// It reports; it does not judge time. `run()` returns the figures; the caller decides what to
// assert (abuse.test.mjs asserts delivery and that the server is alive; BENCHMARKS.md records
// the figures of a longer run).
//
//   node tests/abuse/hostile-load.mjs [seconds]      (default 60; needs `cargo build` first)

import { setTimeout as sleep } from 'node:timers/promises';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { execFile } from 'node:child_process';
import path from 'node:path';
import { pgQuery, startCraftbase, withPg } from '../supabase-js/lib/craftbase.mjs';
import { Inbox, clientAs, createUser, subscribed, userToken } from '../supabase-js/lib/realtime.mjs';

const SCHEMA = `
  create table public.abuse_feed (id bigint generated always as identity primary key,
    owner uuid not null, body text not null default '');
  alter table public.abuse_feed enable row level security;
  create policy "own rows" on public.abuse_feed for select to authenticated using (owner = auth.uid());
  grant select on public.abuse_feed to anon, authenticated;
  alter publication supabase_realtime add table public.abuse_feed;
  create table public.abuse_node (id int primary key, parent int references public.abuse_node(id));
  grant select on public.abuse_node to anon, authenticated;
  insert into public.abuse_node select g, nullif(g - 1, 0) from generate_series(1, 50) g;`;

/** Resident set size of pid in MiB (VmRSS), or null once it is gone. */
async function rssMiB(pid) {
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(status.match(/VmRSS:\s+(\d+)/)[1]);
    return kb / 1024;
  } catch {
    return null;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Runs the hostile load for `seconds` against a fresh craftbase (or `cb` if given).
 * Returns {honest: {...}, attack: {...}, rss: {...}}.
 */
export async function run({ seconds = 60, cb: given, log = () => {} } = {}) {
  const cb = given ?? (await startCraftbase());
  const clients = [];
  try {
    await pgQuery(cb.dbUrl, SCHEMA);
    const user = await createUser(cb);
    const honest = await clientAs(cb, userToken(cb, user.id));
    clients.push(honest);
    const inbox = new Inbox();
    const channel = honest
      .channel('honest-feed')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'abuse_feed' }, (m) => inbox.push(m.new.id));
    await subscribed(channel);

    const pid = cb.pid;
    const rss = { start: await rssMiB(pid), peak: 0, samples: [] };
    const sampler = setInterval(async () => {
      const v = await rssMiB(pid);
      if (v !== null) {
        rss.peak = Math.max(rss.peak, v);
        rss.samples.push(Math.round(v));
      }
    }, 1_000);

    const until = Date.now() + seconds * 1_000;
    const attackersScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'attackers.mjs');
    const attack = new Promise((resolve, reject) => {
      execFile(process.execPath, [attackersScript, cb.url, cb.anonKey, String(seconds)], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`attackers failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout));
      });
    });

    // The honest user: a REST read every 50 ms, and an insert of her own every 100 ms.
    const latencies = [];
    const inserted = [];
    let restFailures = 0;
    const reader = (async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        const { error } = await honest.from('abuse_feed').select('id, body').order('id', { ascending: false }).limit(20);
        latencies.push(performance.now() - t0);
        if (error) restFailures++;
        await sleep(50);
      }
    })();
    const writer = withPg(cb.dbUrl, async (db) => {
      while (Date.now() < until) {
        const { rows } = await db.query('insert into public.abuse_feed (owner, body) values ($1, $2) returning id', [user.id, 'honest']);
        inserted.push(Number(rows[0].id));
        await sleep(100);
      }
    });
    const [stats] = await Promise.all([attack, reader, writer]);
    log(`attack over after ${seconds} s; waiting for deliveries`);

    // Every change of hers arrives, once.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !inserted.every((id) => inbox.items.includes(id))) await sleep(200);
    await sleep(2_000);
    const counts = new Map();
    for (const id of inbox.items) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missing = inserted.filter((id) => !counts.has(id));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    const foreign = [...counts.keys()].filter((id) => !inserted.includes(id));

    // Memory once the attackers are gone.
    await sleep(10_000);
    clearInterval(sampler);
    rss.end = await rssMiB(pid);
    const alive = (await fetch(`${cb.url}/health`).catch(() => null))?.status === 200;

    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      seconds,
      alive,
      honest: {
        reads: latencies.length,
        readFailures: restFailures,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1),
        inserted: inserted.length,
        received: inbox.items.length,
        missing,
        duplicated,
        foreign,
      },
      attack: stats,
      rss,
    };
  } finally {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    if (!given) await cb.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = Number(process.argv[2] ?? 60);
  const result = await run({ seconds, log: (m) => console.error(m) });
  const { samples, ...rss } = result.rss;
  console.log(JSON.stringify({ ...result, rss: { ...rss, samples: samples.join(' ') } }, null, 2));
}
