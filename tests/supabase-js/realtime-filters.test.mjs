// postgres_changes filters beyond comparisons, driven by supabase-js: like and ilike (wildcards,
// escapes, unicode, not.), several conditions ANDed, and the operators Supabase Realtime refuses
// (PostgREST's fts, cs) refused with its reasons. One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, clientAs, subscribed } from './lib/realtime.mjs';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
const clients = [];

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.rt_filt (id int primary key, n int, label text);
       grant select on public.rt_filt to anon, authenticated;
       alter publication supabase_realtime add table public.rt_filt`,
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

async function anon(options) {
  const c = await clientAs(cb, null, options);
  clients.push(c);
  return c;
}

describe('postgres_changes filters', () => {
  test('like, ilike, not. and several conditions receive exactly the matching inserts', async () => {
    const c = await anon();
    const cases = {
      'label=like.a%': [1, 8],
      'label=ilike.%B%': [1, 2, 3],
      'label=like."50\\%"': [4],
      'label=like.5_0': [5],
      'label=not.ilike.a%': [3, 4, 5, 6, 7],
      'n=gt.1,label=like.%é%': [7],
      'n=is.null': [6],
      'n=gte.2, n=lte.4 ,label=ilike.%X%': [3],
    };
    const inboxes = {};
    let ch = c.channel('filters-like');
    for (const filter of Object.keys(cases)) {
      inboxes[filter] = new Inbox();
      ch = ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_filt', filter }, inboxes[filter].push);
    }
    await subscribed(ch);
    await pgQuery(
      cb.dbUrl,
      `insert into rt_filt (id, n, label) values
         (1, 1, 'abc'), (2, 2, 'Abc'), (3, 3, 'xbx'), (4, 4, '50%'),
         (5, 5, '500'), (6, null, 'été'), (7, 2, 'créé'), (8, 1, 'aé')`,
    );
    for (const [filter, expected] of Object.entries(cases)) {
      await inboxes[filter].next(() => inboxes[filter].items.length >= expected.length);
    }
    // A marker row every filter but one rejects: once it has arrived, nothing else is in flight.
    await pgQuery(cb.dbUrl, `insert into rt_filt (id, n, label) values (99, 99, 'zz-marker')`);
    await inboxes['label=not.ilike.a%'].next((m) => m.new.id === 99);
    for (const [filter, expected] of Object.entries(cases)) {
      const ids = inboxes[filter].items.map((m) => m.new.id).filter((id) => id !== 99);
      assert.deepEqual(ids.sort((a, b) => a - b), expected, `filter ${filter}`);
    }
  });

  for (const [filter, reason] of [
    // match, imatch and isdistinct are accepted since session 20 (realtime-filters-current.test.mjs).
    ['label=fts.hey', 'Error parsing `filter` params: ["fts", "hey"]'],
    ['label=cs.{a}', 'Error parsing `filter` params: ["cs", "{a}"]'],
    ['label=not.fts.hey', 'Error parsing `filter` params: not.fts is not a supported operator'],
    ['n=eq.1,,n=eq.2', 'Error parsing `filter` params: filter must not contain empty segments (check for extra commas)'],
    ['label=like."x', 'Error parsing `filter` params: unmatched double-quote in filter value'],
  ]) {
    test(`${filter} is refused as Supabase refuses it`, async () => {
      const c = await anon();
      const system = new Inbox();
      const ch = c
        .channel(`refused-${filter}`)
        .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_filt', filter }, () => {})
        .on('system', {}, system.push);
      await subscribed(ch);
      const msg = await system.next((m) => m.status === 'error');
      assert.equal(msg.message, reason);
    });
  }
});
