// Passkeys and WebAuthn MFA factors through @supabase/supabase-js (auth.experimental.passkey).
// One server with passkeys and WebAuthn factors on and the relying party left to its defaults
// (GOTRUE_SITE_URL's host and origin); the authenticator is the software one in
// lib/webauthn-authenticator.mjs, behind a fake `navigator.credentials` where supabase-js
// calls the browser API itself.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';

import { anonClient, decodeJwt, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { SoftwareAuthenticator, FakePublicKeyCredential, installFakeBrowser } from './lib/webauthn-authenticator.mjs';

const PASSWORD = 'correct-horse-battery';
const SITE = 'http://localhost:3000';
const PASSKEY_CLIENT = { auth: { experimental: { passkey: true } } };
let cb;
let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        GOTRUE_SITE_URL: SITE,
        GOTRUE_PASSKEY_ENABLED: 'true',
        GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED: 'true',
        GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED: 'true',
        GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
        GOTRUE_RATE_LIMIT_TOKEN_REFRESH: '10000',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

/** A new user signed in on a passkey-enabled client, and a passkey registered for it. */
async function userWithPasskey(tag, authenticator = new SoftwareAuthenticator({ origin: SITE })) {
  const supabase = anonClient(cb, PASSKEY_CLIENT);
  const { data, error } = await supabase.auth.signUp({ email: email(tag), password: PASSWORD });
  assert.equal(error, null);
  const { data: options, error: optionsError } = await supabase.auth.passkey.startRegistration();
  assert.equal(optionsError, null);
  const { data: created, error: createError } = await supabase.auth.passkey.verifyRegistration({
    challengeId: options.challenge_id,
    credential: authenticator.create(options.options),
  });
  assert.equal(createError, null);
  return { supabase, user: data.user, authenticator, passkeyId: created.id };
}

/** Starts a passkey sign-in on a fresh client: the client and the options. */
async function startSignIn() {
  const supabase = anonClient(cb, PASSKEY_CLIENT);
  const { data, error } = await supabase.auth.passkey.startAuthentication();
  assert.equal(error, null);
  return { supabase, options: data };
}

function assertRefused(result, status, code) {
  assert.equal(result.data, null);
  assert.ok(result.error, `expected ${code}`);
  assert.equal(result.error.status, status);
  assert.equal(result.error.code, code);
}

describe('passkeys', () => {
  test('registerPasskey() for a signed-in user, then signInWithPasskey() gives a session like a password sign-in', async () => {
    const authenticator = new SoftwareAuthenticator({ origin: SITE, attestation: 'packed' });
    const uninstall = installFakeBrowser(authenticator);
    try {
      const owner = anonClient(cb, PASSKEY_CLIENT);
      const { data: signUp, error } = await owner.auth.signUp({ email: email('ceremony'), password: PASSWORD });
      assert.equal(error, null);

      const { data: options } = await owner.auth.passkey.startRegistration();
      assert.equal(options.options.rp.id, 'localhost');
      assert.equal(options.options.authenticatorSelection.residentKey, 'required');
      assert.ok(options.options.pubKeyCredParams.some((p) => p.alg === -7));
      assert.ok(options.expires_at > Date.now() / 1000);

      const registered = await owner.auth.registerPasskey();
      assert.equal(registered.error, null);
      assert.match(registered.data.id, /^[0-9a-f-]{36}$/);
      assert.equal(registered.data.friendly_name, 'Passkey');

      const visitor = anonClient(cb, PASSKEY_CLIENT);
      const signedIn = await visitor.auth.signInWithPasskey();
      assert.equal(signedIn.error, null);
      assert.equal(signedIn.data.user.id, signUp.user.id);
      const claims = decodeJwt(signedIn.data.session.access_token).payload;
      assert.equal(claims.sub, signUp.user.id);
      assert.equal(claims.aal, 'aal1');
      assert.deepEqual(
        claims.amr.map((a) => a.method),
        ['passkey'],
      );
      assert.ok(claims.session_id);
      assert.equal(typeof signedIn.data.session.refresh_token, 'string');
      const { data: me } = await visitor.auth.getUser();
      assert.equal(me.user.id, signUp.user.id);
      const refreshed = await visitor.auth.refreshSession();
      assert.equal(refreshed.error, null);

      const { data: listed } = await owner.auth.passkey.list();
      assert.equal(listed.length, 1);
      assert.equal(listed[0].id, registered.data.id);
      assert.equal(typeof listed[0].last_used_at, 'string');
      const [row] = await pgQuery(
        cb.dbUrl,
        'select sign_count, attestation_type from auth.webauthn_credentials where id = $1',
        [registered.data.id],
      );
      assert.equal(Number(row.sign_count), 1);
    } finally {
      uninstall();
    }
  });

  test('list, rename and delete; a deleted passkey no longer signs in', async () => {
    const { supabase, passkeyId, authenticator } = await userWithPasskey('manage');
    const renamed = await supabase.auth.passkey.update({ passkeyId, friendlyName: 'Work laptop' });
    assert.equal(renamed.error, null);
    assert.equal(renamed.data.id, passkeyId);
    assert.equal(renamed.data.friendly_name, 'Work laptop');
    assert.equal((await supabase.auth.passkey.list()).data[0].friendly_name, 'Work laptop');

    assertRefused(
      await supabase.auth.passkey.update({ passkeyId, friendlyName: 'x'.repeat(121) }),
      400,
      'validation_failed',
    );
    assertRefused(
      await supabase.auth.passkey.update({ passkeyId: '00000000-0000-0000-0000-000000000000', friendlyName: 'n' }),
      404,
      'validation_failed',
    );

    assert.equal((await supabase.auth.passkey.delete({ passkeyId })).error, null);
    assert.deepEqual((await supabase.auth.passkey.list()).data, []);

    const { supabase: visitor, options } = await startSignIn();
    assertRefused(
      await visitor.auth.passkey.verifyAuthentication({
        challengeId: options.challenge_id,
        credential: authenticator.get(options.options),
      }),
      400,
      'webauthn_verification_failed',
    );
  });

  test('another user cannot see, rename or delete a passkey', async () => {
    const { passkeyId } = await userWithPasskey('owner');
    const other = anonClient(cb, PASSKEY_CLIENT);
    await other.auth.signUp({ email: email('other'), password: PASSWORD });
    assert.deepEqual((await other.auth.passkey.list()).data, []);
    assertRefused(await other.auth.passkey.update({ passkeyId, friendlyName: 'mine' }), 404, 'validation_failed');
    assertRefused(await other.auth.passkey.delete({ passkeyId }), 404, 'validation_failed');
  });

  test('admins list and delete a user\'s passkeys', async () => {
    const { user, passkeyId, supabase } = await userWithPasskey('admin');
    const admin = serviceClient(cb, PASSKEY_CLIENT).auth.admin;
    const listed = await admin.passkey.listPasskeys({ userId: user.id });
    assert.equal(listed.error, null);
    assert.deepEqual(
      listed.data.map((p) => p.id),
      [passkeyId],
    );
    assertRefused(
      await admin.passkey.deletePasskey({ userId: user.id, passkeyId: '00000000-0000-0000-0000-000000000000' }),
      404,
      'validation_failed',
    );
    assert.equal((await admin.passkey.deletePasskey({ userId: user.id, passkeyId })).error, null);
    assert.deepEqual((await supabase.auth.passkey.list()).data, []);

    // Not for users: the admin routes want the service role.
    const res = await fetch(`${cb.url}/auth/v1/admin/users/${user.id}/passkeys`, {
      headers: { apikey: cb.anonKey, authorization: `Bearer ${(await supabase.auth.getSession()).data.session.access_token}` },
    });
    assert.equal(res.status, 403);
  });

  test('registration needs a session, and a registration challenge of another user is not found', async () => {
    const anonymous = anonClient(cb, PASSKEY_CLIENT);
    const { error } = await anonymous.auth.passkey.startRegistration();
    assert.equal(error.name, 'AuthSessionMissingError');

    const first = await userWithPasskey('first');
    const { data: options } = await first.supabase.auth.passkey.startRegistration();
    const second = anonClient(cb, PASSKEY_CLIENT);
    await second.auth.signUp({ email: email('second'), password: PASSWORD });
    assertRefused(
      await second.auth.passkey.verifyRegistration({
        challengeId: options.challenge_id,
        credential: new SoftwareAuthenticator({ origin: SITE }).create(options.options),
      }),
      400,
      'webauthn_challenge_not_found',
    );
  });

  test('a replayed challenge is refused', async () => {
    const { authenticator } = await userWithPasskey('replay');
    const { supabase, options } = await startSignIn();
    const assertion = authenticator.get(options.options);
    const first = await supabase.auth.passkey.verifyAuthentication({ challengeId: options.challenge_id, credential: assertion });
    assert.equal(first.error, null);
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({ challengeId: options.challenge_id, credential: assertion }),
      400,
      'webauthn_challenge_not_found',
    );
  });

  test('an assertion made for another origin is refused, at sign-in and at registration', async () => {
    const { authenticator, supabase: owner } = await userWithPasskey('origin');
    const { supabase, options } = await startSignIn();
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({
        challengeId: options.challenge_id,
        credential: authenticator.get(options.options, { origin: 'https://evil.example' }),
      }),
      400,
      'webauthn_verification_failed',
    );

    const { data: registration } = await owner.auth.passkey.startRegistration();
    assertRefused(
      await owner.auth.passkey.verifyRegistration({
        challengeId: registration.challenge_id,
        credential: new SoftwareAuthenticator({ origin: 'http://localhost:4000' }).create(registration.options),
      }),
      400,
      'webauthn_verification_failed',
    );
  });

  test('a signature by another key is refused', async () => {
    const { authenticator } = await userWithPasskey('forged');
    const { supabase, options } = await startSignIn();
    const intruder = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({
        challengeId: options.challenge_id,
        credential: authenticator.get(options.options, { signWith: intruder }),
      }),
      400,
      'webauthn_verification_failed',
    );
  });

  test('a signature counter that goes back is refused (a cloned authenticator)', async () => {
    const { authenticator } = await userWithPasskey('counter');
    const first = await startSignIn();
    const ok = await first.supabase.auth.passkey.verifyAuthentication({
      challengeId: first.options.challenge_id,
      credential: authenticator.get(first.options.options, { counter: 10 }),
    });
    assert.equal(ok.error, null);
    const second = await startSignIn();
    assertRefused(
      await second.supabase.auth.passkey.verifyAuthentication({
        challengeId: second.options.challenge_id,
        credential: authenticator.get(second.options.options, { counter: 4 }),
      }),
      400,
      'webauthn_verification_failed',
    );
  });

  test('an expired challenge is refused, and only once', async () => {
    const { authenticator } = await userWithPasskey('expired');
    const { supabase, options } = await startSignIn();
    await pgQuery(cb.dbUrl, "update auth.webauthn_challenges set expires_at = now() - interval '1 second' where id = $1", [
      options.challenge_id,
    ]);
    const credential = authenticator.get(options.options);
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({ challengeId: options.challenge_id, credential }),
      400,
      'webauthn_challenge_expired',
    );
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({ challengeId: options.challenge_id, credential }),
      400,
      'webauthn_challenge_not_found',
    );
  });

  test('malformed verifications are 400s before any ceremony is spent', async () => {
    const { supabase, options } = await startSignIn();
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({ challengeId: 'not-a-uuid', credential: {} }),
      400,
      'validation_failed',
    );
    assertRefused(
      await supabase.auth.passkey.verifyAuthentication({ challengeId: options.challenge_id, credential: { id: 'x' } }),
      400,
      'webauthn_verification_failed',
    );
    const res = await fetch(`${cb.url}/auth/v1/passkeys/authentication/verify`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ challenge_id: options.challenge_id, credential: 'x'.repeat(70 * 1024) }),
    });
    assert.equal(res.status, 413);
  });
});

describe('WebAuthn MFA factors', () => {
  /** Challenge of `factorId`, answered by `authenticator`, then verified. */
  async function challengeAndVerify(supabase, factorId, authenticator, answer = {}) {
    const { data: challenge, error } = await supabase.auth.mfa.challenge({ factorId });
    assert.equal(error, null);
    const kind = challenge.webauthn.type;
    const publicKey = challenge.webauthn.credential_options.publicKey;
    const json = kind === 'create' ? authenticator.create(publicKey, answer) : authenticator.get(publicKey, answer);
    return {
      kind,
      result: await supabase.auth.mfa.verify({
        factorId,
        challengeId: challenge.id,
        webauthn: { type: kind, rpId: 'localhost', rpOrigins: [SITE], credential_response: new FakePublicKeyCredential(json) },
      }),
    };
  }

  test('enroll, challenge (create), verify reaches aal2; a later sign-in steps up with a request ceremony', async () => {
    const supabase = anonClient(cb, PASSKEY_CLIENT);
    const address = email('mfa');
    const { data: signUp } = await supabase.auth.signUp({ email: address, password: PASSWORD });
    const enrolled = await supabase.auth.mfa.enroll({ factorType: 'webauthn', friendlyName: 'YubiKey' });
    assert.equal(enrolled.error, null);
    assert.equal(enrolled.data.type, 'webauthn');
    assert.equal(enrolled.data.friendly_name, 'YubiKey');
    const factorId = enrolled.data.id;

    const key = new SoftwareAuthenticator({ origin: SITE });
    const created = await challengeAndVerify(supabase, factorId, key);
    assert.equal(created.kind, 'create');
    assert.equal(created.result.error, null);
    let claims = decodeJwt(created.result.data.access_token).payload;
    assert.equal(claims.aal, 'aal2');
    assert.ok(claims.amr.some((a) => a.method === 'mfa/webauthn'));

    const { data: factors } = await supabase.auth.mfa.listFactors();
    const factor = factors.all.find((f) => f.id === factorId);
    assert.equal(factor.status, 'verified');
    // GoTrue's record of the last ceremony, for apps that check the answer themselves.
    assert.equal(factor.last_webauthn_challenge_data.type, 'create');
    assert.equal(factor.last_webauthn_challenge_data.challenge.factor_id, factorId);
    assert.equal(typeof factor.last_webauthn_challenge_data.credential_response.response.attestationObject, 'string');
    const [stored] = await pgQuery(cb.dbUrl, 'select web_authn_credential is not null as kept from auth.mfa_factors where id = $1', [
      factorId,
    ]);
    assert.equal(stored.kept, true);

    const again = anonClient(cb, PASSKEY_CLIENT);
    await again.auth.signInWithPassword({ email: address, password: PASSWORD });
    const { data: levels } = await again.auth.mfa.getAuthenticatorAssuranceLevel();
    assert.equal(levels.currentLevel, 'aal1');
    assert.equal(levels.nextLevel, 'aal2');
    const stepUp = await challengeAndVerify(again, factorId, key);
    assert.equal(stepUp.kind, 'request');
    assert.equal(stepUp.result.error, null);
    claims = decodeJwt(stepUp.result.data.access_token).payload;
    assert.equal(claims.aal, 'aal2');

    // Another key's signature does not step up.
    const third = anonClient(cb, PASSKEY_CLIENT);
    await third.auth.signInWithPassword({ email: address, password: PASSWORD });
    const forged = await challengeAndVerify(third, factorId, key, {
      signWith: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    });
    assert.equal(forged.result.error.status, 400);
    assert.equal(forged.result.error.code, 'webauthn_verification_failed');

    // Admins see the factor and can remove it.
    const admin = serviceClient(cb).auth.admin;
    const { data: adminFactors } = await admin.mfa.listFactors({ userId: signUp.user.id });
    assert.ok(adminFactors.factors.some((f) => f.id === factorId && f.factor_type === 'webauthn'));
    assert.equal((await admin.mfa.deleteFactor({ userId: signUp.user.id, id: factorId })).error, null);
  });

  test('a wrong origin is refused and spends the challenge; unenroll removes an unverified factor', async () => {
    const supabase = anonClient(cb, PASSKEY_CLIENT);
    await supabase.auth.signUp({ email: email('mfa-origin'), password: PASSWORD });
    const { data: enrolled } = await supabase.auth.mfa.enroll({ factorType: 'webauthn', friendlyName: 'Key' });
    const wrong = await challengeAndVerify(supabase, enrolled.id, new SoftwareAuthenticator({ origin: SITE }), {
      origin: 'https://evil.example',
    });
    assert.equal(wrong.result.error.status, 400);
    assert.equal(wrong.result.error.code, 'webauthn_verification_failed');
    const [{ n }] = await pgQuery(cb.dbUrl, 'select count(*)::int as n from auth.mfa_challenges where factor_id = $1', [
      enrolled.id,
    ]);
    assert.equal(n, 0);

    assert.equal((await supabase.auth.mfa.unenroll({ factorId: enrolled.id })).error, null);
    const { data: factors } = await supabase.auth.mfa.listFactors();
    assert.equal(factors.all.length, 0);
  });

  test('a user with a verified factor manages passkeys only at aal2', async () => {
    const supabase = anonClient(cb, PASSKEY_CLIENT);
    const address = email('mfa-passkey');
    await supabase.auth.signUp({ email: address, password: PASSWORD });
    const { data: enrolled } = await supabase.auth.mfa.enroll({ factorType: 'webauthn', friendlyName: 'Key' });
    await challengeAndVerify(supabase, enrolled.id, new SoftwareAuthenticator({ origin: SITE }));

    const aal1 = anonClient(cb, PASSKEY_CLIENT);
    await aal1.auth.signInWithPassword({ email: address, password: PASSWORD });
    assertRefused(await aal1.auth.passkey.startRegistration(), 403, 'insufficient_aal');
    const { error } = await supabase.auth.passkey.startRegistration();
    assert.equal(error, null);
  });
});
