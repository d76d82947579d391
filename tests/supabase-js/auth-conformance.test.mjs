// What the upstream auth-js suite (supabase/supabase-js packages/core/auth-js/test, run against
// craftbase: crates/auth/CONFORMANCE.md) found where craftbase answered otherwise than GoTrue:
// address and phone formats refused with GoTrue's status, code and message; bad pagination
// parameters; the ID-token grant's wording; and the gateway's copy of a legacy apikey into
// `Authorization`, which leaves user endpoints without a bearer token. Each through the real
// clients: supabase-js, and auth-js's own client (as that suite uses it: apikey header only).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { AuthClient } from '@supabase/supabase-js';
import { anonClient, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const BAD_EMAIL = 'xx:;x@x.x';
const PASSWORD = 'correct-horse-battery';
let cb;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        GOTRUE_MAILER_AUTOCONFIRM: 'true',
        GOTRUE_EXTERNAL_PHONE_ENABLED: 'true',
        GOTRUE_SMS_AUTOCONFIRM: 'true',
        GOTRUE_EXTERNAL_GOOGLE_ENABLED: 'true',
        GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID: 'conformance-client.apps.googleusercontent.com',
        GOTRUE_EXTERNAL_GOOGLE_SECRET: 'conformance-secret',
        GOTRUE_EXTERNAL_GOOGLE_REDIRECT_URI: 'http://localhost:3000/callback',
      },
    });
  },
  { timeout: 120_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

/** auth-js's client as the upstream suite makes it: the key in `apikey` only. */
function bareAuthClient() {
  return new AuthClient({
    url: `${cb.url}/auth/v1`,
    headers: { apikey: cb.anonKey },
    autoRefreshToken: false,
    persistSession: false,
  });
}

function assertInvalidEmail(error, where) {
  assert.ok(error, `${where}: refused`);
  assert.equal(error.status, 400, where);
  assert.equal(error.code, 'validation_failed', where);
  assert.equal(error.message, 'Unable to validate email address: invalid format', where);
}

describe('email addresses as GoTrue validates them', () => {
  test('signup refuses an address with characters outside an address', async () => {
    const { data, error } = await anonClient(cb).auth.signUp({ email: BAD_EMAIL, password: PASSWORD });
    assertInvalidEmail(error, 'signUp');
    assert.equal(data.user, null);
  });

  test('admin createUser and generateLink refuse it too', async () => {
    const admin = serviceClient(cb).auth.admin;
    const created = await admin.createUser({ email: BAD_EMAIL, password: PASSWORD });
    assertInvalidEmail(created.error, 'createUser');
    for (const type of ['magiclink', 'invite', 'signup', 'recovery']) {
      const link = await admin.generateLink({ type, email: BAD_EMAIL, password: PASSWORD });
      assertInvalidEmail(link.error, `generateLink ${type}`);
    }
    // An ordinary address still passes, in any case, and is kept in lower case.
    const ok = await admin.createUser({ email: `Mixed.Case+tag-${Date.now()}@Example.com`, password: PASSWORD });
    assert.equal(ok.error, null);
    assert.match(ok.data.user.email, /^mixed\.case\+tag-\d+@example\.com$/);
  });

  test('an email code with a malformed address is 422 "Invalid email format"', async () => {
    const { error } = await anonClient(cb).auth.verifyOtp({ email: BAD_EMAIL, token: '123456', type: 'email' });
    assert.equal(error?.status, 422);
    assert.equal(error.code, 'validation_failed');
    assert.equal(error.message, 'Invalid email format');
  });
});

test('a page that is not an unsigned number is 400 "Bad Pagination Parameters"', async () => {
  const admin = serviceClient(cb).auth.admin;
  const { data, error } = await admin.listUsers({ page: -1, perPage: 10 });
  assert.equal(error?.status, 400);
  assert.equal(error.code, 'validation_failed');
  assert.equal(error.message, 'Bad Pagination Parameters: strconv.ParseUint: parsing "-1": invalid syntax');
  assert.deepEqual(data.users, []);
  const perPage = await admin.listUsers({ page: 1, perPage: -5 });
  assert.equal(perPage.error?.status, 400);
  // Left out, both are the defaults.
  const fine = await admin.listUsers();
  assert.equal(fine.error, null);
});

test('a phone number is checked for E.164 before any code is looked up', async () => {
  const { data, error } = await anonClient(cb).auth.verifyOtp({
    phone: '15550100123-invalid',
    token: '123456',
    type: 'sms',
  });
  assert.equal(data.user, null);
  assert.equal(error?.status, 400);
  assert.equal(error.code, 'validation_failed');
  assert.equal(error.message, 'Invalid phone number format (E.164 required)');
  // A well-formed number gets the answer for a code that does not match.
  const wellFormed = await anonClient(cb).auth.verifyOtp({ phone: '+1 555 0100 123', token: '123456', type: 'sms' });
  assert.equal(wellFormed.error?.status, 403);
  assert.equal(wellFormed.error.message, 'Token has expired or is invalid');
});

describe('the ID-token grant in GoTrue words', () => {
  test('a token that is not a JWT is "Bad ID token"', async () => {
    const { data, error } = await anonClient(cb).auth.signInWithIdToken({
      provider: 'google',
      token: 'mock-id-token',
      nonce: 'mock-nonce',
    });
    assert.equal(data.session, null);
    assert.equal(error?.status, 400);
    assert.equal(error.message, 'Bad ID token');
  });

  test('a built-in provider that is off names its issuer', async () => {
    const { error } = await anonClient(cb).auth.signInWithIdToken({ provider: 'apple', token: 'mock-id-token' });
    assert.equal(error?.status, 400);
    assert.equal(error.code, 'provider_disabled');
    assert.equal(error.message, 'Provider (issuer "https://appleid.apple.com") is not enabled');
  });
});

describe('the gateway copies a legacy apikey into Authorization as Supabase does', () => {
  test('user endpoints called with only an apikey answer "This endpoint requires a Bearer token"', async () => {
    const auth = bareAuthClient();
    const enroll = await auth.mfa.enroll({ factorType: 'totp' });
    assert.equal(enroll.data, null);
    assert.equal(enroll.error?.status, 401);
    assert.equal(enroll.error.code, 'no_authorization');
    assert.equal(enroll.error.message, 'This endpoint requires a Bearer token');
    const res = await fetch(`${cb.url}/auth/v1/user`, { headers: { apikey: cb.anonKey } });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).msg, 'This endpoint requires a Bearer token');
  });

  test('a session token still decides, and REST still runs as the key role', async () => {
    const auth = bareAuthClient();
    const email = `bearer-${Date.now()}@example.com`;
    const signedUp = await auth.signUp({ email, password: PASSWORD });
    assert.equal(signedUp.error, null);
    const enroll = await auth.mfa.enroll({ factorType: 'totp' });
    assert.equal(enroll.error, null);
    assert.equal(enroll.data.type, 'totp');
    // REST with the service_role key in apikey alone still acts as service_role.
    const res = await fetch(`${cb.url}/rest/v1/`, { headers: { apikey: cb.serviceRoleKey } });
    assert.equal(res.status, 200);
  });
});

test('SSO answers as GoTrue with SAML 2.0 off, not with a bare 404', async () => {
  const { data, error } = await anonClient(cb, { auth: { flowType: 'pkce' } }).auth.signInWithSSO({
    domain: 'example.com',
    options: { redirectTo: 'http://localhost:3000/callback' },
  });
  assert.equal(data, null);
  assert.equal(error?.status, 404);
  assert.equal(error.code, 'saml_provider_disabled');
  assert.equal(error.message, 'SAML 2.0 is disabled');
  // Refused before the parameters are read: a provider id that is no UUID gets the same answer.
  const byId = await anonClient(cb).auth.signInWithSSO({ providerId: 'test-provider' });
  assert.equal(byId.error?.code, 'saml_provider_disabled');
  const metadata = await fetch(`${cb.url}/auth/v1/sso/saml/metadata`, { headers: { apikey: cb.anonKey } });
  assert.equal(metadata.status, 404);
  assert.equal((await metadata.json()).error_code, 'saml_provider_disabled');
});

test('with the phone provider on, resending a code nobody waits for is a silent 200', async () => {
  const auth = anonClient(cb).auth;
  for (const type of ['sms', 'phone_change']) {
    const { error } = await auth.resend({ type, phone: '+1 555 0100 999' });
    assert.equal(error, null, type);
  }
  const bad = await auth.resend({ type: 'sms', phone: '555-not-a-number' });
  assert.equal(bad.error?.status, 400);
  assert.equal(bad.error.message, 'Invalid phone number format (E.164 required)');
});

test('with SMS autoconfirm, a phone and password sign up and sign in without any SMS', async () => {
  const auth = anonClient(cb).auth;
  const phone = `1555${String(Date.now()).slice(-7)}`;
  const signedUp = await auth.signUp({ phone: `+${phone}`, password: PASSWORD });
  assert.equal(signedUp.error, null);
  assert.ok(signedUp.data.session, 'autoconfirmed: a session');
  assert.equal(signedUp.data.user.phone, phone);
  assert.ok(signedUp.data.user.phone_confirmed_at);
  assert.equal(signedUp.data.user.app_metadata.provider, 'phone');
  const { data, error } = await auth.signInWithPassword({ phone, password: PASSWORD });
  assert.equal(error, null);
  assert.equal(data.user.id, signedUp.data.user.id);
  const wrong = await auth.signInWithPassword({ phone, password: 'not-the-password' });
  assert.equal(wrong.error?.status, 400);
  assert.equal(wrong.error.code, 'invalid_credentials');
  const again = await auth.signUp({ phone, password: PASSWORD });
  assert.equal(again.error?.status, 422);
  assert.equal(again.error.code, 'user_already_exists');
});
