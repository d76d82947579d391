// REST gateway (/rest/v1) driven by the unmodified supabase-js client: Tool Connect Craft's
// calls for two users and anon under RLS, every filter and modifier of postgrest-js, writes,
// RPC, JWT abuse and injection attempts. One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { anonClient, createClient, mintJwt, nowSeconds, pgQuery, restRequest, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';

const ALICE = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';
const GITHUB = '1755f4f1-8698-5730-b75e-b8a7aafeaedc';
const SLACK = '26f78c32-a397-5060-8605-19f32502725e';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
let alice;
let bob;
let anon;
let service;

function userToken(sub, extra = {}) {
  return mintJwt(cb.jwtSecret, { sub, role: 'authenticated', aud: 'authenticated', exp: nowSeconds() + 3600, ...extra });
}

function clientWithToken(token) {
  return createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${token}` } } });
}

const rest = (path, options = {}) => restRequest(cb, path, options);

before(
  async () => {
    // .rollback() (Prefer: tx=rollback) counts only when PGRST_DB_TX_END allows an override.
    cb = await startCraftbase({ env: { PGRST_DB_TX_END: 'commit-allow-override' } });
    await pgQuery(
      cb.dbUrl,
      `insert into auth.users (id, aud, role, email, created_at, updated_at)
       values ('${ALICE}', 'authenticated', 'authenticated', 'alice@example.com', now(), now()),
              ('${BOB}', 'authenticated', 'authenticated', 'bob@example.com', now(), now())`,
    );
    await pgQuery(
      cb.dbUrl,
      `create table public.gw_items (
         id int primary key, name text not null, tags text[], data jsonb, n int default 7,
         r int4range, body text, seen_at timestamptz);
       insert into public.gw_items values
         (1, 'apple', '{red,fruit}', '{"k":"a","x":{"y":1}}', 10, '[1,5)', 'the quick brown fox', now()),
         (2, 'banana', '{yellow,fruit}', '{"k":"b"}', 20, '[5,10)', 'lazy dogs sleep', null),
         (3, 'carrot', '{orange,vegetable}', '{"k":"c"}', null, '[10,20)', 'a quick carrot', null),
         (4, 'Avocado', '{green,fruit}', '{"k":"d"}', 40, '[20,30)', 'green, creamy', null);
       create table public.gw_tags (id int primary key, label text not null);
       create table public.gw_item_tags (item_id int references public.gw_items, tag_id int references public.gw_tags, primary key (item_id, tag_id));
       insert into public.gw_tags values (1, 'sweet'), (2, 'crunchy');
       insert into public.gw_item_tags values (1, 1), (1, 2), (3, 2);
       create function public.gw_add(a int, b int default 1) returns int language sql immutable as $$ select a + b $$;
       create function public.gw_items_named(prefix text) returns setof public.gw_items language sql stable
         as $$ select * from public.gw_items where name like prefix || '%' $$;
       create function public.gw_whoami() returns text language sql stable as $$ select auth.uid()::text $$;
       create function public.gw_noop() returns void language sql as $$ select $$;
       create function public.gw_sum(vals int[]) returns int language sql immutable as $$ select sum(v)::int from unnest(vals) v $$;
       create table public.gw_audit (n int);
       notify pgrst, 'reload schema';`,
    );
    alice = clientWithToken(userToken(ALICE));
    bob = clientWithToken(userToken(BOB));
    anon = anonClient(cb);
    service = serviceClient(cb);
    await waitForSchema(async () => (await service.rpc('gw_add', { a: 1 })).status === 200);
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('Tool Connect Craft under RLS', () => {
  test('anon and users read the active catalogue, ordered', async () => {
    for (const client of [anon, alice, bob]) {
      const { data, error, status } = await client.from('connectors').select('*').eq('is_active', true).order('name');
      assert.equal(error, null);
      assert.equal(status, 200);
      assert.equal(data.length, 8);
      assert.deepEqual(
        data.map((c) => c.name),
        [...data.map((c) => c.name)].sort(),
      );
      const tools = await client.from('connector_tools').select('*');
      assert.equal(tools.data.length, 10);
    }
  });

  test('connect, run a tool, log and disconnect, each user on their own rows', async () => {
    for (const [client, uid] of [
      [alice, ALICE],
      [bob, BOB],
    ]) {
      const up = await client
        .from('user_connections')
        .upsert(
          { user_id: uid, connector_id: GITHUB, status: 'active', scopes: ['repo'], updated_at: new Date().toISOString() },
          { onConflict: 'user_id,connector_id' },
        );
      assert.equal(up.error, null);
      assert.equal(up.status, 201);
      const again = await client
        .from('user_connections')
        .upsert({ user_id: uid, connector_id: GITHUB, status: 'active', scopes: ['repo', 'read:user'] }, { onConflict: 'user_id,connector_id' });
      assert.equal(again.error, null);

      const job = await client
        .from('pipeline_jobs')
        .insert([{ user_id: uid, connector_id: GITHUB, type: 'tool_execution', status: 'queued', input: { q: uid } }])
        .select()
        .single();
      assert.equal(job.error, null);
      assert.equal(job.status, 201);
      assert.equal(job.data.input.q, uid);
      for (const message of ['Starting ...', 'Processing request...', '...completed']) {
        const ev = await client.from('pipeline_events').insert({ job_id: job.data.id, message });
        assert.equal(ev.error, null);
      }
      const running = await client.from('pipeline_jobs').update({ status: 'running', started_at: new Date().toISOString() }).eq('id', job.data.id);
      assert.equal(running.error, null);
      assert.equal(running.status, 204);
      const done = await client
        .from('pipeline_jobs')
        .update({ status: 'succeeded', output: { ok: true }, finished_at: new Date().toISOString() })
        .eq('id', job.data.id);
      assert.equal(done.error, null);
      const log = await client.from('action_logs').insert({ user_id: uid, connector_id: GITHUB, tool_name: 'search', latency_ms: 12 });
      assert.equal(log.error, null);
    }

    for (const [client, uid, other] of [
      [alice, ALICE, BOB],
      [bob, BOB, ALICE],
    ]) {
      const conns = await client.from('user_connections').select('*').eq('user_id', uid);
      assert.equal(conns.data.length, 1);
      assert.deepEqual(conns.data[0].scopes, ['repo', 'read:user']);
      const jobs = await client.from('pipeline_jobs').select('*').eq('user_id', uid).order('created_at', { ascending: false }).limit(50);
      assert.equal(jobs.data.length, 1);
      assert.equal(jobs.data[0].status, 'succeeded');
      const events = await client.from('pipeline_events').select('*').eq('job_id', jobs.data[0].id).order('ts', { ascending: true });
      assert.deepEqual(
        events.data.map((e) => e.message),
        ['Starting ...', 'Processing request...', '...completed'],
      );
      const logs = await client.from('action_logs').select('*').eq('user_id', uid).order('created_at', { ascending: false }).limit(100);
      assert.equal(logs.data.length, 1);
      assert.equal(logs.data[0].latency_ms, 12);

      // Nothing of the other user is visible, even when asked for by id.
      for (const table of ['user_connections', 'pipeline_jobs', 'action_logs', 'pipeline_events']) {
        const { data } = await client.from(table).select('*').eq('user_id', other);
        assert.deepEqual(data, [], table);
      }
      const theirJobs = await service.from('pipeline_jobs').select('id').eq('user_id', other);
      const theirId = theirJobs.data[0].id;
      const theirEvents = await client.from('pipeline_events').select('*').eq('job_id', theirId);
      assert.deepEqual(theirEvents.data, []);
      // Writes to the other user's rows change nothing.
      const upd = await client.from('pipeline_jobs').update({ status: 'failed' }).eq('id', theirId).select();
      assert.equal(upd.error, null);
      assert.deepEqual(upd.data, []);
      const del = await client.from('user_connections').delete().eq('user_id', other).select();
      assert.deepEqual(del.data, []);
      const forged = await client.from('user_connections').insert({ user_id: other, connector_id: SLACK });
      assert.equal(forged.status, 403);
      assert.equal(forged.error.code, '42501');
      const forgedEvent = await client.from('pipeline_events').insert({ job_id: theirId, message: 'x' });
      assert.equal(forgedEvent.error.code, '42501');
    }
    const still = await service.from('pipeline_jobs').select('status').order('created_at');
    assert.deepEqual(
      still.data.map((j) => j.status),
      ['succeeded', 'succeeded'],
    );
    // anon sees none of the users' rows.
    for (const table of ['user_connections', 'pipeline_jobs', 'pipeline_events', 'action_logs', 'oauth_transactions']) {
      const { data, error } = await anon.from(table).select('*');
      assert.equal(error, null, table);
      assert.deepEqual(data, [], table);
    }
    // service_role sees all.
    const all = await service.from('user_connections').select('user_id', { count: 'exact' });
    assert.equal(all.count, 2);

    // disconnect, then delete.
    const mine = await alice.from('user_connections').select('id').single();
    const revoke = await alice.from('user_connections').update({ status: 'revoked', updated_at: new Date().toISOString() }).eq('id', mine.data.id);
    assert.equal(revoke.status, 204);
    const gone = await alice.from('user_connections').delete().eq('id', mine.data.id);
    assert.equal(gone.status, 204);
    assert.equal((await service.from('user_connections').select('id', { count: 'exact', head: true })).count, 1);
  });
});

describe('filters', () => {
  const names = async (q) => {
    const { data, error } = await q;
    assert.equal(error, null, JSON.stringify(error));
    return data.map((r) => r.name).sort();
  };
  const items = () => service.from('gw_items').select('name');

  test('comparison, pattern, is, in and distinct', async () => {
    assert.deepEqual(await names(items().eq('id', 1)), ['apple']);
    assert.deepEqual(await names(items().neq('id', 1)), ['Avocado', 'banana', 'carrot']);
    assert.deepEqual(await names(items().gt('n', 10)), ['Avocado', 'banana']);
    assert.deepEqual(await names(items().gte('n', 20)), ['Avocado', 'banana']);
    assert.deepEqual(await names(items().lt('n', 20)), ['apple']);
    assert.deepEqual(await names(items().lte('n', 20)), ['apple', 'banana']);
    assert.deepEqual(await names(items().like('name', '%a%')), ['Avocado', 'banana', 'carrot', 'apple'].sort());
    assert.deepEqual(await names(items().like('name', 'a*')), ['apple']);
    assert.deepEqual(await names(items().ilike('name', 'a%')), ['Avocado', 'apple']);
    assert.deepEqual(await names(items().likeAllOf('name', ['%a%', '%n%'])), ['banana']);
    assert.deepEqual(await names(items().likeAnyOf('name', ['ap%', 'ca%'])), ['apple', 'carrot']);
    assert.deepEqual(await names(items().ilikeAllOf('name', ['A%', '%O'])), ['Avocado']);
    assert.deepEqual(await names(items().ilikeAnyOf('name', ['AP%', 'BA%'])), ['apple', 'banana']);
    assert.deepEqual(await names(items().is('n', null)), ['carrot']);
    assert.deepEqual(await names(items().not('n', 'is', null)), ['Avocado', 'apple', 'banana']);
    assert.deepEqual(await names(items().isDistinct('n', 10)), ['Avocado', 'banana', 'carrot']);
    assert.deepEqual(await names(items().in('name', ['apple', 'carrot', 'a,b'])), ['apple', 'carrot']);
    assert.deepEqual(await names(items().notIn('name', ['apple', 'carrot'])), ['Avocado', 'banana']);
    assert.deepEqual(await names(items().regexMatch('name', '^[a-c]')), ['apple', 'banana', 'carrot']);
    assert.deepEqual(await names(items().regexIMatch('name', '^a')), ['Avocado', 'apple']);
    assert.deepEqual(await names(items().match({ id: 2, name: 'banana' })), ['banana']);
    assert.deepEqual(await names(items().filter('n', 'in', '(10,40)')), ['Avocado', 'apple']);
  });

  test('arrays, json, ranges and text search', async () => {
    assert.deepEqual(await names(items().contains('tags', ['fruit', 'red'])), ['apple']);
    assert.deepEqual(await names(items().containedBy('tags', ['yellow', 'fruit', 'x'])), ['banana']);
    assert.deepEqual(await names(items().overlaps('tags', ['green', 'orange'])), ['Avocado', 'carrot']);
    assert.deepEqual(await names(items().contains('data', { k: 'b' })), ['banana']);
    assert.deepEqual(await names(items().eq('data->>k', 'c')), ['carrot']);
    assert.deepEqual(await names(items().eq('data->x->>y', '1')), ['apple']);
    assert.deepEqual(await names(items().rangeGt('r', '[0,4)')), ['Avocado', 'banana', 'carrot']);
    assert.deepEqual(await names(items().rangeGte('r', '[5,6)')), ['Avocado', 'banana', 'carrot']);
    assert.deepEqual(await names(items().rangeLt('r', '[6,7)')), ['apple']);
    assert.deepEqual(await names(items().rangeLte('r', '[1,10)')), ['apple', 'banana']);
    assert.deepEqual(await names(items().rangeAdjacent('r', '[30,40)')), ['Avocado']);
    assert.deepEqual(await names(items().overlaps('r', '[4,6)')), ['apple', 'banana']);
    assert.deepEqual(await names(items().textSearch('body', 'quick')), ['apple', 'carrot']);
    assert.deepEqual(await names(items().textSearch('body', 'quick & fox', { config: 'english' })), ['apple']);
    assert.deepEqual(await names(items().textSearch('body', 'lazy dogs', { type: 'plain', config: 'english' })), ['banana']);
    assert.deepEqual(await names(items().textSearch('body', 'quick brown', { type: 'phrase' })), ['apple']);
    assert.deepEqual(await names(items().textSearch('body', 'quick -fox', { type: 'websearch', config: 'english' })), ['carrot']);
  });

  test('or, and, not, nested and on embeds', async () => {
    assert.deepEqual(await names(items().or('id.eq.1,id.eq.3')), ['apple', 'carrot']);
    assert.deepEqual(await names(items().or('id.eq.1,and(n.gt.15,name.like.b*)')), ['apple', 'banana']);
    assert.deepEqual(await names(items().or('name.in.(apple,"a,b"),n.is.null')), ['apple', 'carrot']);
    assert.deepEqual(await names(items().not('name', 'in', '(apple,banana)')), ['Avocado', 'carrot']);
    assert.deepEqual(await names(items().or('id.not.eq.1,n.eq.10').gt('id', 2)), ['Avocado', 'carrot']);
    const notAnd = await rest('/gw_items?select=name&not.and=(id.gt.1,n.gt.15)&order=id', {
      headers: { authorization: `Bearer ${cb.serviceRoleKey}` },
    });
    assert.deepEqual(notAnd.json.map((r) => r.name), ['apple']);
    const { data, error } = await service
      .from('gw_items')
      .select('name, gw_tags(label)')
      .or('label.eq.sweet', { referencedTable: 'gw_tags' })
      .eq('id', 1);
    assert.equal(error, null);
    assert.deepEqual(data, [{ name: 'apple', gw_tags: [{ label: 'sweet' }] }]);
  });
});

describe('modifiers', () => {
  test('order, limit, range, single, maybeSingle, csv, strip nulls', async () => {
    let r = await service.from('gw_items').select('name').order('n', { ascending: false, nullsFirst: true });
    assert.deepEqual(
      r.data.map((x) => x.name),
      ['carrot', 'Avocado', 'banana', 'apple'],
    );
    r = await service.from('gw_items').select('name').order('n', { ascending: true }).order('id').limit(2);
    assert.deepEqual(
      r.data.map((x) => x.name),
      ['apple', 'banana'],
    );
    r = await service.from('gw_items').select('id').order('id').range(1, 2);
    assert.deepEqual(r.data, [{ id: 2 }, { id: 3 }]);
    r = await service.from('gw_items').select('id').eq('id', 2).single();
    assert.equal(r.status, 200);
    assert.deepEqual(r.data, { id: 2 });
    r = await service.from('gw_items').select('id').single();
    assert.equal(r.status, 406);
    assert.equal(r.error.code, 'PGRST116');
    r = await service.from('gw_items').select('id').eq('id', 99).single();
    assert.equal(r.error.code, 'PGRST116');
    r = await service.from('gw_items').select('id').eq('id', 99).maybeSingle();
    assert.equal(r.error, null);
    assert.equal(r.data, null);
    r = await service.from('gw_items').select('id').eq('id', 3).maybeSingle();
    assert.deepEqual(r.data, { id: 3 });
    r = await service.from('gw_items').select('id').maybeSingle();
    assert.equal(r.error.code, 'PGRST116');
    r = await service.from('gw_items').select('id,name').in('id', [1, 2]).order('id').csv();
    assert.equal(r.error, null);
    assert.equal(r.data, 'id,name\n1,apple\n2,banana');
    r = await service.from('gw_items').select('id,seen_at').in('id', [2]).stripNulls();
    assert.deepEqual(r.data, [{ id: 2 }]);
    r = await service.from('gw_tags').select('label, gw_items(name)').order('name', { referencedTable: 'gw_items', ascending: false }).limit(1, { referencedTable: 'gw_items' }).eq('id', 2);
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ label: 'crunchy', gw_items: [{ name: 'carrot' }] }]);
  });

  test('counts with and without head', async () => {
    let r = await service.from('gw_items').select('*', { count: 'exact', head: true });
    assert.equal(r.error, null);
    assert.equal(r.count, 4);
    assert.equal(r.data, null);
    r = await service.from('gw_items').select('id', { count: 'exact' }).order('id').range(0, 1);
    assert.equal(r.count, 4);
    assert.equal(r.status, 206);
    assert.equal(r.data.length, 2);
    for (const count of ['planned', 'estimated']) {
      r = await service.from('gw_items').select('id', { count, head: true }).gt('id', 1);
      assert.equal(typeof r.count, 'number', count);
    }
    r = await service.from('gw_items').select('id', { count: 'exact' }).range(10, 12);
    assert.equal(r.status, 416);
    assert.equal(r.error.code, 'PGRST103');
  });

  test('embeds: to-one, to-many, many-to-many, inner, hints, aliases, casts and JSON paths', async () => {
    let r = await anon.from('connector_tools').select('name, connector:connectors(slug)').eq('connector_id', GITHUB).limit(1);
    assert.equal(r.error, null);
    assert.equal(r.data[0].connector.slug, 'github');
    r = await anon.from('connectors').select('slug, connector_tools(name)').eq('slug', 'github');
    assert.ok(Array.isArray(r.data[0].connector_tools));
    r = await service.from('gw_items').select('name, gw_tags(label)').order('id');
    assert.deepEqual(r.data[0].gw_tags.map((t) => t.label).sort(), ['crunchy', 'sweet']);
    assert.deepEqual(r.data[1].gw_tags, []);
    r = await service.from('gw_items').select('name, gw_tags!inner(label)').eq('gw_tags.label', 'crunchy').order('id');
    assert.deepEqual(
      r.data.map((x) => x.name),
      ['apple', 'carrot'],
    );
    r = await service.from('gw_items').select('name, gw_item_tags!gw_item_tags_item_id_fkey(tag_id)').eq('id', 3);
    assert.deepEqual(r.data, [{ name: 'carrot', gw_item_tags: [{ tag_id: 2 }] }]);
    r = await service.from('gw_items').select('label:name, n::text, k:data->>k, y:data->x->y').eq('id', 1);
    assert.deepEqual(r.data, [{ label: 'apple', n: '10', k: 'a', y: 1 }]);
    r = await service.from('gw_items').select('name, nope(*)');
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST200');
  });

  test('schema selection and unknown tables', async () => {
    const r = await service.schema('auth').from('users').select('*');
    assert.equal(r.status, 406);
    assert.equal(r.error.code, 'PGRST106');
    const missing = await service.from('no_such_table').select('*');
    assert.equal(missing.status, 404);
    assert.equal(missing.error.code, 'PGRST205');
    const ok = await service.schema('public').from('gw_tags').select('id').order('id');
    assert.deepEqual(ok.data, [{ id: 1 }, { id: 2 }]);
  });
});

describe('writes', () => {
  test('insert, bulk insert, upsert both ways, update, delete, rollback', async () => {
    let r = await service.from('gw_tags').insert({ id: 10, label: 'ten' });
    assert.equal(r.error, null);
    assert.equal(r.status, 201);
    assert.equal(r.data, null);
    r = await service
      .from('gw_tags')
      .insert([
        { id: 11, label: 'eleven' },
        { id: 12, label: 'twelve' },
      ])
      .select();
    assert.equal(r.status, 201);
    assert.deepEqual(r.data, [
      { id: 11, label: 'eleven' },
      { id: 12, label: 'twelve' },
    ]);
    r = await service.from('gw_items').insert([{ id: 20, name: 'x' }, { id: 21, name: 'y', n: 1 }], { defaultToNull: false }).select('id,n').order('id');
    assert.deepEqual(r.data, [
      { id: 20, n: 7 },
      { id: 21, n: 1 },
    ]);
    r = await service.from('gw_items').insert([{ id: 22, name: 'z' }, { id: 23, name: 'w', n: 1 }]).select('id,n');
    assert.deepEqual(r.data, [
      { id: 22, n: null },
      { id: 23, n: 1 },
    ]);
    r = await service.from('gw_tags').upsert({ id: 10, label: 'TEN' }).select();
    assert.equal(r.status, 200);
    assert.deepEqual(r.data, [{ id: 10, label: 'TEN' }]);
    r = await service
      .from('gw_tags')
      .upsert(
        [
          { id: 10, label: 'ignored' },
          { id: 13, label: 'thirteen' },
        ],
        { ignoreDuplicates: true },
      )
      .select();
    assert.equal(r.status, 201);
    assert.deepEqual(r.data, [{ id: 13, label: 'thirteen' }]);
    r = await service.from('gw_tags').upsert({ id: 14, label: 'x' }, { onConflict: 'id', count: 'exact' });
    assert.equal(r.status, 201);
    assert.equal(r.count, 1);
    r = await service.from('gw_tags').update({ label: 'updated' }, { count: 'exact' }).gte('id', 13).select('id').order('id');
    assert.equal(r.status, 200);
    assert.equal(r.count, 2);
    assert.deepEqual(r.data, [{ id: 13 }, { id: 14 }]);
    r = await service.from('gw_tags').insert({ id: 10, label: 'dup' });
    assert.equal(r.status, 409);
    assert.equal(r.error.code, '23505');
    r = await service.from('gw_tags').insert({ id: 15, nope: 1 });
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST204');
    r = await service.from('gw_tags').insert({ id: 16, label: 'rolled back' }).rollback();
    assert.equal(r.status, 201);
    assert.equal((await service.from('gw_tags').select('id').eq('id', 16)).data.length, 0);
    r = await service.from('gw_tags').delete({ count: 'exact' }).gte('id', 10);
    assert.equal(r.status, 204);
    assert.equal(r.count, 5);
    r = await service.from('gw_items').delete().in('id', [20, 21, 22, 23]).select('id');
    assert.equal(r.data.length, 4);
  });

  test('bad bodies write nothing', async () => {
    for (const body of ['{', '', '42', '[1,2]', 'null']) {
      const r = await rest('/gw_audit', { method: 'POST', body, headers: { authorization: `Bearer ${cb.serviceRoleKey}` } });
      assert.equal(r.status, 400, body);
      assert.equal(r.json.code, 'PGRST102', body);
    }
    const r = await rest('/gw_audit', { method: 'POST', body: [{ n: 1 }, { n: 'not a number' }], headers: { authorization: `Bearer ${cb.serviceRoleKey}` } });
    assert.equal(r.status, 400);
    assert.equal(r.json.code, '22P02');
    const rows = await pgQuery(cb.dbUrl, 'select count(*)::int as n from public.gw_audit');
    assert.equal(rows[0].n, 0);
  });
});

describe('rpc', () => {
  test('POST and GET, scalar, set-returning with filters, void, head', async () => {
    let r = await anon.rpc('gw_add', { a: 2, b: 3 });
    assert.equal(r.error, null);
    assert.equal(r.data, 5);
    r = await anon.rpc('gw_add', { a: 2 }, { get: true });
    assert.equal(r.data, 3);
    r = await anon.rpc('gw_sum', { vals: [1, 2, 3] }, { get: true });
    assert.equal(r.data, 6);
    r = await anon.rpc('gw_sum', { vals: [1, 2, 3] });
    assert.equal(r.data, 6);
    r = await service.rpc('gw_items_named', { prefix: 'ba' }).select('id,name');
    assert.deepEqual(r.data, [{ id: 2, name: 'banana' }]);
    r = await service.rpc('gw_items_named', { prefix: '' }).gt('id', 1).order('id', { ascending: false }).limit(2);
    assert.deepEqual(
      r.data.map((x) => x.id),
      [4, 3],
    );
    r = await service.rpc('gw_items_named', { prefix: '' }, { count: 'exact', head: true });
    assert.equal(r.count, 4);
    r = await service.rpc('gw_items_named', { prefix: 'c' }).single();
    assert.equal(r.data.name, 'carrot');
    r = await alice.rpc('gw_whoami');
    assert.equal(r.data, ALICE);
    r = await anon.rpc('gw_noop');
    assert.equal(r.status, 204);
    assert.equal(r.data, null);
    r = await anon.rpc('gw_missing', { a: 1 });
    assert.equal(r.status, 404);
    assert.equal(r.error.code, 'PGRST202');
  });
});

describe('more of postgrest-js', () => {
  test('embeds in a write representation, related counts, spread, strip nulls on single', async () => {
    let r = await service.from('gw_item_tags').insert({ item_id: 2, tag_id: 1 }).select('item_id, gw_tags(label)').single();
    assert.equal(r.error, null);
    assert.deepEqual(r.data, { item_id: 2, gw_tags: { label: 'sweet' } });
    r = await service.from('gw_items').select('name, gw_item_tags(count)').eq('id', 1).single();
    assert.deepEqual(r.data, { name: 'apple', gw_item_tags: [{ count: 2 }] });
    r = await service.from('gw_item_tags').select('item_id, ...gw_tags(label)').eq('item_id', 3);
    assert.deepEqual(r.data, [{ item_id: 3, label: 'crunchy' }]);
    r = await service.from('gw_items').select('id, seen_at').eq('id', 2).single().stripNulls();
    assert.deepEqual(r.data, { id: 2 });
    r = await service.from('gw_item_tags').delete().match({ item_id: 2, tag_id: 1 });
    assert.equal(r.status, 204);
  });

  test('unsupported formats and verbs answer as PostgREST does', async () => {
    const plan = await service.from('gw_items').select('*').explain();
    assert.equal(plan.status, 406);
    // GeoJSON is ST_AsGeoJSON over the rows, as PostgREST sends it; this database has no
    // PostGIS, so PostgreSQL answers 42883, which PostgREST maps to 404.
    const geo = await service.from('gw_items').select('*').geojson();
    assert.equal(geo.status, 404);
    assert.equal(geo.error.code, '42883');
    const agg = await service.from('gw_items').select('count()');
    assert.equal(agg.error.code, 'PGRST123');
    const put = await rest('/gw_tags?id=eq.40', {
      method: 'PUT',
      body: { id: 40, label: 'put' },
      headers: { authorization: `Bearer ${cb.serviceRoleKey}`, prefer: 'return=representation' },
    });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json, [{ id: 40, label: 'put' }]);
    // The edge routes the bare prefix; the OpenAPI document is at GET /rest/v1.
    const openapi = await rest('');
    assert.equal(openapi.status, 200, openapi.text);
    assert.ok(openapi.json.paths['/gw_items']);
  });
});

describe('the rest of the builder', () => {
  test('maxAffected refuses a write over the limit (PGRST124) and changes nothing', async () => {
    let r = await service.from('gw_items').update({ n: 99 }).gt('id', 0).maxAffected(2);
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST124');
    const after = await service.from('gw_items').select('id').eq('n', 99);
    assert.deepEqual(after.data, []);
    r = await service.from('gw_items').update({ n: 99 }).eq('id', 3).maxAffected(1).select('id, n');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 3, n: 99 }]);
    await service.from('gw_items').update({ n: null }).eq('id', 3);
  });

  test('throwOnError, setHeader, returns, overrideTypes and abortSignal', async () => {
    await assert.rejects(
      async () => await service.from('gw_items').select('nope').throwOnError(),
      (e) => e.code === '42703',
    );
    // A header set on the builder reaches the server: here a Prefer for an exact count.
    const counted = await service.from('gw_items').select('id').setHeader('Prefer', 'count=exact').limit(1);
    assert.equal(counted.error, null);
    assert.equal(counted.data.length, 1);
    // returns() and overrideTypes() only retype the result.
    const typed = await service.from('gw_items').select('id').eq('id', 1).returns().overrideTypes();
    assert.deepEqual(typed.data, [{ id: 1 }]);
    const controller = new AbortController();
    controller.abort();
    const aborted = await service.from('gw_items').select('id').abortSignal(controller.signal);
    assert.ok(aborted.error);
    assert.equal(aborted.data, null);
  });
});

describe('JWT abuse', () => {
  test('refused with 401 before any SQL runs', async () => {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const exp = nowSeconds() + 3600;
    const tokens = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ role: 'service_role', exp })}.`,
      'other secret': mintJwt('another-secret-another-secret-another-secret', { role: 'service_role', exp }),
      expired: mintJwt(cb.jwtSecret, { sub: ALICE, role: 'authenticated', exp: nowSeconds() - 120 }),
      'not yet valid': mintJwt(cb.jwtSecret, { sub: ALICE, role: 'authenticated', exp, nbf: nowSeconds() + 600 }),
      'role postgres': mintJwt(cb.jwtSecret, { role: 'postgres', exp }),
      'role authenticator': mintJwt(cb.jwtSecret, { role: 'authenticator', exp }),
      malformed: 'abc.def',
      garbage: 'a.b.c',
    };
    for (const [name, token] of Object.entries(tokens)) {
      const client = clientWithToken(token);
      const r = await client.from('gw_audit').insert({ n: 1 });
      assert.equal(r.status, 401, name);
      assert.ok(['PGRST301', 'PGRST303', '42501'].includes(r.error.code), `${name}: ${r.error.code}`);
      const raw = await rest('/gw_audit', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(raw.status, 401, name);
      assert.match(raw.headers.get('www-authenticate') ?? '', /^Bearer/, name);
    }
    const rows = await pgQuery(cb.dbUrl, 'select count(*)::int as n from public.gw_audit');
    assert.equal(rows[0].n, 0);
  });
});

describe('injection', () => {
  test('hostile names, operators, values, orders and embeds give 4xx without SQL', async () => {
    const hostile = [
      '/gw_items?select=name;drop table gw_items',
      '/gw_items?select="name"";drop table gw_items;--"',
      '/gw_items?select=name::text);drop table gw_items;--',
      '/gw_items?select=name,gw_tags(label);drop',
      '/gw_items?select=name,pg_catalog.pg_roles(*)',
      '/gw_items?name=eq;select 1',
      '/gw_items?name=xyz.1',
      '/gw_items?name=in.(1));drop table gw_items;--',
      "/gw_items?data->>k'||'=eq.a",
      '/gw_items?order=name;drop table gw_items',
      '/gw_items?order=name.desc,(select 1)',
      '/gw_items?or=(id.eq.1);drop table gw_items',
      '/gw_items?or=(id.eq.1,name.eq.x))',
      '/gw_items?limit=1 union select 1',
      '/gw_items?id=eq.1&select=id::pg_sleep',
      '/gw_items?select=name,gw_tags!inner(label)&gw_tags;drop.label=eq.x',
      "/gw_items?columns=id);drop table gw_items;--",
    ];
    for (const path of hostile) {
      const r = await rest(path, { headers: { authorization: `Bearer ${cb.serviceRoleKey}` } });
      assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status} ${r.text}`);
      for (const leak of ['syntax error', '$1', 'json_agg', '"public".', ' FROM ']) {
        assert.ok(!r.text.includes(leak), `${path}: ${r.text}`);
      }
    }
    const values = await service.from('gw_items').select('id').eq('name', "x' or '1'='1");
    assert.deepEqual(values.data, []);
    const count = await service.from('gw_items').select('*', { count: 'exact', head: true });
    assert.equal(count.count, 4);
  });
});
