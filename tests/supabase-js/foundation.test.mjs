// Foundation: the binary starts, reports its keys, and the API gate, CORS and
// request ids behave as the Supabase platform's do. One craftbase for the file.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  STATUS_KEYS,
  anonClient,
  createClient,
  decodeJwt,
  mintJwt,
  nowSeconds,
  pgQuery,
  serviceClient,
  startCraftbase,
  verifyHs256,
} from './lib/craftbase.mjs';

const NO_KEY = 'No API key found in request';
const BAD_KEY = 'Invalid authentication credentials';
const FIVE_YEARS = 5 * 365 * 24 * 3600;

const CORS_ALLOWED_HEADERS = [
  'authorization',
  'apikey',
  'x-client-info',
  'content-type',
  'accept',
  'accept-profile',
  'content-profile',
  'prefer',
  'range',
  'range-unit',
  'x-supabase-api-version',
  'x-retry-count',
  'traceparent',
  'tracestate',
  'baggage',
];
const CORS_EXPOSED_HEADERS = [
  'content-range',
  'range-unit',
  'x-total-count',
  'link',
  'x-supabase-api-version',
  'content-profile',
  'location',
  'preference-applied',
  'retry-after',
];
const ORIGIN = 'http://localhost:3000';

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;

before(
  async () => {
    cb = await startCraftbase();
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

/** fetch against the server; body parsed as JSON when it is JSON. */
async function raw(path, { method = 'GET', headers = {}, body, redirect = 'manual' } = {}) {
  const init = { method, headers: { ...headers }, redirect };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['content-type'] = 'application/json';
    }
  }
  const res = await fetch(cb.url + path, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function describeRes(res) {
  return `HTTP ${res.status} ${res.headers.get('content-type') ?? ''} ${res.text.slice(0, 300)}`;
}

/** Asserts a 401 JSON answer from the API gate with the given message. */
function assertGate401(res, message, what) {
  assert.equal(res.status, 401, `${what}: expected 401, got ${describeRes(res)}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${what}: content-type`);
  assert.equal(res.json?.message, message, `${what}: body ${res.text}`);
}

/** Comma-separated header value as a lowercase set. */
function headerSet(value) {
  return new Set(
    (value ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}

function assertListed(value, wanted, what) {
  const set = headerSet(value);
  if (set.has('*')) return;
  const missing = wanted.filter((h) => !set.has(h));
  assert.deepEqual(missing, [], `${what} lacks ${missing.join(', ')} (got: ${value})`);
}

/** A key with the right shape signed with some other secret. */
function forgedKey(role = 'anon') {
  const iat = nowSeconds();
  return mintJwt('this-is-not-the-craftbase-jwt-secret-at-all', {
    iss: 'supabase',
    role,
    iat,
    exp: iat + 10 * 365 * 24 * 3600,
  });
}

const GATED_PATHS = ['/rest/v1/connectors', '/auth/v1/settings', '/realtime/v1/api/broadcast'];

describe('startup and status', () => {
  test('GET /health answers 200 JSON without an apikey', async () => {
    const res = await raw('/health');
    assert.equal(res.status, 200, describeRes(res));
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.ok(res.json !== undefined && typeof res.json === 'object', `body is not JSON: ${res.text}`);
  });

  test('status --json prints exactly one JSON object with the seven keys', async () => {
    const st = await cb.runStatus();
    assert.equal(st.code, 0, `status exited ${st.code}: ${st.stderr}`);
    assert.ok(st.json && typeof st.json === 'object' && !Array.isArray(st.json), `stdout: ${st.stdout}`);
    assert.deepEqual(Object.keys(st.json).sort(), [...STATUS_KEYS]);
    for (const k of STATUS_KEYS) {
      assert.equal(typeof st.json[k], 'string', k);
      assert.notEqual(st.json[k], '', k);
    }
    assert.equal(st.json.api_url.replace(/\/$/, ''), `http://127.0.0.1:${cb.port}`);
    const db = new URL(st.json.db_url);
    assert.match(db.protocol, /^postgres(ql)?:$/);
    assert.equal(Number(db.port), cb.dbPort, `db_url ${st.json.db_url} is not on --db-port ${cb.dbPort}`);
    // Same answer as at startup: the keys are stable.
    assert.deepEqual(st.json, cb.status);
  });

  test('anon and service_role keys are HS256 JWTs signed with jwt_secret', () => {
    const now = nowSeconds();
    for (const [key, role] of [
      [cb.anonKey, 'anon'],
      [cb.serviceRoleKey, 'service_role'],
    ]) {
      const { header, payload } = decodeJwt(key);
      assert.equal(header.alg, 'HS256', `${role} key alg`);
      assert.ok(verifyHs256(key, cb.jwtSecret), `${role} key does not verify with jwt_secret`);
      assert.ok(!verifyHs256(key, cb.jwtSecret + 'x'), `${role} key verifies with a wrong secret`);
      assert.equal(payload.role, role);
      assert.equal(typeof payload.exp, 'number', `${role} key has no numeric exp`);
      assert.ok(payload.exp > now + FIVE_YEARS, `${role} key exp ${payload.exp} is not far in the future`);
    }
    assert.notEqual(cb.anonKey, cb.serviceRoleKey);
  });

  test('start prints the API URL on stdout, and where to read the keys instead of the keys (stdout is a pipe)', async () => {
    const api = await cb.waitForStdout(/API URL:\s*(\S+)/);
    assert.equal(api[1].replace(/\/$/, ''), cb.url.replace(/\/$/, ''));
    const keys = await cb.waitForStdout(/keys:\s*(craftbase status --json --data-dir \S+)/);
    assert.equal(keys[1], `craftbase status --json --data-dir ${cb.dataDir}`);
    const out = cb.stdout() + cb.stderr();
    for (const [what, secret] of [
      ['anon key', cb.anonKey],
      ['service_role key', cb.serviceRoleKey],
      ['JWT secret', cb.jwtSecret],
      ['DB URL', cb.dbUrl],
      ['DB password', decodeURIComponent(new URL(cb.dbUrl).password)],
    ]) {
      assert.ok(secret, what);
      assert.ok(!out.includes(secret), `craftbase's output shows the ${what}`);
    }
  });

  test('db_url is a superuser connection and the catalogue is seeded (8 connectors, 10 tools)', async () => {
    const [me] = await pgQuery(cb.dbUrl, 'select rolsuper from pg_roles where rolname = current_user');
    assert.equal(me?.rolsuper, true, 'db_url does not connect as a superuser');
    const [counts] = await pgQuery(
      cb.dbUrl,
      `select (select count(*) from public.connectors)::int as connectors,
              (select count(*) from public.connector_tools)::int as tools`,
    );
    assert.deepEqual(counts, { connectors: 8, tools: 10 });
  });
});

describe('API gate', () => {
  test('supabase-js with the anon key gets past the gate', async () => {
    const res = await anonClient(cb).from('connectors').select('*');
    assert.notEqual(res.status, 0, `no HTTP answer: ${res.error?.message}`);
    assert.notEqual(res.status, 401, `anon key rejected: ${JSON.stringify(res.error)}`);
  });

  test('supabase-js with the service_role key gets past the gate', async () => {
    const res = await serviceClient(cb).from('connectors').select('*');
    assert.notEqual(res.status, 0, `no HTTP answer: ${res.error?.message}`);
    assert.notEqual(res.status, 401, `service_role key rejected: ${JSON.stringify(res.error)}`);
  });

  test('a JWT minted with jwt_secret for role anon or service_role is a valid key', async () => {
    const iat = nowSeconds();
    for (const role of ['anon', 'service_role']) {
      const key = mintJwt(cb.jwtSecret, { iss: 'supabase', role, iat, exp: iat + 3600 });
      const viaClient = await createClient(cb.url, key).from('connectors').select('*');
      assert.notEqual(viaClient.status, 0, `no HTTP answer: ${viaClient.error?.message}`);
      assert.notEqual(viaClient.status, 401, `minted ${role} key rejected: ${JSON.stringify(viaClient.error)}`);
      for (const path of GATED_PATHS) {
        const res = await raw(path, { headers: { apikey: key } });
        assert.notEqual(res.status, 401, `minted ${role} key on ${path}: ${describeRes(res)}`);
      }
    }
  });

  test('the apikey may come as ?apikey= instead of a header', async () => {
    for (const path of GATED_PATHS) {
      const res = await raw(`${path}?apikey=${encodeURIComponent(cb.anonKey)}`);
      assert.notEqual(res.status, 401, `${path}?apikey=: ${describeRes(res)}`);
    }
  });

  test('supabase-js with a forged key gets 401 from rest and auth', async () => {
    const forged = createClient(cb.url, forgedKey('anon'));

    const sel = await forged.from('connectors').select('*');
    assert.equal(sel.status, 401, `select: ${sel.status} ${JSON.stringify(sel.error)}`);
    assert.ok(sel.error, 'select: no error');
    assert.equal(sel.error.message, BAD_KEY);
    assert.equal(sel.data, null);

    const user = await forged.auth.getUser(forgedKey('authenticated'));
    assert.ok(user.error, 'getUser: no error');
    assert.equal(user.error.status, 401, `getUser: ${JSON.stringify(user.error)}`);
    assert.equal(user.data.user, null);

    const signIn = await forged.auth.signInWithPassword({ email: 'nobody@example.com', password: 'not-a-password' });
    assert.ok(signIn.error, 'signInWithPassword: no error');
    assert.equal(signIn.error.status, 401, `signInWithPassword: ${JSON.stringify(signIn.error)}`);
    assert.equal(signIn.data.session, null);
  });

  test('requests without an apikey get 401 "No API key found in request"', async () => {
    for (const path of GATED_PATHS) {
      assertGate401(await raw(path), NO_KEY, `GET ${path}`);
    }
    assertGate401(
      await raw('/realtime/v1/api/broadcast', {
        method: 'POST',
        body: { messages: [{ topic: 'room', event: 'e', payload: {} }] },
      }),
      NO_KEY,
      'POST /realtime/v1/api/broadcast',
    );
    // A bearer token alone is not an apikey.
    for (const path of GATED_PATHS) {
      assertGate401(
        await raw(path, { headers: { authorization: `Bearer ${cb.anonKey}` } }),
        NO_KEY,
        `GET ${path} with only Authorization`,
      );
    }
  });

  test('invalid apikeys get 401 "Invalid authentication credentials"', async () => {
    const now = nowSeconds();
    const anon = decodeJwt(cb.anonKey);
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const variants = {
      'forged anon': forgedKey('anon'),
      'forged service_role': forgedKey('service_role'),
      expired: mintJwt(cb.jwtSecret, { iss: 'supabase', role: 'anon', iat: now - 7200, exp: now - 3600 }),
      'role authenticated': mintJwt(cb.jwtSecret, {
        iss: 'supabase',
        role: 'authenticated',
        sub: '00000000-0000-0000-0000-000000000001',
        iat: now,
        exp: now + 3600,
      }),
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...anon.payload, role: 'service_role' })}.`,
      'anon signature on a service_role payload': `${anon.signingInput.split('.')[0]}.${b64({
        ...anon.payload,
        role: 'service_role',
      })}.${anon.signature}`,
      'not a jwt': 'definitely-not-a-key',
    };
    for (const [name, key] of Object.entries(variants)) {
      for (const path of GATED_PATHS) {
        assertGate401(await raw(path, { headers: { apikey: key } }), BAD_KEY, `${name} (header) on ${path}`);
      }
      assertGate401(
        await raw(`/rest/v1/connectors?apikey=${encodeURIComponent(key)}`),
        BAD_KEY,
        `${name} (?apikey=) on /rest/v1/connectors`,
      );
    }
  });

  test('open auth routes answer without an apikey', async () => {
    for (const path of [
      '/auth/v1/verify',
      '/auth/v1/callback',
      '/auth/v1/authorize',
      '/auth/v1/.well-known/jwks.json',
    ]) {
      const res = await raw(path);
      assert.notEqual(res.status, 401, `${path}: ${describeRes(res)}`);
      assert.notEqual(res.json?.message, NO_KEY, `${path} went through the apikey gate`);
    }
  });
});

describe('CORS', () => {
  test('preflight answers without an apikey and allows the supabase-js headers', async () => {
    for (const path of ['/rest/v1/connectors', '/auth/v1/token?grant_type=password', '/realtime/v1/api/broadcast']) {
      const res = await raw(path, {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': CORS_ALLOWED_HEADERS.join(', '),
        },
      });
      assert.ok(res.status === 200 || res.status === 204, `${path}: ${describeRes(res)}`);
      const allowOrigin = res.headers.get('access-control-allow-origin');
      assert.ok(allowOrigin === '*' || allowOrigin === ORIGIN, `${path}: allow-origin ${allowOrigin}`);
      assertListed(res.headers.get('access-control-allow-headers'), CORS_ALLOWED_HEADERS, `${path} allow-headers`);
      assertListed(res.headers.get('access-control-allow-methods'), ['post'], `${path} allow-methods`);
    }
  });

  test('preflight allows the non-simple methods supabase-js uses', async () => {
    // GET, HEAD and POST are CORS-safelisted; these are the ones a browser asks about.
    for (const method of ['PATCH', 'PUT', 'DELETE']) {
      const res = await raw('/rest/v1/connectors', {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': method,
          'access-control-request-headers': 'apikey, authorization, content-type',
        },
      });
      assert.ok(res.status === 200 || res.status === 204, `${method}: ${describeRes(res)}`);
      assertListed(res.headers.get('access-control-allow-methods'), [method.toLowerCase()], `${method} allow-methods`);
    }
  });

  test('responses to cross-origin requests expose the PostgREST headers', async () => {
    const res = await raw('/rest/v1/connectors', { headers: { origin: ORIGIN, apikey: cb.anonKey } });
    const allowOrigin = res.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === '*' || allowOrigin === ORIGIN, `allow-origin ${allowOrigin} on ${describeRes(res)}`);
    assertListed(res.headers.get('access-control-expose-headers'), CORS_EXPOSED_HEADERS, 'expose-headers');
  });

  test('gate rejections carry CORS headers so browsers can read them', async () => {
    const res = await raw('/rest/v1/connectors', { headers: { origin: ORIGIN } });
    assertGate401(res, NO_KEY, 'cross-origin GET without apikey');
    const allowOrigin = res.headers.get('access-control-allow-origin');
    assert.ok(allowOrigin === '*' || allowOrigin === ORIGIN, `allow-origin ${allowOrigin} on a 401`);
  });
});

describe('request ids', () => {
  test('every response carries an x-request-id', async () => {
    const answers = {
      'GET /health': await raw('/health'),
      'GET /rest/v1/connectors (anon)': await raw('/rest/v1/connectors', { headers: { apikey: cb.anonKey } }),
      'GET /rest/v1/connectors (no key)': await raw('/rest/v1/connectors'),
      'GET /auth/v1/settings (forged)': await raw('/auth/v1/settings', { headers: { apikey: forgedKey() } }),
      'OPTIONS /rest/v1/connectors': await raw('/rest/v1/connectors', {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'apikey',
        },
      }),
      'GET /no/such/path': await raw('/no/such/path'),
    };
    const ids = new Set();
    for (const [what, res] of Object.entries(answers)) {
      const id = res.headers.get('x-request-id');
      assert.ok(id && id.trim() !== '', `${what}: no x-request-id (${describeRes(res)})`);
      ids.add(id);
    }
    assert.equal(ids.size, Object.keys(answers).length, 'x-request-id values repeat across requests');
  });
});

describe('writes with a bad key', () => {
  const snapshot = () =>
    pgQuery(
      cb.dbUrl,
      `select (select count(*) from public.connectors)::int as connectors,
              (select count(*) from public.connector_tools)::int as tools,
              (select md5(coalesce(string_agg(c::text, '|' order by c::text), '')) from public.connectors c) as digest`,
    ).then((rows) => rows[0]);

  test('are rejected with 401 and change nothing in the database', async () => {
    const before = await snapshot();
    assert.equal(before.connectors, 8);
    assert.equal(before.tools, 10);

    const forged = forgedKey('service_role');
    const row = { id: 'forged', name: 'forged', slug: 'forged', description: 'written with a forged key' };
    const attempts = [
      ['POST forged apikey', '/rest/v1/connectors', { method: 'POST', body: row, headers: { apikey: forged, authorization: `Bearer ${forged}`, prefer: 'return=minimal' } }, BAD_KEY],
      ['POST forged ?apikey=', `/rest/v1/connectors?apikey=${forged}`, { method: 'POST', body: [row] }, BAD_KEY],
      ['POST no apikey', '/rest/v1/connectors', { method: 'POST', body: row, headers: { authorization: `Bearer ${cb.serviceRoleKey}` } }, NO_KEY],
      ['PATCH forged apikey', '/rest/v1/connectors?id=not.is.null', { method: 'PATCH', body: { name: 'forged' }, headers: { apikey: forged } }, BAD_KEY],
      ['DELETE forged apikey', '/rest/v1/connectors?id=not.is.null', { method: 'DELETE', headers: { apikey: forged } }, BAD_KEY],
      ['DELETE forged apikey (tools)', '/rest/v1/connector_tools?id=not.is.null', { method: 'DELETE', headers: { apikey: forged } }, BAD_KEY],
    ];
    for (const [what, path, init, message] of attempts) {
      assertGate401(await raw(path, init), message, what);
    }

    const client = createClient(cb.url, forged);
    const ins = await client.from('connectors').insert(row);
    assert.equal(ins.status, 401, `supabase-js insert: ${ins.status} ${JSON.stringify(ins.error)}`);
    const upd = await client.from('connectors').update({ name: 'forged' }).not('id', 'is', null);
    assert.equal(upd.status, 401, `supabase-js update: ${upd.status} ${JSON.stringify(upd.error)}`);
    const del = await client.from('connectors').delete().not('id', 'is', null);
    assert.equal(del.status, 401, `supabase-js delete: ${del.status} ${JSON.stringify(del.error)}`);

    const afterSnap = await snapshot();
    assert.deepEqual(afterSnap, before);
  });
});
