// PostgREST's settings, one by one, as PGRST_* variables and as PostgREST's in-database
// configuration (`alter role authenticator set pgrst.db_tx_end = ...`), driven by supabase-js
// (and fetch where a header is the point). Three craftbase instances: Supabase's defaults, a
// locked-down one (no anon role, a nested role claim, Server-Timing, no OpenAPI, rollback by
// default) and one for a transaction pooler (no prepared statements, another anon role, an
// extra schema on the search_path, a proxy URL in the OpenAPI document).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, mintJwt, nowSeconds, pgQuery, restRequest, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';

const SETUP = `
  create schema if not exists extras;
  grant usage on schema extras to anon, authenticated, service_role;
  create domain extras.shout as text check (value = upper(value));
  create table public.st_notes (id int primary key, body text not null);
  grant all on public.st_notes to anon, authenticated, service_role;
  insert into public.st_notes values (1, 'ONE'), (2, 'TWO'), (3, 'THREE');
  create table public.st_vault (id int primary key);
  revoke all on public.st_vault from anon, authenticated;
  grant all on public.st_vault to service_role;
  insert into public.st_vault values (7);
  create function public.st_search_path() returns text language sql stable
    as $$ select current_setting('search_path') $$;
  create function public.st_whoami() returns text language sql stable
    as $$ select current_user::text $$;
  create function public.st_prepared() returns bigint language sql stable
    as $$ select count(*) from pg_prepared_statements $$;
  create function public.st_hidden() returns int language sql stable as $$ select 1 $$;
  revoke execute on function public.st_hidden() from public, anon, authenticated;
  create function public.st_pre() returns void language sql
    as $$ select set_config('response.headers', '[{"x-pre-request": "ran"}]', true) $$;
`;

/** Starts craftbase with `env` and creates this file's tables. */
async function start(env) {
  const cb = await startCraftbase({ env });
  await pgQuery(cb.dbUrl, SETUP);
  return { cb, service: serviceClient(cb) };
}

function tokenClient(cb, claims) {
  const token = mintJwt(cb.jwtSecret, { aud: 'authenticated', exp: nowSeconds() + 3600, ...claims });
  return { token, client: createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${token}` } } }) };
}

async function untilKnown(client, table) {
  await waitForSchema(async () => (await client.from(table).select('id').limit(1)).error === null);
}

describe("Supabase's defaults", () => {
  let cb;
  let service;
  let anon;

  before(
    async () => {
      ({ cb, service } = await start({}));
      anon = createClient(cb.url, cb.anonKey);
      await untilKnown(service, 'st_notes');
    },
    { timeout: 180_000 },
  );
  after(async () => cb && (await cb.stop()), { timeout: 60_000 });

  test('PGRST_DB_TX_END defaults to commit: Prefer tx=rollback is not honoured, as on Supabase', async () => {
    const r = await service.from('st_notes').insert({ id: 10, body: 'KEPT' }).rollback();
    assert.equal(r.status, 201);
    const kept = await service.from('st_notes').select('body').eq('id', 10);
    assert.deepEqual(kept.data, [{ body: 'KEPT' }]);
    const raw = await restRequest(cb, '/st_notes', {
      method: 'POST',
      headers: { Authorization: `Bearer ${cb.serviceRoleKey}`, Prefer: 'tx=rollback' },
      body: { id: 11, body: 'ALSO' },
    });
    assert.equal(raw.status, 201);
    assert.doesNotMatch(raw.headers.get('preference-applied') ?? '', /tx=/);
  });

  test('in-database configuration (pgrst.db_tx_end, pgrst.db_plan_enabled on the authenticator role) wins over the environment', async () => {
    await pgQuery(
      cb.dbUrl,
      `alter role authenticator set pgrst.db_tx_end = 'commit-allow-override';
       alter role authenticator set pgrst.db_plan_enabled = 'true';
       notify pgrst, 'reload schema';`,
    );
    try {
      await waitForSchema(async () => (await anon.from('st_notes').select().explain()).status === 200);
      const r = await service.from('st_notes').insert({ id: 20, body: 'GONE' }).rollback();
      assert.equal(r.status, 201);
      const gone = await service.from('st_notes').select('body').eq('id', 20);
      assert.deepEqual(gone.data, []);
      const raw = await restRequest(cb, '/st_notes', {
        method: 'POST',
        headers: { Authorization: `Bearer ${cb.serviceRoleKey}`, Prefer: 'tx=rollback' },
        body: { id: 21, body: 'GONE' },
      });
      assert.match(raw.headers.get('preference-applied'), /(^|, )tx=rollback(,|$)/);
    } finally {
      await pgQuery(
        cb.dbUrl,
        `alter role authenticator reset pgrst.db_tx_end;
         alter role authenticator reset pgrst.db_plan_enabled;
         notify pgrst, 'reload schema';`,
      );
    }
    await waitForSchema(async () => (await anon.from('st_notes').select().explain()).status === 406);
  });

  test('PGRST_OPENAPI_MODE defaults to follow-privileges: GET / lists only what the role may use', async () => {
    const asAnon = await restRequest(cb, '/', { headers: { Authorization: `Bearer ${cb.anonKey}` } });
    assert.equal(asAnon.status, 200);
    assert.ok(asAnon.json.paths['/st_notes']);
    assert.equal(asAnon.json.paths['/st_vault'], undefined);
    assert.equal(asAnon.json.definitions.st_vault, undefined);
    assert.ok(asAnon.json.paths['/rpc/st_whoami']);
    assert.equal(asAnon.json.paths['/rpc/st_hidden'], undefined);
    const asService = await restRequest(cb, '/', { headers: { Authorization: `Bearer ${cb.serviceRoleKey}` } });
    assert.ok(asService.json.paths['/st_vault']);
    assert.ok(asService.json.paths['/rpc/st_hidden']);
  });

  test('PGRST_DB_EXTRA_SEARCH_PATH defaults to public, extensions, set after the schema as PostgREST does', async () => {
    const r = await anon.rpc('st_search_path');
    assert.equal(r.error, null);
    assert.equal(r.data, '"public", "public", "extensions"');
  });

  test('PGRST_DB_PREPARED_STATEMENTS defaults to true; no Server-Timing by default', async () => {
    await anon.rpc('st_prepared');
    const r = await anon.rpc('st_prepared');
    assert.ok(r.data > 0, `prepared statements on the connection: ${r.data}`);
    const raw = await restRequest(cb, '/st_notes?select=id', { headers: { Authorization: `Bearer ${cb.anonKey}` } });
    assert.equal(raw.headers.get('server-timing'), null);
  });
});

describe('no anon role, a nested role claim, Server-Timing, OpenAPI off, rollback by default', () => {
  let cb;
  const CLAIMS = 'https://example.com/claims';

  before(
    async () => {
      ({ cb } = await start({
        PGRST_DB_ANON_ROLE: '',
        PGRST_JWT_ROLE_CLAIM_KEY: `."${CLAIMS}".roles[0]`,
        PGRST_SERVER_TIMING_ENABLED: 'true',
        PGRST_OPENAPI_MODE: 'disabled',
        PGRST_DB_TX_END: 'rollback-allow-override',
      }));
      const { client } = tokenClient(cb, { [CLAIMS]: { roles: ['service_role'] } });
      await untilKnown(client, 'st_notes');
    },
    { timeout: 180_000 },
  );
  after(async () => cb && (await cb.stop()), { timeout: 60_000 });

  test('PGRST_DB_ANON_ROLE unset: a token without the role claim is 401 PGRST302', async () => {
    // The anon key's role sits at .role, not where PGRST_JWT_ROLE_CLAIM_KEY looks.
    const anon = createClient(cb.url, cb.anonKey);
    const r = await anon.from('st_notes').select('id');
    assert.equal(r.status, 401);
    assert.deepEqual(r.error, { code: 'PGRST302', details: null, hint: null, message: 'Anonymous access is disabled' });
    const raw = await restRequest(cb, '/st_notes', { headers: { Authorization: `Bearer ${cb.anonKey}` } });
    assert.equal(raw.headers.get('www-authenticate'), 'Bearer');
  });

  test('PGRST_JWT_ROLE_CLAIM_KEY: the role is read at the JSPath', async () => {
    const { client } = tokenClient(cb, { role: 'authenticated', [CLAIMS]: { roles: ['service_role', 'x'] } });
    let r = await client.rpc('st_whoami');
    assert.equal(r.error, null);
    assert.equal(r.data, 'service_role');
    r = await client.from('st_vault').select('id');
    assert.deepEqual(r.data, [{ id: 7 }]);
    const { client: other } = tokenClient(cb, { [CLAIMS]: { roles: ['authenticated'] } });
    r = await other.from('st_vault').select('id');
    assert.equal(r.error.code, '42501');
  });

  test('PGRST_SERVER_TIMING_ENABLED: jwt, parse, plan, transaction and response durations', async () => {
    const { token } = tokenClient(cb, { [CLAIMS]: { roles: ['service_role'] } });
    const raw = await restRequest(cb, '/st_notes?select=id&order=id', { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(raw.status, 200);
    assert.match(
      raw.headers.get('server-timing') ?? '',
      /^jwt;dur=\d+\.\d, parse;dur=\d+\.\d, plan;dur=\d+\.\d, transaction;dur=\d+\.\d, response;dur=\d+\.\d$/,
    );
  });

  test('PGRST_OPENAPI_MODE=disabled: GET / is 404 PGRST126', async () => {
    const { token } = tokenClient(cb, { [CLAIMS]: { roles: ['service_role'] } });
    const raw = await restRequest(cb, '/', { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(raw.status, 404);
    assert.equal(raw.json.code, 'PGRST126');
    assert.equal(raw.json.message, 'Root endpoint metadata is disabled');
  });

  test('PGRST_DB_TX_END=rollback-allow-override: writes roll back unless Prefer tx=commit', async () => {
    const { client, token } = tokenClient(cb, { [CLAIMS]: { roles: ['service_role'] } });
    let r = await client.from('st_notes').insert({ id: 30, body: 'GONE' });
    assert.equal(r.status, 201);
    r = await client.from('st_notes').select('id').eq('id', 30);
    assert.deepEqual(r.data, []);
    const raw = await restRequest(cb, '/st_notes', {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, Prefer: 'tx=commit' },
      body: { id: 31, body: 'KEPT' },
    });
    assert.equal(raw.status, 201);
    assert.match(raw.headers.get('preference-applied'), /(^|, )tx=commit(,|$)/);
    r = await client.from('st_notes').select('id').eq('id', 31);
    assert.deepEqual(r.data, [{ id: 31 }]);
  });
});

describe('for a transaction pooler: no prepared statements, another anon role, an extra schema', () => {
  let cb;
  let noRole;

  before(
    async () => {
      ({ cb } = await start({
        PGRST_DB_ANON_ROLE: 'authenticated',
        PGRST_DB_SCHEMAS: 'public,extras',
        PGRST_DB_EXTRA_SEARCH_PATH: 'extras,public',
        PGRST_DB_PREPARED_STATEMENTS: 'false',
        PGRST_DB_MAX_ROWS: '2',
        PGRST_DB_PRE_REQUEST: 'public.st_pre',
        PGRST_OPENAPI_MODE: 'ignore-privileges',
        PGRST_OPENAPI_SERVER_PROXY_URI: 'https://api.example.com:8443/rest/v1',
      }));
      await pgQuery(
        cb.dbUrl,
        `create table extras.st_labels (id int primary key, label text);
         insert into extras.st_labels values (1, 'LABEL');
         grant select on extras.st_labels to anon, authenticated, service_role;
         notify pgrst, 'reload schema';`,
      );
      ({ client: noRole } = tokenClient(cb, { sub: 'someone' }));
      await untilKnown(noRole, 'st_notes');
      // Created after start: known once the reload the notify asked for has run.
      await untilKnown(noRole.schema('extras'), 'st_labels');
    },
    { timeout: 180_000 },
  );
  after(async () => cb && (await cb.stop()), { timeout: 60_000 });

  test('PGRST_DB_ANON_ROLE: a token without a role claim runs as that role', async () => {
    const r = await noRole.rpc('st_whoami');
    assert.equal(r.error, null);
    assert.equal(r.data, 'authenticated');
  });

  test('PGRST_DB_EXTRA_SEARCH_PATH: its schemas follow the request schema, and casts may name their types', async () => {
    let r = await noRole.rpc('st_search_path');
    assert.equal(r.data, '"public", "extras", "public"');
    r = await noRole.from('st_notes').select('id,loud:body::shout').eq('id', 1);
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 1, loud: 'ONE' }]);
  });

  test('PGRST_DB_SCHEMAS: the first is the default, another by profile, others are 406 PGRST106', async () => {
    let r = await noRole.schema('extras').from('st_labels').select('id, label');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 1, label: 'LABEL' }]);
    r = await noRole.from('st_labels').select('id');
    assert.equal(r.error.code, 'PGRST205');
    r = await noRole.schema('auth').from('users').select('id');
    assert.equal(r.status, 406);
    assert.equal(r.error.code, 'PGRST106');
    assert.equal(r.error.hint, 'Only the following schemas are exposed: public, extras');
  });

  test('PGRST_DB_PREPARED_STATEMENTS=false: nothing is prepared on the connection', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await noRole.rpc('st_prepared');
      assert.equal(r.error, null);
      assert.equal(r.data, 0);
    }
    // Writes, counts and errors still work unprepared.
    let r = await noRole.from('st_notes').select('id', { count: 'exact' });
    assert.equal(r.count, 3);
    assert.equal(r.data.length, 2, 'PGRST_DB_MAX_ROWS');
    r = await noRole.from('st_notes').insert({ id: 1, body: 'TWICE' });
    assert.equal(r.error.code, '23505');
  });

  test('PGRST_DB_PRE_REQUEST runs before each statement', async () => {
    const raw = await restRequest(cb, '/st_notes?select=id', { headers: { Authorization: `Bearer ${cb.anonKey}` } });
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('x-pre-request'), 'ran');
  });

  test('PGRST_OPENAPI_MODE=ignore-privileges and PGRST_OPENAPI_SERVER_PROXY_URI', async () => {
    const raw = await restRequest(cb, '/', { headers: { Authorization: `Bearer ${cb.anonKey}` } });
    assert.equal(raw.status, 200);
    assert.ok(raw.json.paths['/st_vault']);
    assert.ok(raw.json.paths['/rpc/st_hidden']);
    assert.equal(raw.json.host, 'api.example.com:8443');
    assert.equal(raw.json.basePath, '/rest/v1');
    assert.deepEqual(raw.json.schemes, ['https']);
  });

  test('plans and aggregates stay off unless enabled', async () => {
    let r = await noRole.from('st_notes').select().explain({ analyze: true });
    assert.equal(r.status, 406);
    // PostgREST names the media type it parsed, not the header as sent.
    assert.equal(r.error.code, 'PGRST107');
    assert.equal(
      r.error.message,
      'None of these media types are available: application/vnd.pgrst.plan+text; for="application/json"; options=analyze',
    );
    r = await noRole.from('st_notes').select('id.sum()');
    assert.equal(r.error.code, 'PGRST123');
  });
});

describe('explain(), GeoJSON and aggregates as PostgREST answers them', () => {
  let cb;
  let service;
  let postgis = false;

  before(
    async () => {
      cb = await startCraftbase({ env: { PGRST_DB_PLAN_ENABLED: 'true', PGRST_DB_AGGREGATES_ENABLED: 'true' } });
      service = serviceClient(cb);
      postgis = (await pgQuery(cb.dbUrl, `select 1 from pg_available_extensions where name = 'postgis'`)).length > 0;
      await pgQuery(
        cb.dbUrl,
        `create table public.st_owners (id int primary key, name text not null);
         create table public.st_pets (id int primary key, owner_id int references public.st_owners, name text, amount int);
         insert into public.st_owners values (1, 'Ada'), (2, 'Bo');
         insert into public.st_pets values (1, 1, 'Rex', 10), (2, 1, 'Tom', 5), (3, 2, 'Kit', 7), (4, null, 'Stray', 1);
         grant all on public.st_owners, public.st_pets to anon, authenticated, service_role;
         -- PL/pgSQL, so that the planner cannot inline the call and the plan shows it.
         create function public.st_pet_list() returns setof public.st_pets language plpgsql stable
           as $$ begin return query select * from public.st_pets; end $$;
         ${
           postgis
             ? `create extension if not exists postgis schema extensions;
                create table public.st_shops (id int primary key, address text, spot extensions.geometry(point, 4326));
                insert into public.st_shops values (1, '1 Main St', extensions.st_setsrid(extensions.st_makepoint(-71.1, 42.37), 4326));
                grant all on public.st_shops to anon, authenticated, service_role;`
             : `create table public.st_shops (id int primary key, address text);`
         }`,
      );
      await untilKnown(service, 'st_shops');
    },
    { timeout: 180_000 },
  );
  after(async () => cb && (await cb.stop()), { timeout: 60_000 });

  test('explain() names embedded tables as PostgREST aliases them and sets its search_path', async () => {
    const r = await service.from('st_owners').select('name, st_pets(name)').explain();
    assert.equal(r.error, null);
    assert.match(r.data, /Seq Scan on st_pets st_pets_1/);
    assert.match(r.data, /Seq Scan on st_owners\b(?! t\d)/);
    assert.doesNotMatch(r.data, /\bt\d\b/);
    const j = await service.from('st_owners').select('name').explain({ settings: true, format: 'json' });
    assert.equal(j.error, null);
    assert.equal(j.data[0].Settings.search_path, '"public", "public", "extensions"');
    const analyzed = await service
      .from('st_pets')
      .select('name, st_owners(name)')
      .explain({ analyze: true, verbose: true, buffers: true, wal: true, format: 'json' });
    assert.equal(analyzed.error, null);
    assert.ok(JSON.stringify(analyzed.data).includes('"Alias":"st_owners_1"'));
    const call = await service.rpc('st_pet_list').select('owner_id').explain();
    assert.equal(call.error, null);
    assert.match(call.data, /Function Scan on st_pet_list pgrst_call/);
  });

  test('Accept: application/geo+json is a FeatureCollection of ST_AsGeoJSON rows (PostGIS)', { skip: false }, async (t) => {
    if (!postgis) {
      // PostgREST sends ST_AsGeoJSON all the same; without PostGIS PostgreSQL answers 42883: 404.
      const r = await service.from('st_shops').select('id, address').geojson();
      assert.equal(r.status, 404);
      assert.equal(r.error.code, '42883');
      t.skip('PostGIS is not installed (apt-get install postgresql-15-postgis-3)');
      return;
    }
    const r = await service.from('st_shops').select('id, address, spot').geojson();
    assert.equal(r.error, null);
    assert.deepEqual(r.data, {
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          geometry: { type: 'Point', coordinates: [-71.1, 42.37] },
          properties: { id: 1, address: '1 Main St' },
        },
      ],
    });
    const raw = await fetch(`${cb.url}/rest/v1/st_shops?select=id,spot&id=eq.0`, {
      headers: { apikey: cb.serviceRoleKey, Authorization: `Bearer ${cb.serviceRoleKey}`, Accept: 'application/geo+json' },
    });
    assert.match(raw.headers.get('content-type'), /^application\/geo\+json/);
    assert.deepEqual(await raw.json(), { type: 'FeatureCollection', features: [] });
  });

  test('aggregates inside a to-one embed', async () => {
    let r = await service.from('st_pets').select('id, st_owners(count)').order('id').limit(2);
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [
      { id: 1, st_owners: { count: 1 } },
      { id: 2, st_owners: { count: 1 } },
    ]);
    r = await service.from('st_pets').select('id, owner:st_owners(n:count(), top:id.max())').eq('id', 3);
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 3, owner: { n: 1, top: 2 } }]);
    // No related row: an aggregate still answers one row, as PostgreSQL (and PostgREST) do.
    r = await service.from('st_pets').select('id, st_owners(id.sum()), c:st_owners(count)').eq('id', 4);
    assert.deepEqual(r.data, [{ id: 4, st_owners: { sum: null }, c: { count: 0 } }]);
  });

  test("aggregates beside other columns in a function's select are grouped by them", async () => {
    let r = await service.rpc('st_pet_list').select('owner_id, amount.sum()').order('owner_id');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [
      { owner_id: 1, sum: 15 },
      { owner_id: 2, sum: 7 },
      { owner_id: null, sum: 1 },
    ]);
    r = await service.rpc('st_pet_list').select('total:count()');
    assert.deepEqual(r.data, [{ total: 4 }]);
  });
});
