// REST gateway limits (issue 9, runaway SQL and 500s a client can cause at will), driven by
// supabase-js: Supabase's statement timeouts for anon and authenticated, a statement cancelled
// when its client hangs up, bounds on the select list, and a tsquery PostgreSQL cannot parse
// answered 400 as PostgREST does. One craftbase for the file (its own cluster, so ALTER ROLE
// here touches no other test).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import fs from 'node:fs/promises';
import path from 'node:path';

import {
  REPO_ROOT,
  anonClient,
  createClient,
  mintJwt,
  nowSeconds,
  pgQuery,
  serviceClient,
  startCraftbase,
} from './lib/craftbase.mjs';

const ALICE = '11111111-1111-4111-8111-111111111111';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;
let anon;
let alice;
let service;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms until it returns true or `ms` pass; returns the last answer. */
async function eventually(check, ms) {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(100);
  }
}

/** Statements of the gateway's connections still running `fn`. */
async function running(fn) {
  const rows = await pgQuery(
    cb.dbUrl,
    `select count(*)::int as n from pg_stat_activity
     where usename = 'authenticator' and state = 'active' and query like $1`,
    [`%${fn}%`],
  );
  return rows[0].n;
}

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `insert into auth.users (id, aud, role, email, created_at, updated_at)
       values ('${ALICE}', 'authenticated', 'authenticated', 'alice@example.com', now(), now());
       create table public.gl_docs (id int primary key, body text);
       insert into public.gl_docs values (1, 'the quick brown fox'), (2, 'lazy dogs');
       create function public.gl_timeout() returns text language sql stable
         as $$ select current_setting('statement_timeout') $$;
       create function public.gl_jit() returns text language sql stable
         as $$ select current_setting('jit') $$;
       create function public.gl_nap(s float8) returns int language sql volatile
         as $$ select 1 from pg_sleep(s) $$;
       notify pgrst, 'reload schema';`,
    );
    anon = anonClient(cb);
    service = serviceClient(cb);
    const token = mintJwt(cb.jwtSecret, { sub: ALICE, role: 'authenticated', aud: 'authenticated', exp: nowSeconds() + 3600 });
    alice = createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${token}` } } });
    for (let i = 0; i < 100; i++) {
      const r = await anon.rpc('gl_timeout');
      if (r.error === null) break;
      await sleep(100);
    }
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('statement timeouts', () => {
  test('anon and authenticated run under Supabase statement timeouts (3s, 8s)', async () => {
    let r = await anon.rpc('gl_timeout');
    assert.equal(r.error, null);
    assert.equal(r.data, '3s');
    r = await alice.rpc('gl_timeout');
    assert.equal(r.error, null);
    assert.equal(r.data, '8s');
  });

  test('JIT is off for them (LLVM compilation cannot be cancelled)', async () => {
    for (const client of [anon, alice, service]) {
      const r = await client.rpc('gl_jit');
      assert.equal(r.error, null);
      assert.equal(r.data, 'off');
    }
  });

  test('a role override (ALTER ROLE ... SET) wins, and a statement past it is cancelled with 57014', async () => {
    await pgQuery(cb.dbUrl, `alter role anon set statement_timeout = '200ms'; notify pgrst, 'reload schema'`);
    try {
      assert.ok(await eventually(async () => (await anon.rpc('gl_timeout')).data === '200ms', 10_000));
      // The migration, run again (as for another database of the cluster), keeps the override.
      const migration = await fs.readFile(path.join(REPO_ROOT, 'crates/shared/sql/role_limits.sql'), 'utf8');
      await pgQuery(cb.dbUrl, migration);
      const [row] = await pgQuery(
        cb.dbUrl,
        `select s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
         where r.rolname = 'anon' and s.setdatabase = 0`,
      );
      assert.ok(row.setconfig.includes('statement_timeout=200ms'), String(row.setconfig));
      assert.ok(row.setconfig.includes('jit=off'), String(row.setconfig));
      const r = await anon.rpc('gl_nap', { s: 5 });
      assert.equal(r.status, 500);
      assert.equal(r.error.code, '57014');
      assert.match(r.error.message, /statement timeout/);
    } finally {
      await pgQuery(cb.dbUrl, `alter role anon set statement_timeout = '3s'; notify pgrst, 'reload schema'`);
      await eventually(async () => (await anon.rpc('gl_timeout')).data === '3s', 10_000);
    }
  });
});

describe('a client that hangs up', () => {
  test('gets its running statement cancelled, not left to run', async () => {
    const controller = new AbortController();
    // service_role has no timeout of its own shorter than the nap (authenticator's 8s), so only
    // a cancel ends this statement within the wait below.
    // A postgrest-js builder sends its request only once awaited: start it now.
    const call = service
      .rpc('gl_nap', { s: 60 })
      .abortSignal(controller.signal)
      .then((r) => r);
    assert.ok(await eventually(async () => (await running('gl_nap')) === 1, 10_000), 'the nap never started');
    controller.abort();
    const r = await call;
    assert.ok(r.error, 'the aborted call reports an error');
    assert.ok(
      await eventually(async () => (await running('gl_nap')) === 0, 5_000),
      'the statement kept running after its client hung up',
    );
    // The gateway goes on serving.
    const after = await anon.from('gl_docs').select('id').order('id');
    assert.deepEqual(after.data, [{ id: 1 }, { id: 2 }]);
  });
});

describe('bounded select lists', () => {
  test('a select of 1,700 columns is refused with PGRST100 before any SQL', async () => {
    const columns = Array.from({ length: 1700 }, () => 'id').join(',');
    const r = await anon.from('gl_docs').select(columns);
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST100');
    assert.match(r.error.message, /select/);
    assert.match(r.error.details, /1000/);
  });

  test('a select list at the bound is served', async () => {
    const columns = Array.from({ length: 1000 }, (_, i) => `c${i}:id`).join(',');
    const r = await anon.from('gl_docs').select(columns).eq('id', 1);
    assert.equal(r.error, null);
    assert.equal(Object.keys(r.data[0]).length, 1000);
  });

  test('a select of 499 embeds, within the bound, runs (JIT would compile it for minutes)', async () => {
    const select = ['slug', ...Array.from({ length: 499 }, (_, i) => `t${i}:connector_tools(name)`)].join(',');
    const r = await anon.from('connectors').select(select).limit(2);
    assert.equal(r.error, null);
    assert.equal(r.data.length, 2);
    assert.ok(Array.isArray(r.data[0].t498));
  });

  test('embeds nested deeper than the bound are refused with PGRST100', async () => {
    let select = 'id';
    for (let i = 0; i < 20; i++) select = `id,gl_docs(${select})`;
    const r = await anon.from('gl_docs').select(select);
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST100');
    assert.match(r.error.details, /nested/);
  });
});

describe('full-text search values PostgreSQL cannot parse', () => {
  for (const [method, value] of [
    ['textSearch', '&&&'],
    ['textSearch', 'fox & (dog'],
  ]) {
    test(`${method}(${JSON.stringify(value)}) is 400 42601, as PostgREST answers`, async () => {
      const r = await anon.from('gl_docs').select('id')[method]('body', value);
      assert.equal(r.status, 400);
      assert.equal(r.error.code, '42601');
      assert.match(r.error.message, /syntax error in tsquery/);
    });
  }

  test('a valid query still matches', async () => {
    const r = await anon.from('gl_docs').select('id').textSearch('body', 'quick & fox');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 1 }]);
  });
});
