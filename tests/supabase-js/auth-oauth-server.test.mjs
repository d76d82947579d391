// craftbase as an OAuth 2.1 server through @supabase/supabase-js: clients managed with
// `auth.admin.oauth.*`, the consent page's calls (`auth.oauth.*`) made by a signed-in user, and
// the third-party app's side (authorize redirect, code exchange with PKCE) made with fetch.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';

import { anonClient, decodeJwt, mintJwt, nowSeconds, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const SITE = 'http://localhost:3000';
const REDIRECT = 'http://localhost:4000/callback';
const PASSWORD = 'correct-horse-battery';
// ID tokens need an asymmetric signing key, as on Supabase.
const RSA_JWK = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: 'oauth-server-test',
  alg: 'RS256',
  use: 'sig',
  key_ops: ['sign', 'verify'],
};
let cb;
let seq = 0;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        GOTRUE_SITE_URL: SITE,
        GOTRUE_OAUTH_SERVER_ENABLED: 'true',
        GOTRUE_OAUTH_SERVER_AUTHORIZATION_PATH: '/oauth/consent',
        GOTRUE_JWT_KEYS: JSON.stringify([RSA_JWK]),
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

async function signedIn() {
  const client = anonClient(cb);
  const email = `oauth-${Date.now()}-${seq++}@example.com`;
  const { error } = await client.auth.signUp({ email, password: PASSWORD });
  assert.equal(error, null);
  return { client, email };
}

const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');

/** The third-party app sends the browser to /oauth/authorize; answers the authorization id. */
async function startAuthorization(clientId, scope = 'email', method = 'S256') {
  const url = new URL(`${cb.url}/auth/v1/oauth/authorize`);
  for (const [k, v] of Object.entries({
    client_id: clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope,
    state: 'app-state',
    code_challenge: method === 'plain' ? verifier : challenge,
    code_challenge_method: method,
  })) {
    url.searchParams.set(k, v);
  }
  url.searchParams.set('nonce', 'app-nonce');
  const res = await fetch(url, { redirect: 'manual', headers: { apikey: cb.anonKey } });
  assert.equal(res.status, 302, await res.text());
  const consent = new URL(res.headers.get('location'));
  assert.equal(`${consent.origin}${consent.pathname}`, `${SITE}/oauth/consent`);
  return consent.searchParams.get('authorization_id');
}

/** The third-party app trades the code (client_secret_basic); `extra` replaces parameters. */
async function exchange(clientId, secret, code, extra = {}) {
  const res = await fetch(`${cb.url}/auth/v1/oauth/token`, {
    method: 'POST',
    headers: {
      apikey: cb.anonKey,
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(
      Object.entries({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT,
        ...extra,
      }).filter(([, v]) => v !== undefined),
    ),
  });
  return { status: res.status, body: await res.json() };
}

describe('auth.admin.oauth', () => {
  test('create, list, get, update, regenerate the secret, delete', async () => {
    const oauth = serviceClient(cb).auth.admin.oauth;
    const { data: created, error } = await oauth.createClient({
      client_name: 'CRUD app',
      redirect_uris: [REDIRECT],
    });
    assert.equal(error, null);
    assert.equal(created.client_type, 'confidential');
    assert.equal(created.token_endpoint_auth_method, 'client_secret_basic');
    assert.ok(created.client_secret);

    const { data: listed } = await oauth.listClients();
    assert.ok(listed.clients.some((c) => c.client_id === created.client_id));
    const { data: one } = await oauth.getClient(created.client_id);
    assert.equal(one.client_name, 'CRUD app');
    assert.equal(one.client_secret, undefined);

    const { data: updated } = await oauth.updateClient(created.client_id, { client_name: 'Renamed app' });
    assert.equal(updated.client_name, 'Renamed app');
    const { data: rotated } = await oauth.regenerateClientSecret(created.client_id);
    assert.ok(rotated.client_secret);
    assert.notEqual(rotated.client_secret, created.client_secret);

    assert.equal((await oauth.deleteClient(created.client_id)).error, null);
    const missing = await oauth.getClient(created.client_id);
    assert.equal(missing.error.status, 404);
    assert.equal(missing.error.code, 'oauth_client_not_found');
  });

  test('refusals: a plain-http redirect elsewhere than localhost, the anon key', async () => {
    const bad = await serviceClient(cb).auth.admin.oauth.createClient({
      redirect_uris: ['http://app.example.com/cb'],
    });
    assert.equal(bad.error.status, 400);
    assert.match(bad.error.message, /HTTP scheme only allowed for localhost/);
    const anon = await anonClient(cb).auth.admin.oauth.listClients();
    assert.equal(anon.error.status, 403);
  });
});

describe('auth.oauth (the consent page) and the code exchange', () => {
  test('approve, exchange with PKCE, list and revoke the grant', async () => {
    const { data: app } = await serviceClient(cb).auth.admin.oauth.createClient({
      client_name: 'Third-party app',
      redirect_uris: [REDIRECT],
    });
    const { client, email } = await signedIn();
    const authorizationId = await startAuthorization(app.client_id, 'openid email');

    const { data: details, error } = await client.auth.oauth.getAuthorizationDetails(authorizationId);
    assert.equal(error, null);
    assert.equal(details.authorization_id, authorizationId);
    assert.equal(details.client.name, 'Third-party app');
    assert.equal(details.user.email, email);
    assert.equal(details.scope, 'openid email');

    const { data: approved, error: approveError } = await client.auth.oauth.approveAuthorization(authorizationId, {
      skipBrowserRedirect: true,
    });
    assert.equal(approveError, null);
    const back = new URL(approved.redirect_url);
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT);
    assert.equal(back.searchParams.get('state'), 'app-state');

    const tokens = await exchange(app.client_id, app.client_secret, back.searchParams.get('code'));
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(tokens.body.token_type, 'bearer');
    const { data: me } = await anonClient(cb).auth.getUser(tokens.body.access_token);
    assert.equal(me.user.email, email);

    assert.equal(decodeJwt(tokens.body.access_token).payload.client_id, app.client_id);
    // The ID token verifies with the published key and is addressed to the client.
    const idToken = decodeJwt(tokens.body.id_token);
    const { keys } = await fetch(`${cb.url}/auth/v1/.well-known/jwks.json`, {
      headers: { apikey: cb.anonKey },
    }).then((r) => r.json());
    const jwk = keys.find((k) => k.kid === idToken.header.kid);
    assert.ok(
      verify('RSA-SHA256', Buffer.from(idToken.signingInput), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(idToken.signature, 'base64url')),
    );
    assert.deepEqual(idToken.payload.aud, [app.client_id]);
    assert.equal(idToken.payload.nonce, 'app-nonce');
    assert.equal(idToken.payload.email, email);
    const info = await fetch(`${cb.url}/auth/v1/oauth/userinfo`, {
      headers: { apikey: cb.anonKey, authorization: `Bearer ${tokens.body.access_token}` },
    }).then((r) => r.json());
    assert.equal(info.email, email);
    const refreshed = await fetch(`${cb.url}/auth/v1/oauth/token`, {
      method: 'POST',
      headers: {
        apikey: cb.anonKey,
        authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token }),
    });
    assert.equal(refreshed.status, 200);
    const discovery = await fetch(`${cb.url}/auth/v1/.well-known/oauth-authorization-server`, {
      headers: { apikey: cb.anonKey },
    }).then((r) => r.json());
    assert.equal(discovery.token_endpoint, `${cb.url}/auth/v1/oauth/token`);

    const replay = await exchange(app.client_id, app.client_secret, back.searchParams.get('code'));
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');

    const { data: grants } = await client.auth.oauth.listGrants();
    assert.equal(grants.length, 1);
    assert.equal(grants[0].client.id, app.client_id);
    assert.deepEqual(grants[0].scopes, ['openid', 'email']);

    const { error: revokeError } = await client.auth.oauth.revokeGrant({ clientId: app.client_id });
    assert.equal(revokeError, null);
    const { data: after } = await client.auth.oauth.listGrants();
    assert.deepEqual(after, []);
    const gone = await anonClient(cb).auth.getUser(tokens.body.access_token);
    // auth-js reports the server's 403 session_not_found as a missing session.
    assert.equal(gone.error.name, 'AuthSessionMissingError', 'the client’s session ended with the grant');
  });

  test('deny sends the user back with access_denied', async () => {
    const { data: app } = await serviceClient(cb).auth.admin.oauth.createClient({
      redirect_uris: [REDIRECT],
    });
    const { client } = await signedIn();
    const authorizationId = await startAuthorization(app.client_id, 'email');
    await client.auth.oauth.getAuthorizationDetails(authorizationId);
    const { data, error } = await client.auth.oauth.denyAuthorization(authorizationId, { skipBrowserRedirect: true });
    assert.equal(error, null);
    const back = new URL(data.redirect_url);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'app-state');
  });
});

describe('tokens of other kinds are not access tokens; OAuth 2.1 at /oauth/token', () => {
  /** A signed-in user who approved `app` for `scope`, and the code it sent back. */
  async function approvedCode(app, scope = 'openid email') {
    const { client, email } = await signedIn();
    const authorizationId = await startAuthorization(app.client_id, scope);
    await client.auth.oauth.getAuthorizationDetails(authorizationId);
    const { data } = await client.auth.oauth.approveAuthorization(authorizationId, { skipBrowserRedirect: true });
    return { client, email, code: new URL(data.redirect_url).searchParams.get('code') };
  }

  test('an OAuth ID token is refused by auth and REST as an access token', async () => {
    const { data: app } = await serviceClient(cb).auth.admin.oauth.createClient({ redirect_uris: [REDIRECT] });
    const { client, code } = await approvedCode(app);
    const tokens = await exchange(app.client_id, app.client_secret, code);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const idToken = tokens.body.id_token;
    const bearer = { apikey: cb.anonKey, authorization: `Bearer ${idToken}`, 'content-type': 'application/json' };

    const user = await fetch(`${cb.url}/auth/v1/user`, { headers: bearer });
    assert.equal(user.status, 403, await user.text());
    const update = await fetch(`${cb.url}/auth/v1/user`, {
      method: 'PUT',
      headers: bearer,
      body: JSON.stringify({ password: 'taken-over-password' }),
    });
    assert.equal(update.status, 403, await update.text());
    const logout = await fetch(`${cb.url}/auth/v1/logout?scope=global`, { method: 'POST', headers: bearer });
    assert.equal(logout.status, 403, await logout.text());
    const rest = await fetch(`${cb.url}/rest/v1/connectors?select=id`, { headers: bearer });
    assert.equal(rest.status, 401, await rest.text());
    // The user's own session is untouched.
    assert.equal((await client.auth.getUser()).error, null);
  });

  test('a token without a live session cannot change the account or sign out', async () => {
    const { client, email } = await signedIn();
    const { data } = await client.auth.getUser();
    // Signed with the project secret, as any token REST accepts, but outside a sign-in.
    const sessionless = mintJwt(cb.jwtSecret, {
      sub: data.user.id,
      role: 'authenticated',
      aud: 'authenticated',
      email,
      exp: nowSeconds() + 600,
    });
    const bearer = { apikey: cb.anonKey, authorization: `Bearer ${sessionless}`, 'content-type': 'application/json' };
    const update = await fetch(`${cb.url}/auth/v1/user`, {
      method: 'PUT',
      headers: bearer,
      body: JSON.stringify({ password: 'taken-over-password' }),
    });
    const refused = await update.text();
    assert.equal(update.status, 403, refused);
    assert.equal(JSON.parse(refused).error_code, 'session_not_found');
    const logout = await fetch(`${cb.url}/auth/v1/logout?scope=global`, { method: 'POST', headers: bearer });
    assert.equal(logout.status, 403, await logout.text());
    assert.equal((await client.auth.getUser()).error, null, 'the real session lives on');
    const relogin = await anonClient(cb).auth.signInWithPassword({ email, password: PASSWORD });
    assert.equal(relogin.error, null, 'the password is unchanged');
  });

  test('PKCE plain and a code exchange without redirect_uri are refused', async () => {
    const { data: app } = await serviceClient(cb).auth.admin.oauth.createClient({ redirect_uris: [REDIRECT] });
    // plain: refused at /oauth/authorize, back to the client with invalid_request.
    const url = new URL(`${cb.url}/auth/v1/oauth/authorize`);
    for (const [k, v] of Object.entries({
      client_id: app.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'email',
      state: 'plain-state',
      code_challenge: verifier,
      code_challenge_method: 'plain',
    })) {
      url.searchParams.set(k, v);
    }
    const res = await fetch(url, { redirect: 'manual', headers: { apikey: cb.anonKey } });
    assert.equal(res.status, 302);
    const back = new URL(res.headers.get('location'));
    assert.equal(`${back.origin}${back.pathname}`, REDIRECT, back.toString());
    assert.equal(back.searchParams.get('error'), 'invalid_request');

    const { code } = await approvedCode(app, 'email');
    const missing = await exchange(app.client_id, app.client_secret, code, { redirect_uri: undefined });
    assert.equal(missing.status, 400, JSON.stringify(missing.body));
    assert.equal(missing.body.error, 'invalid_request');
    // The code is still good with the redirect_uri it was issued for.
    const ok = await exchange(app.client_id, app.client_secret, code);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
});
