// Auth's limits against an attacker, through @supabase/supabase-js: guessing emailed codes
// (voided after a few wrong guesses, verifications counted per address too), the client address
// from the last trusted proxy hop and IPv6 clients grouped by /64, rate limits on anonymous
// sign-ins, `PUT /user` and `/authorize`, TOTP challenges spent by a wrong code and factors
// locked after repeated ones, and sign-ups and recoveries that answer the same for known and
// unknown addresses. One server behind one trusted proxy (X-Forwarded-For), with an SMTP sink.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { startSmtpSink } from './lib/smtp-sink.mjs';
import { totp, wrongCode } from './lib/auth.mjs';

const PASSWORD = 'correct-horse-battery';
let sink;
let cb;
let seq = 0;
let hosts = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;
/** A fresh client address of the documentation range, for one test's own counters. */
const address = () => `198.51.100.${++hosts}`;
/** A supabase-js client whose requests come through the trusted proxy from `forwardedFor`. */
const from = (forwardedFor) =>
  createClient(cb.url, cb.anonKey, { global: { headers: { 'X-Forwarded-For': forwardedFor } } });

before(
  async () => {
    sink = await startSmtpSink();
    cb = await startCraftbase({
      env: {
        GOTRUE_SMTP_HOST: '127.0.0.1',
        GOTRUE_SMTP_PORT: String(sink.port),
        GOTRUE_SITE_URL: 'http://localhost:3000',
        GOTRUE_MAILER_AUTOCONFIRM: 'false',
        CRAFTBASE_AUTH_TRUSTED_PROXIES: '1',
        GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
        GOTRUE_RATE_LIMIT_EMAIL_SENT: '10000',
        CRAFTBASE_AUTH_RATE_LIMIT_EMAIL_PER_RECIPIENT: '12',
        GOTRUE_RATE_LIMIT_VERIFY: '8',
        GOTRUE_RATE_LIMIT_ANONYMOUS_USERS: '3',
        GOTRUE_RATE_LIMIT_OTP: '3',
        CRAFTBASE_AUTH_RATE_LIMIT_AUTHORIZE: '3',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
  if (sink) await sink.stop();
});

/** A confirmed user signed in from `ip`; the client keeps the session. */
async function signedIn(tag, ip = address()) {
  const mail = email(tag);
  const created = await serviceClient(cb).auth.admin.createUser({ email: mail, password: PASSWORD, email_confirm: true });
  assert.equal(created.error, null);
  const supabase = from(ip);
  const { error } = await supabase.auth.signInWithPassword({ email: mail, password: PASSWORD });
  assert.equal(error, null);
  return { supabase, mail, ip };
}

const outcome = ({ error }) => (error ? `${error.status} ${error.code}` : 'ok');

describe('emailed codes', () => {
  test('a code is void after five wrong guesses, whichever addresses they come from', async () => {
    const mail = email('guessed');
    const sent = await from(address()).auth.signInWithOtp({ email: mail });
    assert.equal(sent.error, null);
    const { code } = await sink.waitFor((m) => m.to.includes(mail));
    const wrong = code === '000000' ? '111111' : '000000';
    const guesses = [];
    for (let i = 0; i < 5; i++) {
      guesses.push(outcome(await from(address()).auth.verifyOtp({ email: mail, token: wrong, type: 'email' })));
    }
    assert.deepEqual(guesses, Array(5).fill('403 otp_expired'));
    const late = await from(address()).auth.verifyOtp({ email: mail, token: code, type: 'email' });
    assert.equal(outcome(late), '403 otp_expired', 'the right code no longer works');

    // A new code works (and its first wrong guess does not void it).
    await from(address()).auth.signInWithOtp({ email: mail });
    const fresh = await sink.waitFor((m) => m.to.includes(mail) && m.code !== code);
    const miss = fresh.code === '000000' ? '111111' : '000000';
    assert.equal(outcome(await from(address()).auth.verifyOtp({ email: mail, token: miss, type: 'email' })), '403 otp_expired');
    const ok = await from(address()).auth.verifyOtp({ email: mail, token: fresh.code, type: 'email' });
    assert.equal(ok.error, null, JSON.stringify(ok.error));
    assert.equal(ok.data.user.email, mail);
  });

  test('verifications naming one address are rate-limited whatever the client address', async () => {
    const mail = email('targeted');
    const results = [];
    for (let i = 0; i < 9; i++) {
      results.push(outcome(await from(address()).auth.verifyOtp({ email: mail, token: '123456', type: 'email' })));
    }
    assert.deepEqual(results, [...Array(8).fill('403 otp_expired'), '429 over_request_rate_limit']);
    // Another address is not affected.
    const other = await from(address()).auth.verifyOtp({ email: email('bystander'), token: '123456', type: 'email' });
    assert.equal(outcome(other), '403 otp_expired');
  });
});

describe('mails', () => {
  test('mails to one address are rate-limited whatever the client address', async () => {
    const mail = email('flooded');
    const results = [];
    for (let i = 0; i < 13; i++) {
      results.push(outcome(await from(address()).auth.resetPasswordForEmail(mail)));
    }
    assert.deepEqual(results, [...Array(12).fill('ok'), '429 over_email_send_rate_limit']);
  });
});

describe('client addresses', () => {
  test('only the hop the trusted proxy appended counts; what the client put before it does not', async () => {
    const real = address();
    const results = [];
    for (const spoofed of ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4']) {
      results.push(outcome(await from(`${spoofed}, ${real}`).auth.signInAnonymously()));
    }
    assert.deepEqual(results, ['ok', 'ok', 'ok', '429 over_request_rate_limit']);
    const neighbour = await from(`${real}, ${address()}`).auth.signInAnonymously();
    assert.equal(neighbour.error, null, 'a different last hop is another client');
  });

  test('IPv6 clients count by their /64', async () => {
    const results = [];
    for (const ip of ['2001:db8:77:1::1', '2001:db8:77:1::2', '2001:db8:77:1:abcd::3', '2001:db8:77:1:ffff:ffff:ffff:ffff']) {
      results.push(outcome(await from(ip).auth.signInAnonymously()));
    }
    assert.deepEqual(results, ['ok', 'ok', 'ok', '429 over_request_rate_limit']);
    const elsewhere = await from('2001:db8:77:2::1').auth.signInAnonymously();
    assert.equal(elsewhere.error, null, 'the next /64 is another client');
  });
});

describe('PUT /user', () => {
  test('password changes are rate-limited per client address and per user', async () => {
    const { supabase, mail } = await signedIn('changer');
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(outcome(await supabase.auth.updateUser({ password: `${PASSWORD}-${i}` })));
    }
    assert.deepEqual(results, ['ok', 'ok', 'ok', '429 over_request_rate_limit']);

    // The same user from elsewhere is still limited; another user from elsewhere is not.
    const { data } = await supabase.auth.getSession();
    const moved = from(address());
    await moved.auth.setSession({ access_token: data.session.access_token, refresh_token: data.session.refresh_token });
    assert.equal(outcome(await moved.auth.updateUser({ password: `${PASSWORD}-moved` })), '429 over_request_rate_limit');
    const other = await signedIn('other-changer');
    assert.equal(outcome(await other.supabase.auth.updateUser({ password: `${PASSWORD}-x` })), 'ok');
    assert.ok(mail);
  });
});

describe('/authorize', () => {
  test('is rate-limited per client address', async () => {
    const ip = address();
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${cb.url}/auth/v1/authorize?provider=github`, {
        headers: { apikey: cb.anonKey, 'X-Forwarded-For': ip },
        redirect: 'manual',
      });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    assert.equal(statuses[3], 429, `${statuses}`);
    assert.ok(statuses.slice(0, 3).every((s) => s !== 429), `${statuses}`);
  });
});

describe('TOTP', () => {
  test('a wrong code spends its challenge; five wrong codes lock the factor', async () => {
    const { supabase } = await signedIn('totp');
    const enrolled = await supabase.auth.mfa.enroll({ factorType: 'totp' });
    assert.equal(enrolled.error, null);
    const { id: factorId, totp: { secret } } = enrolled.data;

    const challenge = await supabase.auth.mfa.challenge({ factorId });
    const wrong = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: wrongCode(secret) });
    assert.equal(outcome(wrong), '422 mfa_verification_failed');
    const retried = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: totp(secret) });
    assert.equal(outcome(retried), '422 mfa_factor_not_found', 'the challenge was spent by the wrong code');

    for (let i = 0; i < 4; i++) {
      const r = await supabase.auth.mfa.challengeAndVerify({ factorId, code: wrongCode(secret) });
      assert.equal(outcome(r), '422 mfa_verification_failed');
    }
    const locked = await supabase.auth.mfa.challengeAndVerify({ factorId, code: totp(secret) });
    assert.equal(outcome(locked), '403 mfa_verification_rejected');
    assert.equal(locked.error.message, 'Further MFA verification attempts will be rejected.');
  });
});

/** A JSON body with ids, times and the address replaced, for comparing shapes and values. */
function normalized(value, mail) {
  return JSON.parse(
    JSON.stringify(value)
      .replaceAll(mail, '<email>')
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, '<time>'),
  );
}

/** The raw answer of `path` for `body`, and how long it took. */
async function timed(path, body, ip) {
  const started = performance.now();
  const res = await fetch(`${cb.url}/auth/v1${path}`, {
    method: 'POST',
    headers: { apikey: cb.anonKey, 'content-type': 'application/json', 'X-Forwarded-For': ip },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  return { status: res.status, json, ms: performance.now() - started };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('enumeration', () => {
  test('sign-up answers the same for a registered address and a new one, and keeps and mails nothing for the registered one', async () => {
    const known = email('known');
    await serviceClient(cb).auth.admin.createUser({ email: known, password: PASSWORD, email_confirm: true });
    const fresh = email('fresh');
    const a = await from(address()).auth.signUp({ email: known, password: 'another-password-1' });
    const b = await from(address()).auth.signUp({ email: fresh, password: 'another-password-1' });
    assert.equal(a.error, null);
    assert.equal(b.error, null);
    assert.deepEqual(normalized(a.data, known), normalized(b.data, fresh));
    assert.equal(a.data.user.identities.length, 1, 'no empty identities telling the address is taken');

    const rawKnown = await timed('/signup', { email: known, password: 'another-password-1' }, address());
    const rawFresh = await timed('/signup', { email: email('fresh'), password: 'another-password-1' }, address());
    assert.equal(rawKnown.status, rawFresh.status);
    assert.deepEqual(Object.keys(rawKnown.json).sort(), Object.keys(rawFresh.json).sort());

    await sink.waitFor((m) => m.to.includes(fresh));
    assert.equal(sink.messages.filter((m) => m.to.includes(known)).length, 0, 'the registered address got no mail');
    const standIns = await pgQuery(cb.dbUrl, "select count(*)::int as n from auth.users where email like '%@stand-in.invalid'");
    assert.equal(standIns[0].n, 0);
    const still = await from(address()).auth.signInWithPassword({ email: known, password: PASSWORD });
    assert.equal(still.error, null, 'the registered account is unchanged');
  });

  test('sign-up and recovery take about as long for registered and unknown addresses', async () => {
    const known = email('timed');
    await serviceClient(cb).auth.admin.createUser({ email: known, password: PASSWORD, email_confirm: true });
    const times = { signupKnown: [], signupNew: [], recoverKnown: [], recoverNew: [] };
    for (let i = 0; i < 5; i++) {
      times.signupKnown.push((await timed('/signup', { email: known, password: 'timed-password-1' }, address())).ms);
      times.signupNew.push((await timed('/signup', { email: email('timed-new'), password: 'timed-password-1' }, address())).ms);
      const rk = await timed('/recover', { email: known }, address());
      const rn = await timed('/recover', { email: email('nobody') }, address());
      assert.deepEqual([rk.status, rk.json], [rn.status, rn.json]);
      times.recoverKnown.push(rk.ms);
      times.recoverNew.push(rn.ms);
    }
    // Loose on purpose: a shared machine's noise must not fail it, a missing bcrypt or SMTP
    // round trip on one side would.
    const close = (x, y) => Math.abs(median(x) - median(y)) < Math.max(40, 0.5 * Math.max(median(x), median(y)));
    assert.ok(close(times.signupKnown, times.signupNew), JSON.stringify(times));
    assert.ok(close(times.recoverKnown, times.recoverNew), JSON.stringify(times));
  });
});
