// A bounded hostile run against realtime with only the anon key, reporting craftbase's RSS
// (VmRSS from /proc) before, at the peak and after the sockets are gone. Not a test: numbers to
// read (crates/realtime/README.md), never a timed assertion.
//
//   CRAFTBASE_BIN=target/release/craftbase node tests/supabase-js/tools/realtime-flood.mjs
//
// Rounds of: 100 sockets joining 100 distinct topics each with a presence track; 20 senders
// broadcasting 200 kB payloads to a topic of 100 members, some of which stop reading; 50 sockets
// sending 1 MB frames; joins with 100 postgres_changes bindings of 100-value `in` filters.

import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { WebSocket } from 'ws';

import { pgQuery, startCraftbase } from '../lib/craftbase.mjs';

const ROUNDS = Number(process.env.FLOOD_ROUNDS ?? 3);
// Which parts to run (comma-separated): topics, crowd, oversized, bindings.
const PARTS = new Set((process.env.FLOOD_PARTS ?? 'topics,crowd,oversized,bindings').split(','));

function rss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024;
}

function open(cb) {
  const ws = new WebSocket(`${cb.url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${cb.anonKey}&vsn=1.0.0`);
  ws.on('error', () => {});
  ws.on('message', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve(ws));
    ws.once('close', () => resolve(ws));
  });
}

const frame = (topic, event, payload, ref) => JSON.stringify({ topic, event, payload, ref, join_ref: ref });

async function round(cb, r, peak) {
  const sockets = [];
  // Many topics, each with a presence.
  for (let s = 0; s < (PARTS.has('topics') ? 100 : 0); s++) {
    const ws = await open(cb);
    sockets.push(ws);
    for (let t = 0; t < 100; t++) {
      const topic = `realtime:r${r}-s${s}-t${t}`;
      ws.send(frame(topic, 'phx_join', { config: { presence: { key: `k${s}` } } }, `${t}`));
      ws.send(frame(topic, 'presence', { type: 'presence', event: 'track', payload: { blob: 'x'.repeat(1000) } }, `${t}`));
    }
  }
  await sleep(2000);
  peak.value = Math.max(peak.value, rss(cb.child.pid));
  // Big broadcasts to a crowded topic, with readers that stopped reading.
  const crowd = [];
  for (let i = 0; i < (PARTS.has('crowd') ? 100 : 0); i++) {
    const ws = await open(cb);
    ws.send(frame('realtime:crowd', 'phx_join', { config: {} }, 'j'));
    if (i % 5 === 0) ws._socket?.pause();
    crowd.push(ws);
  }
  await sleep(500);
  const big = { type: 'broadcast', event: 'big', payload: { x: 'y'.repeat(200_000) } };
  for (let i = 0; i < (PARTS.has('crowd') ? 20 : 0); i++) {
    for (let k = 0; k < 5; k++) crowd[i * 5 + 1].send(frame('realtime:crowd', 'broadcast', big, `b${k}`));
  }
  await sleep(3000);
  peak.value = Math.max(peak.value, rss(cb.child.pid));
  // Oversized frames.
  const oversized = 'z'.repeat(1_000_000);
  for (let i = 0; i < (PARTS.has('oversized') ? 50 : 0); i++) {
    const ws = await open(cb);
    ws.send(frame('realtime:big', 'broadcast', { type: 'broadcast', event: 'e', payload: { oversized } }, '1'));
    sockets.push(ws);
  }
  // Joins with many bindings and long filters.
  const values = Array.from({ length: 100 }, (_, i) => `value-${i}-${'q'.repeat(20)}`).join(',');
  const bindings = Array.from({ length: 100 }, () => ({
    event: '*',
    schema: 'public',
    table: 'flood_items',
    filter: `label=in.(${values})`,
  }));
  for (let i = 0; i < (PARTS.has('bindings') ? 20 : 0); i++) {
    const ws = await open(cb);
    sockets.push(ws);
    ws.send(frame(`realtime:db-${r}-${i}`, 'phx_join', { config: { postgres_changes: bindings } }, '1'));
  }
  await sleep(3000);
  peak.value = Math.max(peak.value, rss(cb.child.pid));
  for (const ws of [...sockets, ...crowd]) ws.terminate();
}

const cb = await startCraftbase();
try {
  await pgQuery(
    cb.dbUrl,
    `create table public.flood_items (id int primary key, label text);
     grant select on public.flood_items to anon;
     alter publication supabase_realtime add table public.flood_items`,
  );
  await sleep(5000);
  const start = rss(cb.child.pid);
  const peak = { value: start };
  const afterRound = [];
  for (let r = 0; r < ROUNDS; r++) {
    await round(cb, r, peak);
    await sleep(10_000);
    afterRound.push(rss(cb.child.pid));
  }
  await sleep(20_000);
  const settled = rss(cb.child.pid);
  const fmt = (n) => `${n.toFixed(1)} MiB`;
  console.log(
    JSON.stringify({
      binary: cb.bin,
      rounds: ROUNDS,
      parts: [...PARTS],
      start: fmt(start),
      peak: fmt(peak.value),
      after_each_round: afterRound.map(fmt),
      settled_30s: fmt(settled),
      open_fds_after: fs.readdirSync(`/proc/${cb.child.pid}/fd`).length,
    }),
  );
} finally {
  await cb.stop();
}
