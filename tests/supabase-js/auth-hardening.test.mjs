// Auth hardening (issue 9) through @supabase/supabase-js and fetch: mailed links that never
// follow the request's Host, redirect allow-list globs that stay inside their URL part, and
// provider sign-ins that join an existing user by email only when both sides proved it. One
// server with autoconfirm on (as `supabase start`), a local SMTP sink and a local OAuth/OIDC
// provider (GitHub's endpoints, and ID tokens for a generic `acme` provider).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

import { anonClient, mintJwt, nowSeconds, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { clientAs, subscribed } from './lib/realtime.mjs';
import { startOAuthProvider } from './lib/oauth-provider.mjs';
import { startSmtpSink } from './lib/smtp-sink.mjs';
import { browse } from './lib/auth.mjs';

const SITE = 'http://localhost:3000';
const PASSWORD = 'correct-horse-battery';
let sink;
let cb;
/** GitHub's endpoints and an OpenID Connect issuer */
let provider;
let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

before(
  async () => {
    sink = await startSmtpSink();
    provider = await startOAuthProvider({ user: { id: 1, login: 'nobody', email: null }, emails: [] });
    cb = await startCraftbase({
      env: {
        GOTRUE_EXTERNAL_GITHUB_ENABLED: 'true',
        GOTRUE_EXTERNAL_GITHUB_CLIENT_ID: provider.clientId,
        GOTRUE_EXTERNAL_GITHUB_SECRET: provider.clientSecret,
        GOTRUE_EXTERNAL_GITHUB_URL: provider.url,
        GOTRUE_EXTERNAL_PROVIDERS: 'acme',
        GOTRUE_EXTERNAL_ACME_ENABLED: 'true',
        GOTRUE_EXTERNAL_ACME_CLIENT_ID: 'acme-client',
        GOTRUE_EXTERNAL_ACME_SECRET: 'acme-secret',
        GOTRUE_EXTERNAL_ACME_AUTHORIZE_URL: `${provider.url}/login/oauth/authorize`,
        GOTRUE_EXTERNAL_ACME_TOKEN_URL: `${provider.url}/login/oauth/access_token`,
        GOTRUE_EXTERNAL_ACME_USERINFO_URL: `${provider.url}/userinfo`,
        GOTRUE_EXTERNAL_ACME_ISSUER: provider.url,
        GOTRUE_EXTERNAL_ACME_JWKS_URL: `${provider.url}/jwks`,
        GOTRUE_SMTP_HOST: '127.0.0.1',
        GOTRUE_SMTP_PORT: String(sink.port),
        GOTRUE_SITE_URL: SITE,
        GOTRUE_URI_ALLOW_LIST: 'https://*.example.com,http://localhost:*',
        GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
        GOTRUE_RATE_LIMIT_EMAIL_SENT: '10000',
        GOTRUE_RATE_LIMIT_VERIFY: '10000',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
  if (sink) await sink.stop();
  if (provider) await provider.stop();
});

/** A user signed up (and, with autoconfirm, signed in) with a password. */
async function signedUp(tag) {
  const client = anonClient(cb);
  const address = email(tag);
  const { data, error } = await client.auth.signUp({ email: address, password: PASSWORD });
  assert.equal(error, null);
  return { client, address, user: data.user };
}

/** POST with a Host header of the caller's choosing (fetch would not send it). */
function postWithHost(url, host, body) {
  const target = new URL(url);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          host,
          apikey: cb.anonKey,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('mailed links', () => {
  test('a recovery mail links to the configured external URL, never to the request Host', async () => {
    const { address } = await signedUp('host');
    const since = sink.messages.length;
    const res = await postWithHost(`${cb.url}/auth/v1/recover`, 'evil.example', { email: address });
    assert.equal(res.status, 200, res.text);
    const mail = await sink.next(address, since);
    assert.ok(mail.link, mail.text);
    assert.ok(!mail.text.includes('evil.example'), mail.text);
    // `craftbase start` derives API_EXTERNAL_URL from its own address, as `supabase start` sets it.
    assert.ok(mail.link.startsWith(`${cb.url}/auth/v1/verify?`), mail.link);
  });
});

describe('redirect allow-list', () => {
  /** The redirect a recovery mail's link carries for `redirectTo`. */
  async function mailedRedirect(address, redirectTo) {
    const since = sink.messages.length;
    const { error } = await anonClient(cb).auth.resetPasswordForEmail(address, { redirectTo });
    assert.equal(error, null);
    const mail = await sink.next(address, since);
    return new URL(mail.link).searchParams.get('redirect_to');
  }

  test('`*` matches inside one host label or port, never across URL parts; userinfo is refused', async () => {
    const { address } = await signedUp('glob');
    // Refused, so the link leads to the site URL instead.
    for (const hostile of [
      'https://evil.tld?.example.com',
      'https://evil.tld#.example.com',
      'https://evil.tld/.example.com',
      'https://a.b.example.com',
      'http://localhost:1@evil.tld',
      'https://user@app.example.com',
    ]) {
      assert.equal(await mailedRedirect(address, hostile), SITE, hostile);
    }
    // Allowed: a subdomain matching `https://*.example.com`, a localhost port.
    assert.equal(await mailedRedirect(address, 'https://app.example.com'), 'https://app.example.com');
    assert.equal(await mailedRedirect(address, 'http://localhost:4000'), 'http://localhost:4000');
  });
});

describe('identity linking by email', () => {
  /** Signs in through `acme` with an ID token for `sub` carrying `address`. */
  async function idTokenSignIn(sub, address, emailVerified) {
    const rawNonce = randomBytes(16).toString('hex');
    const now = Math.floor(Date.now() / 1000);
    const token = provider.signIdToken({
      iss: provider.url,
      aud: 'acme-client',
      sub,
      email: address,
      email_verified: emailVerified,
      iat: now,
      exp: now + 300,
      nonce: createHash('sha256').update(rawNonce).digest('hex'),
    });
    return anonClient(cb).auth.signInWithIdToken({ provider: 'acme', token, nonce: rawNonce });
  }

  test('an autoconfirmed sign-up never receives a provider sign-in with its address', async () => {
    // Someone signs up first with the victim's address (autoconfirm: nothing was proven) ...
    const { address, user: squatter } = await signedUp('squat');
    // ... then the victim signs in with a provider that verified the address.
    const { data, error } = await idTokenSignIn(`victim-${Date.now()}`, address, true);
    assert.equal(error, null);
    assert.notEqual(data.user.id, squatter.id, 'a new user, not the squatter’s account');
    assert.equal(data.user.email, '', 'the address stays with the user who has it');

    // Through OAuth (GitHub's endpoints) too.
    const { address: other, user: squatter2 } = await signedUp('squat-gh');
    provider.setAccount({
      user: { id: Date.now(), login: 'victim', name: 'Victim', email: null, avatar_url: null },
      emails: [{ email: other, primary: true, verified: true }],
    });
    const supabase = anonClient(cb);
    const { data: started } = await supabase.auth.signInWithOAuth({
      provider: 'github',
      options: { redirectTo: `${SITE}/oauth`, skipBrowserRedirect: true },
    });
    const landed = await browse(started.url, SITE);
    const fragment = new URLSearchParams(landed.hash.slice(1));
    assert.ok(fragment.get('access_token'), landed.toString());
    const { data: set } = await supabase.auth.setSession({
      access_token: fragment.get('access_token'),
      refresh_token: fragment.get('refresh_token'),
    });
    assert.notEqual(set.user.id, squatter2.id);
    const { data: squatterNow } = await serviceClient(cb).auth.admin.getUserById(squatter2.id);
    assert.deepEqual(squatterNow.user.identities.map((i) => i.provider), ['email']);
  });

  test('a proven address links a verified provider sign-in; an unverified one gets a new user', async () => {
    const { address, user } = await signedUp('proven');
    // The owner proves the address: a recovery link from the mailbox, followed.
    const since = sink.messages.length;
    assert.equal((await anonClient(cb).auth.resetPasswordForEmail(address)).error, null);
    const mail = await sink.next(address, since);
    const followed = await fetch(mail.link, { redirect: 'manual' });
    assert.equal(followed.status, 303, await followed.text());
    assert.match(followed.headers.get('location'), /access_token=/);

    // The provider did not verify the address: no link, a new user without it.
    const unverified = await idTokenSignIn(`unverified-${Date.now()}`, address, false);
    assert.equal(unverified.error, null);
    assert.notEqual(unverified.data.user.id, user.id);
    assert.equal(unverified.data.user.email, '');

    // Verified on both sides: the provider account joins the owner.
    const linked = await idTokenSignIn(`verified-${Date.now()}`, address, true);
    assert.equal(linked.error, null);
    assert.equal(linked.data.user.id, user.id);
    assert.deepEqual(linked.data.user.app_metadata.providers.sort(), ['acme', 'email']);
  });

  test('a user a verified provider created is proven for the next provider', async () => {
    const address = email('first-by-provider');
    const first = await idTokenSignIn(`first-${Date.now()}`, address, true);
    assert.equal(first.error, null);
    assert.equal(first.data.user.email, address);
    const second = await idTokenSignIn(`second-${Date.now()}`, address, true);
    assert.equal(second.error, null);
    assert.equal(second.data.user.id, first.data.user.id);
  });
});

describe('tokens of other kinds at REST and realtime', () => {
  test('a token shaped as an OAuth ID token (aud = its client_id) is no access token, even with a role', async () => {
    const { user } = await signedUp('id-shaped');
    const clientId = '7b1d6f8e-2a43-4c1e-9d35-0f6a1c2b3d4e';
    const idShaped = mintJwt(cb.jwtSecret, {
      sub: user.id,
      role: 'authenticated',
      aud: [clientId],
      client_id: clientId,
      exp: nowSeconds() + 600,
    });
    const client = await clientAs(cb, idShaped);
    try {
      await assert.rejects(subscribed(client.channel('id-shaped')), /InvalidJWTToken/);
    } finally {
      await client.removeAllChannels();
      client.realtime.disconnect();
    }
    const rest = await fetch(`${cb.url}/rest/v1/connectors?select=id`, {
      headers: { apikey: cb.anonKey, authorization: `Bearer ${idShaped}` },
    });
    assert.equal(rest.status, 401, await rest.text());
    const state = mintJwt(cb.jwtSecret, { purpose: 'oauth_state', role: 'authenticated', exp: nowSeconds() + 600 });
    const restState = await fetch(`${cb.url}/rest/v1/connectors?select=id`, {
      headers: { apikey: cb.anonKey, authorization: `Bearer ${state}` },
    });
    assert.equal(restState.status, 401, await restState.text());

  });
});
