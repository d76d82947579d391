// REST features PostgREST keeps off by default, switched on with its own variables
// (PGRST_DB_AGGREGATES_ENABLED, PGRST_DB_PLAN_ENABLED) and driven by supabase-js: aggregates
// and explain(). One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, mintJwt, nowSeconds, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const ALICE = '11111111-1111-4111-8111-111111111111';
const BOB = '22222222-2222-4222-8222-222222222222';

let cb;
let service;
let alice;

before(
  async () => {
    cb = await startCraftbase({ env: { PGRST_DB_AGGREGATES_ENABLED: 'true', PGRST_DB_PLAN_ENABLED: 'true' } });
    await pgQuery(
      cb.dbUrl,
      `insert into auth.users (id, aud, role, email, created_at, updated_at)
       values ('${ALICE}', 'authenticated', 'authenticated', 'alice@example.com', now(), now()),
              ('${BOB}', 'authenticated', 'authenticated', 'bob@example.com', now(), now());
       insert into public.pipeline_jobs (user_id, connector_id, type, status, input)
       select case when g <= 3 then '${ALICE}'::uuid else '${BOB}'::uuid end,
              (select id from public.connectors where slug = 'github'),
              'tool_execution',
              (case when g in (1, 2) then 'succeeded' else 'failed' end)::public.job_status,
              jsonb_build_object('n', g)
       from generate_series(1, 5) g;`,
    );
    service = serviceClient(cb);
    const token = mintJwt(cb.jwtSecret, { sub: ALICE, role: 'authenticated', aud: 'authenticated', exp: nowSeconds() + 3600 });
    alice = createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${token}` } } });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('aggregates', () => {
  test('count() grouped by the other columns, under RLS', async () => {
    let r = await service.from('pipeline_jobs').select('status, count()').order('status');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [
      { status: 'succeeded', count: 2 },
      { status: 'failed', count: 3 },
    ]);
    // Alice's policies hide Bob's jobs from the aggregate too.
    r = await alice.from('pipeline_jobs').select('status, count()').order('status');
    assert.deepEqual(r.data, [
      { status: 'succeeded', count: 2 },
      { status: 'failed', count: 1 },
    ]);
    r = await alice.from('pipeline_jobs').select('total:count()').single();
    assert.deepEqual(r.data, { total: 3 });
  });

  test('sum, avg, min and max with casts, and inside an embed', async () => {
    let r = await service.from('pipeline_jobs').select('input->n::int.sum(), input->n::int.max(), input->n::int.min()').single();
    assert.equal(r.error, null);
    assert.deepEqual(r.data, { sum: 15, max: 5, min: 1 });
    r = await service.from('pipeline_jobs').select('avg:input->n::int.avg()::int').single();
    assert.deepEqual(r.data, { avg: 3 });
    r = await service.from('connectors').select('slug, pipeline_jobs(count())').eq('slug', 'github').single();
    assert.deepEqual(r.data, { slug: 'github', pipeline_jobs: [{ count: 5 }] });
  });

  test('a bad aggregate is a clean 400', async () => {
    const r = await service.from('pipeline_jobs').select('status.median()');
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST100');
  });
});

describe('explain()', () => {
  test('the plan as text and as JSON, with analyze', async () => {
    let r = await alice.from('pipeline_jobs').select('*').eq('status', 'failed').explain();
    assert.equal(r.error, null);
    assert.equal(typeof r.data, 'string');
    assert.match(r.data, /Scan/);
    r = await alice.from('pipeline_jobs').select('*').explain({ format: 'json', analyze: true });
    assert.equal(r.error, null);
    assert.ok(Array.isArray(r.data), JSON.stringify(r.data));
    assert.ok(r.data[0].Plan['Node Type']);
    assert.equal(typeof r.data[0]['Execution Time'], 'number');
  });

  test('an analyzed write is rolled back', async () => {
    const r = await service
      .from('connectors')
      .insert({ slug: 'explained', name: 'Explained' })
      .select()
      .explain({ analyze: true });
    assert.equal(r.error, null);
    assert.match(r.data, /Insert on connectors/);
    const after = await service.from('connectors').select('slug').eq('slug', 'explained');
    assert.deepEqual(after.data, []);
  });
});
