// The attackers of the hostile-load run, in a process of their own so that their work does not
// slow the honest client's event loop: each loops until the deadline with only the anon key,
// reconnecting when the server drops it, and counts what it sent and how it was answered.
//
//   node tests/abuse/attackers.mjs <api url> <anon key> <seconds>   (prints the counts as JSON)

import { setTimeout as sleep } from 'node:timers/promises';

import { WebSocket } from '../supabase-js/node_modules/ws/wrapper.mjs';

function socketUrl(cb) {
  return `${cb.url.replace(/^http/, 'ws')}/realtime/v1/websocket?apikey=${cb.anonKey}&vsn=1.0.0`;
}

/** Opens a raw anon websocket; errors and closes are counted, never thrown. */
function rawSocket(cb, stats) {
  const ws = new WebSocket(socketUrl(cb), { maxPayload: 64 * 1024 * 1024 });
  ws.on('error', () => stats.socketErrors++);
  ws.on('close', (code) => {
    stats.closes[code] = (stats.closes[code] ?? 0) + 1;
  });
  return new Promise((resolve) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', () => resolve(null));
    ws.once('close', () => resolve(null));
  });
}

const frame = (topic, event, payload, ref) => JSON.stringify({ topic, event, payload, ref: String(ref), join_ref: String(ref) });

/** Each attacker loops until `until`, reconnecting when the server drops it. */
export const attackers = {
  /** Text frames of 4 MiB (above any sane payload limit). */
  async oversized(cb, until, stats) {
    const big = 'x'.repeat(4 * 1024 * 1024);
    while (Date.now() < until) {
      const ws = await rawSocket(cb, stats);
      if (!ws) { await sleep(50); continue; }
      try {
        ws.send(frame('realtime:big', 'broadcast', { type: 'broadcast', event: 'e', payload: { big } }, 1));
        stats.oversizedSent++;
      } catch { /* closed under us */ }
      await sleep(200);
      ws.terminate();
    }
  },

  /** Joins as fast as it can, then broadcasts on joined and never-joined topics. */
  async flood(cb, until, stats) {
    while (Date.now() < until) {
      const ws = await rawSocket(cb, stats);
      if (!ws) { await sleep(50); continue; }
      let ref = 0;
      const closed = new Promise((r) => ws.once('close', r));
      const stop = Math.min(until, Date.now() + 5_000);
      while (Date.now() < stop && ws.readyState === WebSocket.OPEN) {
        for (let i = 0; i < 50 && ws.readyState === WebSocket.OPEN; i++) {
          ref++;
          ws.send(frame(`realtime:flood-${ref % 500}`, 'phx_join', { config: { broadcast: { self: true } } }, ref));
          ws.send(frame(`realtime:flood-${ref % 500}`, 'broadcast', { type: 'broadcast', event: 'e', payload: { ref } }, ref));
          ws.send(frame(`realtime:never-joined-${ref}`, 'broadcast', { type: 'broadcast', event: 'e', payload: { ref } }, ref));
          stats.floodFrames += 3;
        }
        await sleep(5);
      }
      ws.terminate();
      await Promise.race([closed, sleep(100)]);
    }
  },

  /** Joins the topic the flooders broadcast on and stops reading: the server must drop it, not buffer forever. */
  async slowReader(cb, until, stats) {
    while (Date.now() < until) {
      const ws = await rawSocket(cb, stats);
      if (!ws) { await sleep(50); continue; }
      ws.send(frame('realtime:slow', 'phx_join', { config: { broadcast: { self: false } } }, 1));
      await sleep(100);
      ws._socket.pause();
      const closed = new Promise((r) => ws.once('close', r));
      await Promise.race([closed, sleep(Math.max(0, until - Date.now()))]);
      stats.slowReaderRounds++;
      ws.terminate();
    }
  },

  /** Broadcasts big-ish messages to the slow readers' topic. */
  async slowFeeder(cb, until, stats) {
    const body = 'y'.repeat(60 * 1024);
    while (Date.now() < until) {
      const ws = await rawSocket(cb, stats);
      if (!ws) { await sleep(50); continue; }
      ws.send(frame('realtime:slow', 'phx_join', { config: { broadcast: { self: false } } }, 1));
      await sleep(100);
      let n = 0;
      while (Date.now() < until && ws.readyState === WebSocket.OPEN) {
        ws.send(frame('realtime:slow', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: n++, body } }, 2));
        stats.slowFeedFrames++;
        if (n % 20 === 0) await sleep(10);
      }
      ws.terminate();
    }
  },

  /** postgres_changes joins with enormous filters and many bindings. */
  async longFilters(cb, until, stats) {
    const list = Array.from({ length: 20_000 }, (_, i) => i).join(',');
    while (Date.now() < until) {
      const ws = await rawSocket(cb, stats);
      if (!ws) { await sleep(50); continue; }
      const bindings = Array.from({ length: 3_000 }, () => ({ event: '*', schema: 'public', table: 'abuse_feed', filter: `id=in.(${list.slice(0, 2_000)})` }));
      ws.send(frame('realtime:long', 'phx_join', { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'abuse_feed', filter: `id=in.(${list})` }] } }, 1));
      ws.send(frame('realtime:many', 'phx_join', { config: { postgres_changes: bindings } }, 2));
      stats.longFilterJoins += 2;
      await sleep(300);
      ws.terminate();
    }
  },

  /** REST: deep embeds, huge select lists, long in-lists and or-trees, with the anon key. */
  async restAbuse(cb, until, stats) {
    let deep = 'id';
    for (let i = 0; i < 40; i++) deep = `id,abuse_node(${deep})`;
    const wide = Array.from({ length: 2_000 }, () => 'id').join(',');
    const inList = Array.from({ length: 5_000 }, (_, i) => i).join(',');
    const orTree = Array.from({ length: 2_000 }, (_, i) => `id.eq.${i}`).join(',');
    const urls = [
      `/rest/v1/abuse_node?select=${deep}`,
      `/rest/v1/abuse_node?select=${wide}`,
      `/rest/v1/abuse_node?id=in.(${inList})`,
      `/rest/v1/abuse_node?or=(${orTree})`,
      `/rest/v1/abuse_feed?body=fts.${encodeURIComponent('&&&')}`,
    ];
    let i = 0;
    while (Date.now() < until) {
      try {
        const res = await fetch(cb.url + urls[i++ % urls.length], { headers: { apikey: cb.anonKey }, signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        stats.restStatuses[res.status] = (stats.restStatuses[res.status] ?? 0) + 1;
      } catch {
        stats.restErrors++;
      }
    }
  },
};


/** Runs every attacker against {url, anonKey} for `seconds`; resolves with the counts. */
export async function attack(cb, seconds) {
  const stats = {
    oversizedSent: 0, floodFrames: 0, slowReaderRounds: 0, slowFeedFrames: 0, longFilterJoins: 0,
    socketErrors: 0, closes: {}, restStatuses: {}, restErrors: 0,
  };
  const until = Date.now() + seconds * 1_000;
  await Promise.all([
    attackers.oversized(cb, until, stats),
    attackers.flood(cb, until, stats),
    attackers.flood(cb, until, stats),
    attackers.slowReader(cb, until, stats),
    attackers.slowReader(cb, until, stats),
    attackers.slowFeeder(cb, until, stats),
    attackers.longFilters(cb, until, stats),
    attackers.restAbuse(cb, until, stats),
    attackers.restAbuse(cb, until, stats),
  ]);
  return stats;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [url, anonKey, seconds] = process.argv.slice(2);
  const stats = await attack({ url, anonKey }, Number(seconds));
  process.stdout.write(JSON.stringify(stats));
  process.exit(0);
}
