// postgres_changes filters as current Supabase Realtime reads them (issue 13 item 3), driven by
// supabase-js: `match` and `imatch` (PostgreSQL regular expressions, evaluated by a bounded
// linear-time engine), `isdistinct` (NULL is a value), each also after `not.`; a bad pattern and a
// pattern on a non-text column refused at join; a pattern that backtracks exponentially elsewhere
// does not stall delivery; a binding's `select` column list. One craftbase for the file.

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
      `create table public.rt_cur (id int primary key, n int, label text, code varchar(20));
       grant select on public.rt_cur to anon, authenticated;
       alter publication supabase_realtime add table public.rt_cur`,
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

async function anon() {
  const c = await clientAs(cb, null);
  clients.push(c);
  return c;
}

describe('current filters', () => {
  test('match, imatch, isdistinct and their not. receive exactly the matching inserts', async () => {
    const c = await anon();
    const cases = {
      'label=match.^post-[0-9]+$': [1],
      'label=imatch.^POST-': [1, 2],
      'label=not.match.^post-': [2, 3, 5],
      'code=match.\\yab\\y': [3],
      'label=match."a,b"': [5],
      'n=isdistinct.1': [2, 3, 4],
      'n=not.isdistinct.1': [1, 5],
    };
    const inboxes = {};
    let ch = c.channel('filters-current');
    for (const filter of Object.keys(cases)) {
      inboxes[filter] = new Inbox();
      ch = ch.on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_cur', filter }, inboxes[filter].push);
    }
    await subscribed(ch);
    await pgQuery(
      cb.dbUrl,
      `insert into rt_cur (id, n, label, code) values
         (1, 1, 'post-12', 'x'), (2, 2, 'Post-x', 'y'), (3, null, 'other', 'an ab c'),
         (4, 3, null, 'zab'), (5, 1, 'xa,b', null)`,
    );
    for (const [filter, expected] of Object.entries(cases)) {
      await inboxes[filter].next(() => inboxes[filter].items.length >= expected.length);
    }
    // A marker row that `n=isdistinct.1` accepts: once it has arrived, nothing else is in flight.
    await pgQuery(cb.dbUrl, `insert into rt_cur (id, n, label) values (99, 99, 'zz-marker')`);
    await inboxes['n=isdistinct.1'].next((m) => m.new.id === 99);
    for (const [filter, expected] of Object.entries(cases)) {
      const ids = inboxes[filter].items.map((m) => m.new.id).filter((id) => id !== 99);
      assert.deepEqual(ids.sort((a, b) => a - b), expected, `filter ${filter}`);
    }
  });

  test('a pattern that backtracks exponentially elsewhere costs one pass over the value', async () => {
    const c = await anon();
    const inbox = new Inbox();
    const ch = c
      .channel('filters-hostile')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_cur', filter: 'label=match.(a+)+$' }, inbox.push)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_cur', filter: 'id=eq.201' }, inbox.push);
    await subscribed(ch);
    const started = Date.now();
    await pgQuery(cb.dbUrl, `insert into rt_cur (id, label) values (200, repeat('a', 200000) || '!'), (201, 'marker')`);
    // Backtracking would take longer than anyone waits on 200,000 characters; a linear match takes
    // milliseconds here, but a loaded CI machine once took 14 s to deliver, so the bound is loose.
    await inbox.next((m) => m.new.id === 201, 60_000);
    assert.ok(Date.now() - started < 45_000, 'delivered without stalling');
    assert.deepEqual(inbox.items.map((m) => m.new.id), [201], 'the hostile value does not match');
  });

  test("a binding's select list: only those columns and the primary key, next to a binding without one", async () => {
    const c = await anon();
    const [narrow, full] = [new Inbox(), new Inbox()];
    const ch = c
      .channel('filters-select')
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_cur', filter: 'id=eq.300', select: ['label'] }, narrow.push)
      .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'rt_cur', filter: 'id=eq.300' }, full.push);
    await subscribed(ch);
    await pgQuery(cb.dbUrl, `insert into rt_cur (id, n, label, code) values (300, 7, 'sel', 'c')`);
    const [a, b] = [await narrow.next(), await full.next()];
    assert.deepEqual(a.new, { id: 300, label: 'sel' });
    assert.deepEqual(b.new, { id: 300, n: 7, label: 'sel', code: 'c' });
  });

  for (const [binding, reason] of [
    [{ table: 'rt_cur', select: 'label' }, 'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]'],
    [{ table: '*', select: ['id'] }, 'Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.'],
    [{ table: 'rt_cur', select: ['nope'] }, 'Error parsing `select` params: invalid column for select nope'],
  ]) {
    test(`select ${JSON.stringify(binding.select)} on ${binding.table} is refused at join`, async () => {
      const c = await anon();
      const system = new Inbox();
      const ch = c
        .channel(`refused-select-${binding.table}-${binding.select}`)
        .on('postgres_changes', { event: '*', schema: 'public', ...binding }, () => {})
        .on('system', {}, system.push);
      await subscribed(ch);
      const msg = await system.next((m) => m.status === 'error');
      assert.equal(msg.message, reason);
    });
  }

  for (const [filter, reason] of [
    ['label=match.(a', /^Error parsing `filter` params: invalid regular expression for match filter: /],
    ['label=imatch.(a)\\1', /^Error parsing `filter` params: invalid regular expression for imatch filter: /],
    ['n=match.^1', /^Error parsing `filter` params: operator match requires a text-compatible column type, got integer$/],
  ]) {
    test(`${filter} is refused at join`, async () => {
      const c = await anon();
      const system = new Inbox();
      const ch = c
        .channel(`refused-current-${filter}`)
        .on('postgres_changes', { event: '*', schema: 'public', table: 'rt_cur', filter }, () => {})
        .on('system', {}, system.push);
      await subscribed(ch);
      const msg = await system.next((m) => m.status === 'error');
      assert.match(msg.message, reason);
    });
  }
});
