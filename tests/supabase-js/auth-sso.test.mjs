// SAML 2.0 single sign-on (issue 12, item 4) against a small identity provider this file runs
// itself (lib/saml-idp.mjs): the admin SSO providers API as the dashboard and the Supabase CLI
// call it, `signInWithSSO` by domain and by provider id, the SP metadata, and the assertion
// consumer service — a signed Response signs an SSO user in (implicit and PKCE flows); unsigned,
// wrongly signed, wrapped, mis-addressed, expired and replayed Responses are refused.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import { anonClient, pgQuery, startCraftbase } from './lib/craftbase.mjs';
import { TestIdp, makeKeyPair } from './lib/saml-idp.mjs';

const SITE = 'http://localhost:3000';
let cb;
let idp;
let provider;

before(
  async () => {
    idp = await new TestIdp().start();
    cb = await startCraftbase({
      projectDir: null,
      env: {
        GOTRUE_SAML_ENABLED: 'true',
        GOTRUE_SITE_URL: SITE,
        GOTRUE_URI_ALLOW_LIST: `${SITE}/**`,
        CRAFTBASE_SAML_ALLOW_HTTP_METADATA_ON_LOOPBACK: 'true',
        // This file posts more Responses than GoTrue's 15 per five minutes.
        GOTRUE_SAML_RATE_LIMIT_ASSERTION: '100',
      },
    });
  },
  { timeout: 120_000 },
);

after(async () => {
  if (cb) await cb.stop();
  if (idp) await idp.stop();
});

/** The admin SSO API, as the Supabase CLI calls it (auth-js has no client for it). */
async function admin(method, path, body) {
  const res = await fetch(`${cb.url}/auth/v1/admin/sso/providers${path}`, {
    method,
    headers: {
      apikey: cb.serviceRoleKey,
      authorization: `Bearer ${cb.serviceRoleKey}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

function pkceClient() {
  return anonClient(cb, {
    auth: { flowType: 'pkce', storage: memoryStorage(), persistSession: true, autoRefreshToken: false },
  });
}

/** Starts a sign-in for `domain`; returns the AuthnRequest the IdP receives. */
async function startSignIn(client = anonClient(cb), params = { domain: 'acme.test' }) {
  const { data, error } = await client.auth.signInWithSSO({
    ...params,
    options: { redirectTo: `${SITE}/welcome` },
  });
  assert.equal(error, null, `signInWithSSO: ${error?.message}`);
  assert.ok(data.url.startsWith(`${idp.ssoUrl}?`), data.url);
  return TestIdp.readRedirect(data.url);
}

/** Posts `xml` to the ACS as the IdP's browser form would; returns the redirect. */
async function postToAcs(acs, xml, relayState) {
  const form = new URLSearchParams({ SAMLResponse: Buffer.from(xml).toString('base64') });
  if (relayState !== undefined) form.set('RelayState', relayState);
  const res = await fetch(acs, { method: 'POST', body: form, redirect: 'manual' });
  await res.arrayBuffer();
  return { status: res.status, location: res.headers.get('location') ?? '' };
}

function fragmentOf(location) {
  return new URLSearchParams(new URL(location).hash.slice(1));
}

function assertRefused(result, code, what) {
  assert.equal(result.status, 303, `${what}: ${result.location}`);
  const u = new URL(result.location);
  assert.equal(u.origin + u.pathname, `${SITE}/`, what);
  assert.equal(u.searchParams.get('error_code'), code, `${what}: ${result.location}`);
  assert.ok(!result.location.includes('access_token'), what);
}

function goodResponse(req, extra = {}) {
  return idp.response({
    inResponseTo: req.id,
    acs: req.acs,
    audience: req.issuer,
    nameId: 'user-0001',
    email: 'Jane.Doe@acme.test',
    attributes: { displayName: ['Jane Doe'], groups: ['eng', 'ops'] },
    ...extra,
  });
}

describe('admin SSO providers', () => {
  test('creates a provider from the IdP metadata URL with a domain and attribute mapping', async () => {
    const created = await admin('POST', '', {
      type: 'saml',
      metadata_url: idp.metadataUrl,
      domains: ['acme.test'],
      attribute_mapping: {
        keys: {
          name: { name: 'displayName' },
          groups: { name: 'groups', array: true },
          department: { name: 'department', default: 'unknown' },
        },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    provider = created.body;
    assert.match(provider.id, /^[0-9a-f-]{36}$/);
    assert.equal(provider.saml.entity_id, idp.entityId);
    assert.equal(provider.saml.metadata_url, idp.metadataUrl);
    assert.ok(provider.saml.metadata_xml.includes('IDPSSODescriptor'));
    assert.deepEqual(provider.domains, [{ domain: 'acme.test' }]);

    const list = await admin('GET', '');
    assert.equal(list.status, 200);
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].id, provider.id);
    assert.equal(list.body.items[0].saml.metadata_xml, undefined, 'the list leaves the XML out');

    const got = await admin('GET', `/${provider.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.saml.entity_id, idp.entityId);
  });

  test("GoTrue's validation errors and codes", async () => {
    const noType = await admin('POST', '', { metadata_xml: idp.metadata() });
    assert.equal(noType.status, 400);
    assert.equal(noType.body.error_code, 'validation_failed');
    assert.equal(noType.body.msg, "Only 'saml' supported for SSO provider type");

    const none = await admin('POST', '', { type: 'saml' });
    assert.equal(none.body.msg, 'Either metadata_xml or metadata_url must be set');

    const both = await admin('POST', '', { type: 'saml', metadata_xml: 'x', metadata_url: 'https://x.test/m' });
    assert.equal(both.body.msg, 'Only one of metadata_xml or metadata_url needs to be set');

    const dup = await admin('POST', '', { type: 'saml', metadata_xml: idp.metadata() });
    assert.equal(dup.status, 422);
    assert.equal(dup.body.error_code, 'saml_idp_already_exists');

    const httpRemote = await admin('POST', '', { type: 'saml', metadata_url: 'http://idp.example.com/metadata' });
    assert.equal(httpRemote.status, 400);
    assert.equal(httpRemote.body.msg, 'metadata_url is not a HTTPS URL');

    const dtd = await admin('POST', '', {
      type: 'saml',
      metadata_xml: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${idp.metadata().replace('<?xml version="1.0"?>', '')}`,
    });
    assert.equal(dtd.status, 400, 'a DTD (external entity) is refused');

    const other = new TestIdp();
    other.port = 1;
    const taken = await admin('POST', '', { type: 'saml', metadata_xml: other.metadata(), domains: ['ACME.test'] });
    assert.equal(taken.status, 400);
    assert.equal(taken.body.error_code, 'sso_domain_already_exists');

    const missing = await admin('GET', '/00000000-0000-0000-0000-000000000001');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error_code, 'sso_provider_not_found');
  });

  test('inline metadata up to 512 KiB is taken, larger is refused', async () => {
    const big = new TestIdp();
    big.port = 2;
    const padded = big.metadata().replace('<md:IDPSSODescriptor', `<!-- ${'x'.repeat(200 * 1024)} --><md:IDPSSODescriptor`);
    const created = await admin('POST', '', { type: 'saml', metadata_xml: padded });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await admin('DELETE', `/${created.body.id}`)).status, 200);
    const huge = big.metadata().replace('<md:IDPSSODescriptor', `<!-- ${'x'.repeat(600 * 1024)} --><md:IDPSSODescriptor`);
    const refused = await admin('POST', '', { type: 'saml', metadata_xml: huge });
    assert.ok(refused.status === 400 || refused.status === 413, `${refused.status}`);
  });

  test('the SP metadata carries the SP certificate and the ACS', async () => {
    const res = await fetch(`${cb.url}/auth/v1/sso/saml/metadata?download=true`, { headers: { apikey: cb.anonKey } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/xml');
    assert.equal(res.headers.get('content-disposition'), 'attachment; filename="metadata.xml"');
    const xml = await res.text();
    assert.match(xml, /entityID="[^"]+\/sso\/saml\/metadata"/);
    assert.match(xml, /<ds:X509Certificate>[A-Za-z0-9+/=]{200,}<\/ds:X509Certificate>/);
    assert.match(xml, /AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="[^"]+\/sso\/saml\/acs"/);

    // The key behind it was generated into the data directory's secrets.json (0600).
    const secretsPath = path.join(cb.dataDir, 'secrets.json');
    const secrets = JSON.parse(await fs.readFile(secretsPath, 'utf8'));
    assert.match(secrets.saml_private_key, /^[A-Za-z0-9+/]{1000,}={0,2}$/);
    assert.equal((await fs.stat(secretsPath)).mode & 0o777, 0o600);

    const settings = await (await fetch(`${cb.url}/auth/v1/settings`, { headers: { apikey: cb.anonKey } })).json();
    assert.equal(settings.saml_enabled, true);
  });
});

describe('signInWithSSO and the ACS', () => {
  test('an unknown domain is refused with GoTrue\'s code', async () => {
    const { data, error } = await anonClient(cb).auth.signInWithSSO({ domain: 'nobody.test' });
    assert.equal(data, null);
    assert.equal(error.status, 404);
    assert.equal(error.code, 'sso_provider_not_found');
    assert.equal(error.message, 'No SSO provider assigned for this domain');
  });

  test('a signed Response signs an SSO user in with the mapped email (implicit flow)', async () => {
    const req = await startSignIn();
    assert.match(req.id, /^id-/);
    assert.equal(req.destination, idp.ssoUrl);
    assert.match(req.issuer, /\/sso\/saml\/metadata$/);
    assert.equal(req.sigAlg, 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    assert.ok(req.signature, 'the AuthnRequest is signed');

    const result = await postToAcs(req.acs, idp.sign(goodResponse(req)), req.relayState);
    assert.equal(result.status, 302, result.location);
    assert.ok(result.location.startsWith(`${SITE}/welcome#`), result.location);
    const fragment = fragmentOf(result.location);
    const accessToken = fragment.get('access_token');
    assert.ok(accessToken && fragment.get('refresh_token'));

    const { data, error } = await anonClient(cb).auth.getUser(accessToken);
    assert.equal(error, null);
    assert.equal(data.user.email, 'jane.doe@acme.test');
    assert.equal(data.user.is_sso_user, true);
    assert.equal(data.user.app_metadata.provider, `sso:${provider.id}`);
    assert.equal(data.user.user_metadata.custom_claims.name, 'Jane Doe');
    assert.deepEqual(data.user.user_metadata.custom_claims.groups, ['eng', 'ops']);
    assert.equal(data.user.user_metadata.custom_claims.department, 'unknown');
    assert.equal(data.user.identities[0].provider, `sso:${provider.id}`);
    assert.equal(data.user.identities[0].identity_id !== undefined, true);

    // The relay state was single-use.
    const again = await postToAcs(req.acs, idp.sign(goodResponse(req)), req.relayState);
    assertRefused(again, 'saml_relay_state_not_found', 'a second use of the relay state');
  });

  test('PKCE: the client exchanges the code for a session', async () => {
    const client = pkceClient();
    const req = await startSignIn(client, { providerId: provider.id });
    const result = await postToAcs(req.acs, idp.sign(goodResponse(req), { element: 'Response' }), req.relayState);
    assert.equal(result.status, 302, result.location);
    const code = new URL(result.location).searchParams.get('code');
    assert.ok(code, result.location);
    const { data, error } = await client.auth.exchangeCodeForSession(code);
    assert.equal(error, null, error?.message);
    assert.equal(data.user.email, 'jane.doe@acme.test');
    assert.equal(data.user.is_sso_user, true);
    assert.ok(data.session.access_token);
    const amr = JSON.parse(Buffer.from(data.session.access_token.split('.')[1], 'base64url')).amr;
    assert.equal(amr[0].method, 'sso/saml');
  });

  test('an unsigned Response is refused', async () => {
    const req = await startSignIn();
    assertRefused(await postToAcs(req.acs, goodResponse(req), req.relayState), 'validation_failed', 'unsigned');
  });

  test('a Response signed with another key is refused', async () => {
    const req = await startSignIn();
    const stranger = makeKeyPair('not the IdP');
    const xml = idp.sign(goodResponse(req), { keys: stranger });
    assertRefused(await postToAcs(req.acs, xml, req.relayState), 'validation_failed', 'wrong key');
  });

  test('a wrapped signature (signed assertion moved, forged one returned) is refused', async () => {
    const req = await startSignIn();
    const genuine = idp.sign(goodResponse(req));
    const signedAssertion = genuine.match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/)[0];
    const forged = goodResponse(req, { nameId: 'attacker', email: 'ceo@acme.test' })
      .match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/)[0];
    // The signed assertion hidden in Extensions, the forged one where the SP reads.
    const wrapped = genuine.replace(
      signedAssertion,
      `<samlp:Extensions>${signedAssertion}</samlp:Extensions>${forged}`,
    );
    assertRefused(await postToAcs(req.acs, wrapped, req.relayState), 'validation_failed', 'wrapped in Extensions');

    // The forged assertion reusing the signed one's ID, the signed one inside it.
    const req2 = await startSignIn();
    const genuine2 = idp.sign(goodResponse(req2));
    const signed2 = genuine2.match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/)[0];
    const id2 = signed2.match(/ID="([^"]+)"/)[1];
    const forged2 = goodResponse(req2, { nameId: 'attacker', email: 'ceo@acme.test', assertionId: id2 })
      .match(/<saml:Assertion[\s\S]*<\/saml:Assertion>/)[0]
      .replace('</saml:Assertion>', `<saml:Advice>${signed2}</saml:Advice></saml:Assertion>`);
    const wrapped2 = genuine2.replace(signed2, forged2);
    assertRefused(await postToAcs(req2.acs, wrapped2, req2.relayState), 'validation_failed', 'wrapped in Advice');
  });

  test('a Response for another audience is refused', async () => {
    const req = await startSignIn();
    const xml = idp.sign(goodResponse(req, { audience: 'https://someone-else.test/metadata' }));
    assertRefused(await postToAcs(req.acs, xml, req.relayState), 'validation_failed', 'wrong audience');
  });

  test('an expired assertion is refused', async () => {
    const req = await startSignIn();
    const xml = idp.sign(
      goodResponse(req, { notBefore: Date.now() - 20 * 60_000, notOnOrAfter: Date.now() - 10 * 60_000 }),
    );
    assertRefused(await postToAcs(req.acs, xml, req.relayState), 'validation_failed', 'expired');
  });

  test('a Response answering another request is refused', async () => {
    const req = await startSignIn();
    const xml = idp.sign(goodResponse({ ...req, id: 'id-some-other-request' }));
    assertRefused(await postToAcs(req.acs, xml, req.relayState), 'validation_failed', 'InResponseTo');
  });

  test('an IdP-initiated assertion signs in once; its replay is refused', async () => {
    const req = await startSignIn();
    // Not answering any request: no InResponseTo, no relay state.
    const xml = idp.sign(goodResponse({ ...req, id: undefined }));
    const first = await postToAcs(req.acs, xml);
    assert.equal(first.status, 302, first.location);
    assert.ok(fragmentOf(first.location).get('access_token'), first.location);
    assertRefused(await postToAcs(req.acs, xml), 'validation_failed', 'replayed assertion');
  });

  test('stale metadata fetched by URL is fetched again (the IdP rotated its key)', async () => {
    const before = idp.signing;
    idp.signing = makeKeyPair('craftbase test IdP, rotated');
    try {
      // Fresh metadata is not fetched again: the new key is not trusted yet.
      const req = await startSignIn();
      assertRefused(await postToAcs(req.acs, idp.sign(goodResponse(req)), req.relayState), 'validation_failed', 'new key, old metadata');
      // A day later it is.
      await pgQuery(cb.dbUrl, "update auth.saml_providers set updated_at = now() - interval '25 hours'");
      const req2 = await startSignIn();
      const ok = await postToAcs(req2.acs, idp.sign(goodResponse(req2)), req2.relayState);
      assert.equal(ok.status, 302, ok.location);
      assert.ok(fragmentOf(ok.location).get('access_token'), ok.location);
      const got = await admin('GET', `/${provider.id}`);
      assert.ok(got.body.saml.metadata_xml.includes(idp.signing.certB64), 'the new metadata is stored');
    } finally {
      idp.signing = before;
    }
  });

  test('a disabled provider refuses sign-ins; delete answers with the provider', async () => {
    const updated = await admin('PUT', `/${provider.id}`, { disabled: true });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.disabled, true);
    const { error } = await anonClient(cb).auth.signInWithSSO({ domain: 'acme.test' });
    assert.equal(error.code, 'sso_provider_disabled');

    const deleted = await admin('DELETE', `/${provider.id}`);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.id, provider.id);
    const rows = await pgQuery(cb.dbUrl, 'select count(*)::int as n from auth.sso_domains');
    assert.equal(rows[0].n, 0);
  });
});
