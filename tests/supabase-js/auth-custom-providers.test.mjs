// Custom OAuth / OIDC providers through @supabase/supabase-js: `auth.admin.customProviders.*`
// registers, lists, reads, changes and removes them, and a registered provider (the local stand-in
// of lib/oauth-provider.mjs) signs a user in through `signInWithOAuth({ provider: 'custom:…' })`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { anonClient, decodeJwt, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { startOAuthProvider } from './lib/oauth-provider.mjs';
import { browse } from './lib/auth.mjs';

const SITE = 'http://localhost:3000';
let cb;
let upstream;
let discovery;

before(
  async () => {
    upstream = await startOAuthProvider({
      user: { sub: 'ext-user-1', email: 'Custom.User@example.com', email_verified: true, name: 'Custom User' },
      emails: [],
    });
    // An OpenID discovery document for the stand-in, whose /jwks publishes its ID-token key.
    discovery = http.createServer((req, res) => {
      const base = `http://127.0.0.1:${discovery.address().port}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          issuer: base,
          authorization_endpoint: `${upstream.url}/login/oauth/authorize`,
          token_endpoint: `${upstream.url}/login/oauth/access_token`,
          userinfo_endpoint: `${upstream.url}/api/v3/user`,
          jwks_uri: `${upstream.url}/jwks`,
        }),
      );
    });
    await new Promise((resolve) => discovery.listen(0, '127.0.0.1', resolve));
    cb = await startCraftbase({
      env: {
        GOTRUE_SITE_URL: SITE,
        // The stand-in provider listens on 127.0.0.1 over http, which GoTrue always refuses.
        CRAFTBASE_AUTH_ALLOW_LOCAL_PROVIDER_URLS: 'true',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
  if (upstream) await upstream.stop();
  if (discovery) await new Promise((resolve) => discovery.close(resolve));
});

const oauth2 = () => ({
  provider_type: 'oauth2',
  identifier: 'custom:stand-in',
  name: 'Stand-in',
  client_id: upstream.clientId,
  client_secret: upstream.clientSecret,
  scopes: ['profile', 'email'],
  authorization_url: `${upstream.url}/login/oauth/authorize`,
  token_url: `${upstream.url}/login/oauth/access_token`,
  userinfo_url: `${upstream.url}/api/v3/user`,
  authorization_params: { prompt: 'consent' },
});

describe('auth.admin.customProviders', () => {
  test('create, list, get, update and delete', async () => {
    const providers = serviceClient(cb).auth.admin.customProviders;
    const { data: created, error } = await providers.createProvider({ ...oauth2(), identifier: 'custom:crud' });
    assert.equal(error, null);
    assert.equal(created.identifier, 'custom:crud');
    assert.equal(created.provider_type, 'oauth2');
    assert.equal(created.pkce_enabled, true);
    assert.equal(created.enabled, true);
    assert.equal(created.client_secret, undefined);
    assert.deepEqual(created.authorization_params, { prompt: 'consent' });

    const dup = await providers.createProvider({ ...oauth2(), identifier: 'custom:crud' });
    assert.equal(dup.error.status, 400);
    assert.equal(dup.error.code, 'conflict');

    const { data: listed } = await providers.listProviders({ type: 'oauth2' });
    assert.ok(listed.providers.some((p) => p.identifier === 'custom:crud'));
    const { data: oidc } = await providers.listProviders({ type: 'oidc' });
    assert.deepEqual(oidc.providers, []);

    const { data: one } = await providers.getProvider('custom:crud');
    assert.equal(one.id, created.id);

    const { data: updated, error: updateError } = await providers.updateProvider('custom:crud', {
      name: 'Renamed',
      enabled: false,
    });
    assert.equal(updateError, null);
    assert.equal(updated.name, 'Renamed');
    assert.equal(updated.enabled, false);

    const removed = await providers.deleteProvider('custom:crud');
    assert.equal(removed.error, null);
    const missing = await providers.getProvider('custom:crud');
    assert.equal(missing.error.status, 404);
    assert.equal(missing.error.code, 'custom_provider_not_found');
  });

  test('GoTrue refusals: identifier prefix, reserved parameters, anon key', async () => {
    const providers = serviceClient(cb).auth.admin.customProviders;
    const bad = await providers.createProvider({ ...oauth2(), identifier: 'plain' });
    assert.equal(bad.error.status, 400);
    assert.equal(bad.error.message, "identifier must start with 'custom:' prefix, e.g. 'custom:plain'");
    const reserved = await providers.createProvider({
      ...oauth2(),
      identifier: 'custom:reserved',
      authorization_params: { redirect_uri: 'https://evil.example.com' },
    });
    assert.equal(reserved.error.message, 'Cannot override reserved OAuth parameter: redirect_uri');
    const anon = await anonClient(cb).auth.admin.customProviders.listProviders();
    assert.equal(anon.error.status, 403);
  });

  test('a registered provider signs a user in through signInWithOAuth', async () => {
    const admin = serviceClient(cb).auth.admin.customProviders;
    const { error: createError } = await admin.createProvider(oauth2());
    assert.equal(createError, null);
    const supabase = anonClient(cb);
    const { data, error } = await supabase.auth.signInWithOAuth({
      provider: 'custom:stand-in',
      options: { redirectTo: `${SITE}/custom`, skipBrowserRedirect: true },
    });
    assert.equal(error, null);
    const landed = await browse(data.url, SITE);
    assert.equal(landed.pathname, '/custom');
    const fragment = new URLSearchParams(landed.hash.slice(1));
    assert.ok(fragment.get('access_token'), landed.toString());
    const { data: set, error: setError } = await supabase.auth.setSession({
      access_token: fragment.get('access_token'),
      refresh_token: fragment.get('refresh_token'),
    });
    assert.equal(setError, null);
    assert.equal(set.user.email, 'custom.user@example.com');
    const identity = set.user.identities.find((i) => i.provider === 'custom:stand-in');
    assert.equal(identity.identity_data.sub, 'ext-user-1');
    assert.equal(decodeJwt(fragment.get('access_token')).payload.amr[0].method, 'oauth');
    assert.ok(upstream.requests.includes('POST /login/oauth/access_token'));

    await admin.updateProvider('custom:stand-in', { enabled: false });
    const off = await anonClient(cb).auth.signInWithOAuth({
      provider: 'custom:stand-in',
      options: { redirectTo: `${SITE}/custom`, skipBrowserRedirect: true },
    });
    const res = await fetch(off.data.url, { redirect: 'manual' });
    assert.equal(res.status, 400);
  });

  test('signInWithIdToken with a registered OIDC provider: extra audiences, nonce check skipped', async () => {
    const issuer = `http://127.0.0.1:${discovery.address().port}`;
    const { data: created, error } = await serviceClient(cb).auth.admin.customProviders.createProvider({
      provider_type: 'oidc',
      identifier: 'custom:native',
      name: 'Native OIDC',
      client_id: 'web-client',
      client_secret: 'web-secret',
      issuer,
      acceptable_client_ids: ['ios-app'],
      skip_nonce_check: true,
    });
    assert.equal(error, null);
    assert.equal(created.discovery_document.jwks_uri, `${upstream.url}/jwks`);
    const now = Math.floor(Date.now() / 1000);
    const token = upstream.signIdToken({
      iss: issuer,
      aud: 'ios-app',
      sub: 'native-user-1',
      email: 'native@example.com',
      email_verified: true,
      iat: now,
      exp: now + 300,
      nonce: 'hashed-nonce-the-app-did-not-keep',
    });
    const { data, error: signInError } = await anonClient(cb).auth.signInWithIdToken({
      provider: 'custom:native',
      token,
    });
    assert.equal(signInError, null);
    assert.equal(data.user.email, 'native@example.com');
    assert.ok(data.user.identities.some((i) => i.provider === 'custom:native'));

    const wrongAudience = upstream.signIdToken({ iss: issuer, aud: 'someone-else', sub: 'x', iat: now, exp: now + 300 });
    const refused = await anonClient(cb).auth.signInWithIdToken({ provider: 'custom:native', token: wrongAudience });
    assert.equal(refused.error.status, 400);
    // GoTrue's words, the token's audiences printed as Go prints a list.
    assert.equal(refused.error.message, 'Unacceptable audience in id_token: [someone-else]');
    const twoWrong = upstream.signIdToken({ iss: issuer, aud: ['a', 'b'], sub: 'x', iat: now, exp: now + 300 });
    const refusedTwo = await anonClient(cb).auth.signInWithIdToken({ provider: 'custom:native', token: twoWrong });
    assert.equal(refusedTwo.error.message, 'Unacceptable audience in id_token: [a b]');
    const listed = upstream.signIdToken({ iss: issuer, aud: ['other', 'ios-app'], sub: 'listed-aud', email: 'listed@example.com', iat: now, exp: now + 300 });
    const accepted = await anonClient(cb).auth.signInWithIdToken({ provider: 'custom:native', token: listed });
    assert.equal(accepted.error, null);

    await serviceClient(cb).auth.admin.customProviders.updateProvider('custom:native', { enabled: false });
    const disabled = await anonClient(cb).auth.signInWithIdToken({ provider: 'custom:native', token });
    assert.equal(disabled.error.status, 400);
    assert.equal(disabled.error.code, 'provider_disabled');
    assert.equal(disabled.error.message, 'Custom provider "custom:native" is disabled');
    const unknown = await anonClient(cb).auth.signInWithIdToken({ provider: 'custom:nobody', token });
    assert.equal(unknown.error.message, 'Custom provider "custom:nobody" not found');
  });

  test('an account without an email is refused unless email_optional', async () => {
    const admin = serviceClient(cb).auth.admin.customProviders;
    const { error } = await admin.createProvider({ ...oauth2(), identifier: 'custom:no-email' });
    assert.equal(error, null);
    upstream.setAccount({ user: { sub: 'no-email-user', name: 'Nobody' }, emails: [] });
    try {
      const start = async () => {
        const { data } = await anonClient(cb).auth.signInWithOAuth({
          provider: 'custom:no-email',
          options: { redirectTo: `${SITE}/no-email`, skipBrowserRedirect: true },
        });
        return browse(data.url, SITE);
      };
      const refused = await start();
      const params = new URLSearchParams(refused.hash.slice(1));
      assert.equal(params.get('error_description'), 'Error getting user email from external provider');

      await admin.updateProvider('custom:no-email', { email_optional: true });
      const landed = await start();
      const fragment = new URLSearchParams(landed.hash.slice(1));
      assert.ok(fragment.get('access_token'), landed.toString());
    } finally {
      upstream.setAccount({
        user: { sub: 'ext-user-1', email: 'Custom.User@example.com', email_verified: true, name: 'Custom User' },
        emails: [],
      });
    }
  });
});
