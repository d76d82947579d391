// Rate limits in GoTrue's buckets, through @supabase/supabase-js: password sign-ins and
// refreshes share GoTrue's token bucket and leave the sign-up bucket alone, and the 429 bodies
// are GoTrue's. One server behind one trusted proxy, so each test has its own client address.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createClient, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const PASSWORD = 'correct-horse-battery';
let cb;
let seq = 0;
let hosts = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;
/** A fresh client address of the documentation range, for one test's own counters. */
const address = () => `203.0.113.${++hosts}`;
const from = (ip) =>
  createClient(cb.url, cb.anonKey, {
    auth: { autoRefreshToken: false, persistSession: false },
    global: { headers: { 'X-Forwarded-For': ip } },
  });
const outcome = ({ error }) => (error ? `${error.status} ${error.code}` : 'ok');

/** A raw POST to auth from `ip`: status and JSON body. */
async function post(path, body, ip) {
  const res = await fetch(`${cb.url}/auth/v1${path}`, {
    method: 'POST',
    headers: { apikey: cb.anonKey, 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

before(
  async () => {
    cb = await startCraftbase({
      env: {
        CRAFTBASE_AUTH_TRUSTED_PROXIES: '1',
        GOTRUE_RATE_LIMIT_OTP: '3',
        GOTRUE_RATE_LIMIT_TOKEN_REFRESH: '6',
        CRAFTBASE_AUTH_RATE_LIMIT_EMAIL_PER_RECIPIENT: '2',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

async function confirmedUser(tag) {
  const mail = email(tag);
  const { error } = await serviceClient(cb).auth.admin.createUser({ email: mail, password: PASSWORD, email_confirm: true });
  assert.equal(error, null);
  return mail;
}

describe('buckets as GoTrue has them', () => {
  test('password sign-ins do not consume the sign-up bucket', async () => {
    const ip = address();
    const mail = await confirmedUser('signin');
    const signIns = [];
    for (let i = 0; i < 5; i++) {
      signIns.push(outcome(await from(ip).auth.signInWithPassword({ email: mail, password: PASSWORD })));
    }
    assert.deepEqual(signIns, Array(5).fill('ok'));
    // GOTRUE_RATE_LIMIT_OTP is 3: all three sign-ups are still there, the fourth is refused.
    const signUps = [];
    for (let i = 0; i < 4; i++) {
      signUps.push(outcome(await from(ip).auth.signUp({ email: email('signup'), password: PASSWORD })));
    }
    assert.deepEqual(signUps, ['ok', 'ok', 'ok', '429 over_request_rate_limit']);
    // Sign-ins go on: the token bucket (6) has one left.
    assert.equal(outcome(await from(ip).auth.signInWithPassword({ email: mail, password: PASSWORD })), 'ok');
  });

  test('password sign-ins and refreshes share the token bucket, and its 429 is GoTrue\'s', async () => {
    const ip = address();
    const mail = await confirmedUser('token');
    const supabase = from(ip);
    const results = [outcome(await supabase.auth.signInWithPassword({ email: mail, password: PASSWORD }))];
    for (let i = 0; i < 2; i++) results.push(outcome(await supabase.auth.refreshSession()));
    for (let i = 0; i < 3; i++) {
      results.push(outcome(await from(ip).auth.signInWithPassword({ email: mail, password: 'wrong-password' })));
    }
    assert.deepEqual(results, ['ok', 'ok', 'ok', ...Array(3).fill('400 invalid_credentials')]);
    const refused = await post('/token?grant_type=password', { email: mail, password: PASSWORD }, ip);
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.json, { code: 429, error_code: 'over_request_rate_limit', msg: 'Request rate limit reached' });
    // Another client address has its own bucket.
    assert.equal(outcome(await from(address()).auth.signInWithPassword({ email: mail, password: PASSWORD })), 'ok');
  });

  test('mails past the limit answer GoTrue\'s over_email_send_rate_limit', async () => {
    const mail = await confirmedUser('mail');
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await post('/recover', { email: mail }, address()));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 429],
    );
    assert.deepEqual(answers[2].json, { code: 429, error_code: 'over_email_send_rate_limit', msg: 'Email rate limit exceeded' });
  });
});
