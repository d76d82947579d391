// Auth MFA (TOTP) and RS256 signing through @supabase/supabase-js. One server, its access
// tokens signed by an RSA key given in GOTRUE_JWT_KEYS as Supabase's signing keys are; the
// authenticator app is played by RFC 6238 computed here with node's crypto.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';

import { anonClient, decodeJwt, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { clientAs, subscribed } from './lib/realtime.mjs';
import { totp, wrongCode } from './lib/auth.mjs';

const PASSWORD = 'correct-horse-battery';
const RSA_JWK = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: 'craftbase-test-rs256',
  alg: 'RS256',
  use: 'sig',
  key_ops: ['sign', 'verify'],
};
let cb;
let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        GOTRUE_JWT_KEYS: JSON.stringify([RSA_JWK]),
        GOTRUE_SITE_URL: 'http://localhost:3000',
        GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

async function signedIn(tag) {
  const address = email(tag);
  const supabase = anonClient(cb);
  const { error } = await supabase.auth.signUp({ email: address, password: PASSWORD });
  assert.equal(error, null);
  return { supabase, address };
}

describe('RS256 signing keys', () => {
  test('tokens are RS256 with the kid, the JWKS has the public half, getClaims, /rest/v1 and realtime accept them', async () => {
    const jwks = await (await fetch(`${cb.url}/auth/v1/.well-known/jwks.json`)).json();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kid, RSA_JWK.kid);
    assert.equal(jwks.keys[0].alg, 'RS256');
    assert.equal(jwks.keys[0].n, RSA_JWK.n);
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(jwks.keys[0][member], undefined);

    const { supabase } = await signedIn('rs256');
    const { data } = await supabase.auth.getSession();
    const { header, payload } = decodeJwt(data.session.access_token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.kid, RSA_JWK.kid);

    const claims = await supabase.auth.getClaims();
    assert.equal(claims.error, null);
    assert.equal(claims.data.claims.sub, payload.sub);
    assert.equal(claims.data.header.alg, 'RS256');

    const jobs = await supabase.from('pipeline_jobs').select('id');
    assert.equal(jobs.error, null, JSON.stringify(jobs.error));

    const realtime = await clientAs(cb, data.session.access_token);
    try {
      await subscribed(realtime.channel('rs256-room'));
    } finally {
      await realtime.removeAllChannels();
    }

    // The same claims signed by another RSA key under the same kid are refused.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const h = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: RSA_JWK.kid })).toString('base64url');
    const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const sig = createSign('RSA-SHA256').update(`${h}.${p}`).sign(other).toString('base64url');
    const forged = await anonClient(cb).auth.getUser(`${h}.${p}.${sig}`);
    assert.equal(forged.error.status, 403);
  });
});

describe('MFA with TOTP', () => {
  test('enroll, challengeAndVerify to aal2, listFactors, getAuthenticatorAssuranceLevel, unenroll', async () => {
    const { supabase, address } = await signedIn('mfa');
    const enrolled = await supabase.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'My phone' });
    assert.equal(enrolled.error, null, JSON.stringify(enrolled.error));
    assert.equal(enrolled.data.type, 'totp');
    assert.equal(enrolled.data.friendly_name, 'My phone');
    assert.match(enrolled.data.totp.qr_code, /^data:image\/svg\+xml;utf-8,<\?xml|^data:image\/svg\+xml;utf-8,<svg/);
    assert.ok(enrolled.data.totp.uri.startsWith(`otpauth://totp/localhost:3000:${address}?`));
    const { id: factorId, totp: { secret } } = enrolled.data;

    let aal = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
    assert.equal(aal.data.currentLevel, 'aal1');
    assert.equal(aal.data.nextLevel, 'aal1', 'an unverified factor does not raise the next level');

    const wrong = await supabase.auth.mfa.challengeAndVerify({ factorId, code: wrongCode(secret) });
    assert.equal(wrong.error.code, 'mfa_verification_failed');
    assert.equal(wrong.error.status, 422);
    assert.equal(wrong.error.message, 'Invalid TOTP code entered');

    const verified = await supabase.auth.mfa.challengeAndVerify({ factorId, code: totp(secret) });
    assert.equal(verified.error, null, JSON.stringify(verified.error));
    const { payload } = decodeJwt(verified.data.access_token);
    assert.equal(payload.aal, 'aal2');
    assert.equal(payload.amr[0].method, 'totp');
    assert.equal(payload.amr[1].method, 'password');
    const { data: current } = await supabase.auth.getSession();
    assert.equal(current.session.access_token, verified.data.access_token, 'auth-js keeps the aal2 session');

    const factors = await supabase.auth.mfa.listFactors();
    assert.equal(factors.error, null);
    assert.equal(factors.data.totp.length, 1);
    assert.equal(factors.data.totp[0].id, factorId);
    assert.equal(factors.data.totp[0].status, 'verified');
    assert.equal(factors.data.all.length, 1);

    aal = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
    assert.equal(aal.data.currentLevel, 'aal2');
    assert.equal(aal.data.nextLevel, 'aal2');
    assert.deepEqual(aal.data.currentAuthenticationMethods.map((m) => m.method), ['totp', 'password']);

    // A fresh sign-in is aal1 with aal2 to reach, and may not remove the factor.
    const other = anonClient(cb);
    await other.auth.signInWithPassword({ email: address, password: PASSWORD });
    const otherAal = await other.auth.mfa.getAuthenticatorAssuranceLevel();
    assert.equal(otherAal.data.currentLevel, 'aal1');
    assert.equal(otherAal.data.nextLevel, 'aal2');
    const refused = await other.auth.mfa.unenroll({ factorId });
    assert.equal(refused.error.code, 'insufficient_aal');

    // The step-by-step flow works as well, and a challenge verifies once.
    const challenge = await other.auth.mfa.challenge({ factorId });
    assert.equal(challenge.error, null);
    assert.equal(challenge.data.type, 'totp');
    const stepped = await other.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: totp(secret) });
    assert.equal(stepped.error, null, JSON.stringify(stepped.error));
    assert.equal(decodeJwt(stepped.data.access_token).payload.aal, 'aal2');
    const replay = await other.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: totp(secret) });
    assert.equal(replay.error.code, 'mfa_ip_address_mismatch');

    // Admins see the factor.
    const admin = serviceClient(cb).auth.admin.mfa;
    const listed = await admin.listFactors({ userId: payload.sub });
    assert.equal(listed.error, null);
    assert.equal(listed.data.factors[0].id, factorId);

    const removed = await supabase.auth.mfa.unenroll({ factorId });
    assert.equal(removed.error, null, JSON.stringify(removed.error));
    assert.equal(removed.data.id, factorId);
    const after = await supabase.auth.mfa.listFactors();
    assert.equal(after.data.all.length, 0);
    const rows = await pgQuery(cb.dbUrl, 'select count(*)::int as n from auth.mfa_factors where user_id = $1', [payload.sub]);
    assert.equal(rows[0].n, 0);
  });

  test('phone factors are refused as GoTrue refuses them with phone MFA off; unknown factors are not found', async () => {
    const { supabase } = await signedIn('mfa-phone');
    const phone = await supabase.auth.mfa.enroll({ factorType: 'phone', phone: '+15555550100' });
    assert.equal(phone.error.code, 'mfa_phone_enroll_not_enabled');
    assert.equal(phone.error.status, 422);
    assert.equal(phone.error.message, 'MFA enroll is disabled for Phone');

    const missing = await supabase.auth.mfa.challenge({ factorId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(missing.error.code, 'mfa_factor_not_found');
    assert.equal(missing.error.status, 404);
  });
});
