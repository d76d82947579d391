// Auth hardening (issue 9) through @supabase/supabase-js and fetch: mailed links that never
// follow the request's Host, redirect allow-list globs that stay inside their URL part, and
// more below. One server with autoconfirm on (as `supabase start`) and a local SMTP sink.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { anonClient, startCraftbase } from './lib/craftbase.mjs';
import { startSmtpSink } from './lib/smtp-sink.mjs';

const SITE = 'http://localhost:3000';
const PASSWORD = 'correct-horse-battery';
let sink;
let cb;
let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

before(
  async () => {
    sink = await startSmtpSink();
    cb = await startCraftbase({
      env: {
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
