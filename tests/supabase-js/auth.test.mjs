// Auth (/auth/v1) through @supabase/supabase-js: accounts, sessions, refresh rotation,
// sign-out scopes, the admin API and the email flows, with a local SMTP sink standing in for
// the mailbox. Four servers: defaults (autoconfirm on), autoconfirm off with a 1 s reuse
// interval, tight rate limits, and autoconfirm off with single-confirmation email changes and
// mail templates from files.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { anonClient, createClient, decodeJwt, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { startOAuthProvider } from './lib/oauth-provider.mjs';
import { startSmtpSink } from './lib/smtp-sink.mjs';
import { browse } from './lib/auth.mjs';

const SITE = 'http://localhost:3000';
const PASSWORD = 'correct-horse-battery';
let sink;
/** a GitHub look-alike */
let github;
const GITHUB_EMAIL = `octo-${Date.now()}@example.com`;
/** autoconfirm on, as `supabase start` */
let cb;
/** autoconfirm off, reuse interval 1 s, reauthentication for password changes */
let strict;
/** tight rate limits, client address from X-Forwarded-For, 5 s ES256 access tokens */
let limited;
/** autoconfirm off, email changes confirmed by the new address alone, templates from files */
let templated;
let templateDir;
const CONFIRM_TEMPLATE =
  '<h1>Welcome aboard Tool Connect Craft, {{ .Email }}!</h1>\n' +
  '<p><a href="{{.ConfirmationURL}}">Confirm my account</a> or type {{ .Token }} ({{ .SiteURL }}, {{  .RedirectTo  }}).</p>\n' +
  '<p>Hash {{ .TokenHash }}, name {{ .Data.name }}.</p>\n';
const EMAIL_CHANGE_TEMPLATE = '<p>Moving from {{ .Email }} to {{ .NewEmail }}: <a href="{{ .ConfirmationURL }}">go</a></p>\n';
const REAUTHENTICATION_TEMPLATE = '<p>{{ .Email }}, your code for {{ .SiteURL }} is {{ .Token }}.</p>\n';

/** An EC P-256 signing key for `limited`, as GOTRUE_JWT_KEYS holds it. */
const SIGNING_JWK = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'craftbase-test-es256' };

let seq = 0;
const email = (tag) => `${tag}-${Date.now()}-${seq++}@example.com`;

function smtpEnv() {
  return {
    GOTRUE_SMTP_HOST: '127.0.0.1',
    GOTRUE_SMTP_PORT: String(sink.port),
    GOTRUE_SMTP_ADMIN_EMAIL: 'auth@craftbase.test',
    GOTRUE_SITE_URL: SITE,
    GOTRUE_URI_ALLOW_LIST: 'http://localhost:3000/**',
    GOTRUE_RATE_LIMIT_SIGN_IN_SIGN_UPS: '10000',
    GOTRUE_RATE_LIMIT_EMAIL_SENT: '10000',
    GOTRUE_RATE_LIMIT_VERIFY: '10000',
  };
}

before(
  async () => {
    sink = await startSmtpSink();
    templateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-templates-'));
    await fs.writeFile(path.join(templateDir, 'confirm.html'), CONFIRM_TEMPLATE);
    await fs.writeFile(path.join(templateDir, 'email-change.html'), EMAIL_CHANGE_TEMPLATE);
    await fs.writeFile(path.join(templateDir, 'reauthentication.html'), REAUTHENTICATION_TEMPLATE);
    github = await startOAuthProvider({
      user: { id: 4242, login: 'octo', name: 'Octo Cat', email: null, avatar_url: 'https://example.com/octo.png' },
      emails: [
        { email: 'old@example.com', primary: false, verified: true },
        { email: GITHUB_EMAIL, primary: true, verified: true },
      ],
    });
    [cb, strict, limited, templated] = await Promise.all([
      startCraftbase({
        env: {
          ...smtpEnv(),
          GOTRUE_EXTERNAL_GITHUB_ENABLED: 'true',
          GOTRUE_EXTERNAL_GITHUB_CLIENT_ID: github.clientId,
          GOTRUE_EXTERNAL_GITHUB_SECRET: github.clientSecret,
          GOTRUE_EXTERNAL_GITHUB_URL: github.url,
          GOTRUE_SECURITY_MANUAL_LINKING_ENABLED: 'true',
          // A generic OpenID Connect provider whose ID tokens the stub signs.
          GOTRUE_EXTERNAL_PROVIDERS: 'acme',
          GOTRUE_EXTERNAL_ACME_ENABLED: 'true',
          GOTRUE_EXTERNAL_ACME_CLIENT_ID: 'acme-client',
          GOTRUE_EXTERNAL_ACME_SECRET: 'acme-secret',
          GOTRUE_EXTERNAL_ACME_AUTHORIZE_URL: `${github.url}/login/oauth/authorize`,
          GOTRUE_EXTERNAL_ACME_TOKEN_URL: `${github.url}/login/oauth/access_token`,
          GOTRUE_EXTERNAL_ACME_USERINFO_URL: `${github.url}/userinfo`,
          GOTRUE_EXTERNAL_ACME_ISSUER: github.url,
          GOTRUE_EXTERNAL_ACME_JWKS_URL: `${github.url}/jwks`,
        },
      }),
      startCraftbase({
        env: {
          ...smtpEnv(),
          GOTRUE_MAILER_AUTOCONFIRM: 'false',
          GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL: '1',
          GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION: 'true',
        },
      }),
      startCraftbase({
        env: {
          ...smtpEnv(),
          GOTRUE_RATE_LIMIT_HEADER: 'X-Forwarded-For',
          // Password sign-ins count in GoTrue's token bucket (with refreshes), not the sign-up one;
          // room for the auto-refresh test's refreshes from the loopback address.
          GOTRUE_RATE_LIMIT_TOKEN_REFRESH: '60',
          GOTRUE_RATE_LIMIT_EMAIL_SENT: '2',
          GOTRUE_JWT_EXP: '5',
          GOTRUE_JWT_KEYS: JSON.stringify([SIGNING_JWK]),
        },
      }),
      startCraftbase({
        env: {
          ...smtpEnv(),
          GOTRUE_MAILER_AUTOCONFIRM: 'false',
          GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED: 'false',
          // A plain path and a file:// URL; an unreachable http(s) URL falls back to the built-in text.
          GOTRUE_MAILER_TEMPLATES_CONFIRMATION: path.join(templateDir, 'confirm.html'),
          GOTRUE_MAILER_TEMPLATES_EMAIL_CHANGE: pathToFileURL(path.join(templateDir, 'email-change.html')).href,
          GOTRUE_MAILER_TEMPLATES_RECOVERY: 'http://127.0.0.1:9/recovery.html',
          GOTRUE_MAILER_TEMPLATES_REAUTHENTICATION: path.join(templateDir, 'reauthentication.html'),
          GOTRUE_MAILER_SUBJECTS_REAUTHENTICATION: 'Is it really you?',
        },
      }),
    ]);
  },
  { timeout: 240_000 },
);

after(
  async () => {
    await Promise.all([cb, strict, limited, templated].filter(Boolean).map((c) => c.stop()));
    if (templateDir) await fs.rm(templateDir, { recursive: true, force: true });
    if (sink) await sink.stop();
    if (github) await github.stop();
  },
  { timeout: 60_000 },
);

/** A client and a confirmed user signed in with a password. */
async function signedIn(server = cb, tag = 'user') {
  const address = email(tag);
  const admin = serviceClient(server);
  const { error } = await admin.auth.admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
  assert.equal(error, null);
  const client = anonClient(server);
  const { data, error: signInError } = await client.auth.signInWithPassword({ email: address, password: PASSWORD });
  assert.equal(signInError, null);
  return { client, session: data.session, user: data.user, email: address };
}

/** Follows a mailed link like a browser: one GET, no redirect following. */
async function follow(link) {
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303, `GET ${link} answered ${res.status}`);
  return new URL(res.headers.get('location'));
}

describe('accounts and sessions', () => {
  test('signUp returns a session whose token carries the §2.4 claims', async () => {
    const supabase = anonClient(cb);
    const address = email('signup');
    const { data, error } = await supabase.auth.signUp({ email: address, password: PASSWORD, options: { data: { name: 'Ada' } } });
    assert.equal(error, null);
    assert.ok(data.session, 'autoconfirm on: a session');
    assert.equal(data.user.email, address);
    assert.equal(data.user.aud, 'authenticated');
    assert.equal(data.user.role, 'authenticated');
    assert.equal(data.user.user_metadata.name, 'Ada');
    assert.deepEqual(data.user.app_metadata, { provider: 'email', providers: ['email'] });
    assert.equal(data.user.identities.length, 1);
    assert.equal(data.user.identities[0].provider, 'email');
    assert.ok(data.user.email_confirmed_at);
    assert.equal(data.user.phone, '');
    assert.equal(data.session.token_type, 'bearer');
    assert.equal(data.session.expires_in, 3600);
    assert.match(data.session.refresh_token, /^[A-Za-z0-9]{12}$/);
    const { payload } = decodeJwt(data.session.access_token);
    assert.equal(payload.sub, data.user.id);
    assert.equal(payload.aud, 'authenticated');
    assert.equal(payload.role, 'authenticated');
    assert.equal(payload.email, address);
    assert.equal(payload.phone, '');
    assert.equal(payload.aal, 'aal1');
    assert.equal(payload.exp - payload.iat, 3600);
    assert.equal(payload.is_anonymous, false);
    assert.equal(payload.amr[0].method, 'password');
    assert.equal(payload.user_metadata.name, 'Ada');
    assert.equal(payload.iss, `${cb.url}/auth/v1`);
    const rows = await pgQuery(cb.dbUrl, 'select user_id, user_agent, host(ip) as ip from auth.sessions where id = $1', [
      payload.session_id,
    ]);
    assert.equal(rows[0].user_id, data.user.id);
    assert.equal(rows[0].ip, '127.0.0.1');
    assert.ok(rows[0].user_agent);
  });

  test('signing up an existing email again is refused with user_already_exists', async () => {
    const supabase = anonClient(cb);
    const address = email('twice');
    await supabase.auth.signUp({ email: address, password: PASSWORD });
    const { error } = await anonClient(cb).auth.signUp({ email: address, password: PASSWORD });
    assert.equal(error.status, 422);
    assert.equal(error.code, 'user_already_exists');
  });

  test('a short password is a weak_password with reasons', async () => {
    const { error } = await anonClient(cb).auth.signUp({ email: email('weak'), password: '123' });
    assert.equal(error.name, 'AuthWeakPasswordError');
    assert.equal(error.code, 'weak_password');
    assert.deepEqual(error.reasons, ['length']);
  });

  test('signInWithPassword, and a wrong password is 400 invalid_credentials', async () => {
    const { client, session, email: address } = await signedIn();
    assert.ok(session.access_token);
    const { data } = await client.auth.getSession();
    assert.equal(data.session.user.email, address);
    const { error } = await anonClient(cb).auth.signInWithPassword({ email: address, password: 'not-the-password' });
    assert.equal(error.status, 400);
    assert.equal(error.code, 'invalid_credentials');
    assert.equal(error.message, 'Invalid login credentials');
    const unknown = await anonClient(cb).auth.signInWithPassword({ email: email('nobody'), password: PASSWORD });
    assert.equal(unknown.error.code, 'invalid_credentials');
  });

  test('getUser and updateUser (metadata, password, email)', async () => {
    const { client, user } = await signedIn();
    const got = await client.auth.getUser();
    assert.equal(got.error, null);
    assert.equal(got.data.user.id, user.id);

    const meta = await client.auth.updateUser({ data: { theme: 'dark' } });
    assert.equal(meta.error, null);
    assert.equal(meta.data.user.user_metadata.theme, 'dark');

    const pw = await client.auth.updateUser({ password: 'a-brand-new-password' });
    assert.equal(pw.error, null);
    const same = await client.auth.updateUser({ password: 'a-brand-new-password' });
    assert.equal(same.error.code, 'same_password');
    const relog = await anonClient(cb).auth.signInWithPassword({ email: user.email, password: 'a-brand-new-password' });
    assert.equal(relog.error, null);

    const newEmail = email('moved');
    const moved = await client.auth.updateUser({ email: newEmail });
    assert.equal(moved.error, null);
    assert.equal(moved.data.user.email, newEmail, 'autoconfirm on: the change applies at once');
  });

  test('refreshSession rotates the refresh token and keeps the session', async () => {
    const { client, session } = await signedIn();
    const { data, error } = await client.auth.refreshSession();
    assert.equal(error, null);
    assert.notEqual(data.session.refresh_token, session.refresh_token);
    assert.equal(decodeJwt(data.session.access_token).payload.session_id, decodeJwt(session.access_token).payload.session_id);
    const user = await client.auth.getUser();
    assert.equal(user.error, null);
  });

  test('concurrent refreshes of one token all get the same child', async () => {
    const { session } = await signedIn();
    const results = await Promise.all(
      Array.from({ length: 6 }, () => anonClient(cb).auth.refreshSession({ refresh_token: session.refresh_token })),
    );
    const children = new Set(
      results.map((r) => {
        assert.equal(r.error, null);
        return r.data.session.refresh_token;
      }),
    );
    assert.equal(children.size, 1);
  });

  test('signOut: local ends this session, others the rest, global all', async () => {
    const address = email('scopes');
    await serviceClient(cb).auth.admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
    const devices = [];
    for (let i = 0; i < 4; i++) {
      const client = anonClient(cb);
      const { data } = await client.auth.signInWithPassword({ email: address, password: PASSWORD });
      devices.push({ client, session: data.session });
    }
    const alive = async ({ session }) => !(await anonClient(cb).auth.getUser(session.access_token)).error;

    assert.equal((await devices[0].client.auth.signOut({ scope: 'local' })).error, null);
    assert.equal(await alive(devices[0]), false);
    assert.equal(await alive(devices[1]), true);
    assert.equal((await devices[0].client.auth.getSession()).data.session, null);

    assert.equal((await devices[1].client.auth.signOut({ scope: 'others' })).error, null);
    assert.equal(await alive(devices[1]), true);
    assert.equal(await alive(devices[2]), false);
    assert.equal(await alive(devices[3]), false);
    const stale = await anonClient(cb).auth.refreshSession({ refresh_token: devices[2].session.refresh_token });
    assert.equal(stale.error.code, 'refresh_token_not_found');

    assert.equal((await devices[1].client.auth.signOut()).error, null);
    assert.equal(await alive(devices[1]), false);
    const gone = await anonClient(cb).auth.getUser(devices[1].session.access_token);
    assert.equal(gone.error.name, 'AuthSessionMissingError');
  });

  test('signInAnonymously gives an is_anonymous session', async () => {
    const supabase = anonClient(cb);
    const { data, error } = await supabase.auth.signInAnonymously({ options: { data: { guest: true } } });
    assert.equal(error, null);
    assert.equal(data.user.is_anonymous, true);
    assert.equal(data.user.email, '');
    assert.deepEqual(data.user.identities, []);
    const { payload } = decodeJwt(data.session.access_token);
    assert.equal(payload.is_anonymous, true);
    assert.equal(payload.role, 'authenticated');
    assert.equal(payload.amr[0].method, 'anonymous');
    const me = await supabase.auth.getUser();
    assert.equal(me.data.user.is_anonymous, true);
    // Adding an email (autoconfirm on) makes the guest a permanent user.
    const address = email('upgraded');
    const upgraded = await supabase.auth.updateUser({ email: address, password: PASSWORD });
    assert.equal(upgraded.error, null);
    assert.equal(upgraded.data.user.is_anonymous, false);
    assert.equal(upgraded.data.user.identities[0].provider, 'email');
    const relog = await anonClient(cb).auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(relog.error, null);
    assert.equal(relog.data.user.id, data.user.id);
  });

  test('onAuthStateChange sees the sequence hosted Supabase produces', async () => {
    const address = email('events');
    await serviceClient(cb).auth.admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
    const supabase = anonClient(cb);
    const events = [];
    const { data: sub } = supabase.auth.onAuthStateChange((event, session) => events.push([event, !!session]));
    await supabase.auth.signInWithPassword({ email: address, password: PASSWORD });
    await supabase.auth.refreshSession();
    await supabase.auth.updateUser({ data: { step: 1 } });
    await supabase.auth.signOut();
    await sleep(50);
    sub.subscription.unsubscribe();
    assert.deepEqual(events, [
      ['INITIAL_SESSION', false],
      ['SIGNED_IN', true],
      ['TOKEN_REFRESHED', true],
      ['USER_UPDATED', true],
      ['SIGNED_OUT', false],
    ]);
  });

  test('settings, health and a JWKS with the generated ES256 key only', async () => {
    const headers = { apikey: cb.anonKey };
    const settings = await (await fetch(`${cb.url}/auth/v1/settings`, { headers })).json();
    assert.equal(settings.mailer_autoconfirm, true);
    assert.equal(settings.external.email, true);
    assert.equal(settings.external.anonymous_users, true);
    const health = await (await fetch(`${cb.url}/auth/v1/health`, { headers })).json();
    assert.equal(health.name, 'GoTrue');
    const jwks = await fetch(`${cb.url}/auth/v1/.well-known/jwks.json`);
    assert.equal(jwks.status, 200);
    // ES256 by default (issue 12): one public P-256 key, never a private half or an HMAC key.
    const { keys } = await jwks.json();
    assert.equal(keys.length, 1);
    assert.equal(keys[0].kty, 'EC');
    assert.equal(keys[0].alg, 'ES256');
    assert.equal(keys[0].d, undefined);
  });
});

describe('refresh-token reuse', () => {
  test('a rotated token presented after the interval revokes the whole session', async () => {
    const { session, user } = await signedIn(strict, 'reuse');
    const t0 = session.refresh_token;
    const first = await anonClient(strict).auth.refreshSession({ refresh_token: t0 });
    const t1 = first.data.session.refresh_token;
    const second = await anonClient(strict).auth.refreshSession({ refresh_token: t1 });
    const t2 = second.data.session.refresh_token;
    await sleep(1500);
    const reused = await anonClient(strict).auth.refreshSession({ refresh_token: t0 });
    assert.equal(reused.error.status, 400);
    assert.equal(reused.error.code, 'refresh_token_already_used');
    const live = await pgQuery(
      strict.dbUrl,
      'select count(*)::int as n from auth.refresh_tokens where user_id = $1 and not revoked',
      [user.id],
    );
    assert.equal(live[0].n, 0);
    const legit = await anonClient(strict).auth.refreshSession({ refresh_token: t2 });
    assert.equal(legit.error.code, 'refresh_token_already_used');
  });
});

describe('admin API', () => {
  test('create, get, update, list with pagination, factors, sign out and delete', async () => {
    const admin = serviceClient(cb).auth.admin;
    const created = [];
    for (let i = 0; i < 3; i++) {
      const { data, error } = await admin.createUser({
        email: email('admin'),
        password: PASSWORD,
        email_confirm: true,
        user_metadata: { i },
        app_metadata: { plan: 'pro' },
      });
      assert.equal(error, null);
      assert.equal(data.user.app_metadata.plan, 'pro');
      assert.equal(data.user.app_metadata.provider, 'email');
      created.push(data.user);
    }
    const got = await admin.getUserById(created[0].id);
    assert.equal(got.data.user.email, created[0].email);

    const updated = await admin.updateUserById(created[0].id, { user_metadata: { nick: 'zero' }, ban_duration: '1h' });
    assert.equal(updated.error, null);
    assert.equal(updated.data.user.user_metadata.nick, 'zero');
    assert.equal(updated.data.user.user_metadata.i, 0);
    assert.ok(updated.data.user.banned_until);
    const banned = await anonClient(cb).auth.signInWithPassword({ email: created[0].email, password: PASSWORD });
    assert.equal(banned.error.code, 'user_banned');
    await admin.updateUserById(created[0].id, { ban_duration: 'none' });

    const page1 = await admin.listUsers({ page: 1, perPage: 2 });
    assert.equal(page1.error, null);
    assert.equal(page1.data.users.length, 2);
    assert.ok(page1.data.total >= 3);
    assert.equal(page1.data.nextPage, 2);
    assert.ok(page1.data.lastPage >= 2);
    assert.equal(page1.data.aud, 'authenticated');

    const factors = await admin.mfa.listFactors({ userId: created[1].id });
    assert.deepEqual(factors.data.factors, []);

    const client = anonClient(cb);
    const { data: s } = await client.auth.signInWithPassword({ email: created[1].email, password: PASSWORD });
    const out = await admin.signOut(s.session.access_token, 'global');
    assert.equal(out.error, null);
    assert.ok((await anonClient(cb).auth.getUser(s.session.access_token)).error);

    const deleted = await admin.deleteUser(created[2].id);
    assert.equal(deleted.error, null);
    const missing = await admin.getUserById(created[2].id);
    assert.equal(missing.error.status, 404);
    assert.equal(missing.error.code, 'user_not_found');
    const soft = await admin.deleteUser(created[1].id, true);
    assert.equal(soft.error, null);
    const softRow = await pgQuery(cb.dbUrl, 'select deleted_at from auth.users where id = $1', [created[1].id]);
    assert.ok(softRow[0].deleted_at);
  });

  test('the admin API refuses a user token with not_admin', async () => {
    const { session } = await signedIn();
    const asUser = createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${session.access_token}` } } });
    const { error } = await asUser.auth.admin.listUsers();
    assert.equal(error.status, 403);
    assert.equal(error.code, 'not_admin');
  });

  test('generateLink returns a link that signs the user in', async () => {
    const { email: address } = await signedIn();
    const { data, error } = await serviceClient(cb).auth.admin.generateLink({ type: 'magiclink', email: address });
    assert.equal(error, null);
    assert.equal(data.user.email, address);
    assert.equal(data.properties.verification_type, 'magiclink');
    assert.match(data.properties.email_otp, /^\d{6}$/);
    assert.ok(data.properties.hashed_token);
    const location = await follow(data.properties.action_link);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(location.origin, SITE);
    assert.ok(fragment.get('access_token'));
    assert.equal(fragment.get('type'), 'magiclink');

    const recovery = await serviceClient(cb).auth.admin.generateLink({ type: 'recovery', email: address });
    const verified = await anonClient(cb).auth.verifyOtp({ email: address, token: recovery.data.properties.email_otp, type: 'recovery' });
    assert.equal(verified.error, null);
    assert.ok(verified.data.session);
  });

  test('generateLink email_change_current and email_change_new: both tokens are needed', async () => {
    const { client, email: address, user } = await signedIn(cb, 'linkchange');
    const target = email('linkchange-new');
    const admin = serviceClient(cb).auth.admin;
    const current = await admin.generateLink({ type: 'email_change_current', email: address, newEmail: target });
    assert.equal(current.error, null);
    assert.equal(current.data.properties.verification_type, 'email_change_current');
    assert.equal(current.data.user.new_email, target);
    const next = await admin.generateLink({ type: 'email_change_new', email: address, newEmail: target });
    assert.equal(next.error, null);
    assert.equal(next.data.properties.verification_type, 'email_change_new');
    const rows = await pgQuery(
      cb.dbUrl,
      'select email_change_token_current as c, email_change_token_new as n from auth.users where id = $1',
      [user.id],
    );
    assert.equal(rows[0].c, current.data.properties.hashed_token);
    assert.equal(rows[0].n, next.data.properties.hashed_token);
    assert.equal(current.data.properties.hashed_token, createHash('sha256').update(`${address}${current.data.properties.email_otp}`).digest('hex'));
    assert.equal(next.data.properties.hashed_token, createHash('sha256').update(`${target}${next.data.properties.email_otp}`).digest('hex'));

    // The raw answer to the first of two confirmations: {msg, code}.
    const res = await fetch(`${cb.url}/auth/v1/verify`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'email_change', email: address, token: current.data.properties.email_otp }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(Object.keys(body).sort(), ['code', 'msg']);
    assert.equal(body.code, 200);
    assert.equal((await client.auth.getUser()).data.user.email, address);
    const location = await follow(next.data.properties.action_link);
    assert.ok(new URLSearchParams(location.hash.slice(1)).get('access_token'));
    assert.equal((await client.auth.getUser()).data.user.email, target);
  });

  test('inviteUserByEmail mails an invite whose link signs the new user in', async () => {
    const address = email('invited');
    const since = sink.messages.length;
    const { data, error } = await serviceClient(cb).auth.admin.inviteUserByEmail(address, { data: { team: 'a' } });
    assert.equal(error, null);
    assert.equal(data.user.email, address);
    assert.ok(data.user.invited_at);
    const mail = await sink.next(address, since);
    assert.match(mail.subject, /invited/i);
    const location = await follow(mail.link);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(fragment.get('type'), 'invite');
    const supabase = anonClient(cb);
    const { data: set, error: setError } = await supabase.auth.setSession({
      access_token: fragment.get('access_token'),
      refresh_token: fragment.get('refresh_token'),
    });
    assert.equal(setError, null);
    assert.equal(set.user.email, address);
    assert.ok(set.user.email_confirmed_at);
  });
});

describe('email flows', () => {
  test('resetPasswordForEmail, then verifyOtp with the mailed code, then a new password', async () => {
    const { email: address } = await signedIn();
    const since = sink.messages.length;
    const supabase = anonClient(cb);
    const { error } = await supabase.auth.resetPasswordForEmail(address, { redirectTo: `${SITE}/reset` });
    assert.equal(error, null);
    const mail = await sink.next(address, since);
    assert.match(mail.subject, /reset/i);
    assert.match(mail.code, /^\d{6}$/);
    const { data, error: verifyError } = await supabase.auth.verifyOtp({ email: address, token: mail.code, type: 'recovery' });
    assert.equal(verifyError, null);
    assert.equal(data.user.email, address);
    assert.equal((await supabase.auth.updateUser({ password: 'recovered-password' })).error, null);
    const relog = await anonClient(cb).auth.signInWithPassword({ email: address, password: 'recovered-password' });
    assert.equal(relog.error, null);
    // The code is single-use.
    const again = await anonClient(cb).auth.verifyOtp({ email: address, token: mail.code, type: 'recovery' });
    assert.equal(again.error.code, 'otp_expired');
    // Recovery for an unknown address looks the same and sends nothing.
    const before = sink.messages.length;
    assert.equal((await supabase.auth.resetPasswordForEmail(email('ghost'))).error, null);
    await sleep(200);
    assert.equal(sink.messages.length, before);
  });

  test('signInWithOtp mails a magic link that signs a new user in', async () => {
    const address = email('magic');
    const since = sink.messages.length;
    const supabase = anonClient(cb);
    const { error } = await supabase.auth.signInWithOtp({ email: address, options: { emailRedirectTo: `${SITE}/welcome` } });
    assert.equal(error, null);
    const mail = await sink.next(address, since);
    assert.ok(mail.link, mail.text);
    const location = await follow(mail.link);
    assert.equal(`${location.origin}${location.pathname}`, `${SITE}/welcome`);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(fragment.get('token_type'), 'bearer');
    const { data, error: setError } = await supabase.auth.setSession({
      access_token: fragment.get('access_token'),
      refresh_token: fragment.get('refresh_token'),
    });
    assert.equal(setError, null);
    assert.equal(data.user.email, address);
    // A used link sends the browser back with the error in the fragment.
    const reused = await follow(mail.link);
    const err = new URLSearchParams(reused.hash.slice(1));
    assert.equal(err.get('error_code'), 'otp_expired');
    // With shouldCreateUser false an unknown address is refused.
    const refused = await anonClient(cb).auth.signInWithOtp({ email: email('nouser'), options: { shouldCreateUser: false } });
    assert.equal(refused.error.code, 'otp_disabled');
  });

  test('signInWithOtp with a mailed code (verifyOtp type email)', async () => {
    const { email: address } = await signedIn();
    const since = sink.messages.length;
    const supabase = anonClient(cb);
    assert.equal((await supabase.auth.signInWithOtp({ email: address })).error, null);
    const mail = await sink.next(address, since);
    const { data, error } = await supabase.auth.verifyOtp({ email: address, token: mail.code, type: 'email' });
    assert.equal(error, null);
    assert.equal(data.session.user.email, address);
    assert.equal(decodeJwt(data.session.access_token).payload.amr[0].method, 'magiclink');
  });

  test('exchangeCodeForSession: the PKCE flow from a magic link', async () => {
    const { email: address } = await signedIn();
    const supabase = anonClient(cb, { auth: { flowType: 'pkce' } });
    const since = sink.messages.length;
    assert.equal((await supabase.auth.signInWithOtp({ email: address, options: { emailRedirectTo: `${SITE}/cb` } })).error, null);
    const mail = await sink.next(address, since);
    const location = await follow(mail.link);
    const code = location.searchParams.get('code');
    assert.ok(code, `no code in ${location}`);
    assert.equal(location.hash, '');
    const { data, error } = await supabase.auth.exchangeCodeForSession(code);
    assert.equal(error, null);
    assert.equal(data.user.email, address);
    const replay = await supabase.auth.exchangeCodeForSession(code);
    assert.ok(replay.error);
  });

  test('PKCE with a wrong verifier is bad_code_verifier', async () => {
    const { email: address, user } = await signedIn();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const since = sink.messages.length;
    const res = await fetch(`${cb.url}/auth/v1/otp`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json', 'x-supabase-api-version': '2024-01-01' },
      body: JSON.stringify({ email: address, code_challenge: challenge, code_challenge_method: 's256' }),
    });
    assert.equal(res.status, 200);
    const mail = await sink.next(address, since);
    const code = (await follow(mail.link)).searchParams.get('code');
    const token = (body) =>
      fetch(`${cb.url}/auth/v1/token?grant_type=pkce`, {
        method: 'POST',
        headers: { apikey: cb.anonKey, 'content-type': 'application/json', 'x-supabase-api-version': '2024-01-01' },
        body: JSON.stringify(body),
      });
    const bad = await token({ auth_code: code, code_verifier: randomBytes(32).toString('base64url') });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).code, 'bad_code_verifier');
    const good = await token({ auth_code: code, code_verifier: verifier });
    assert.equal(good.status, 200);
    assert.equal((await good.json()).user.id, user.id);
  });

  test('with autoconfirm off, signUp mails a confirmation whose link and code both work', async () => {
    const supabase = anonClient(strict);
    const address = email('confirm');
    const since = sink.messages.length;
    const { data, error } = await supabase.auth.signUp({ email: address, password: PASSWORD });
    assert.equal(error, null);
    assert.equal(data.session, null);
    assert.equal(data.user.email, address);
    assert.ok(data.user.confirmation_sent_at);
    assert.equal(data.user.email_confirmed_at, undefined);
    const early = await anonClient(strict).auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(early.error.code, 'email_not_confirmed');
    const mail = await sink.next(address, since);
    assert.match(mail.subject, /confirm/i);
    const location = await follow(mail.link);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(fragment.get('type'), 'signup');
    assert.ok(fragment.get('access_token'));
    const relog = await anonClient(strict).auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(relog.error, null);

    // The code path, on another account, after a resend.
    const other = email('confirm-code');
    await anonClient(strict).auth.signUp({ email: other, password: PASSWORD });
    const first = await sink.next(other, since);
    const sinceResend = sink.messages.length;
    assert.equal((await anonClient(strict).auth.resend({ type: 'signup', email: other })).error, null);
    const resent = await sink.next(other, sinceResend);
    assert.notEqual(resent.code, first.code);
    const stale = await anonClient(strict).auth.verifyOtp({ email: other, token: first.code, type: 'signup' });
    assert.equal(stale.error.code, 'otp_expired');
    const ok = await anonClient(strict).auth.verifyOtp({ email: other, token: resent.code, type: 'signup' });
    assert.equal(ok.error, null);
    assert.ok(ok.data.session);

    // Signing up a confirmed address again reveals nothing: the answer of a new sign-up, with
    // its one identity (stricter than GoTrue, whose empty identities tell the address is taken).
    const again = await anonClient(strict).auth.signUp({ email: address, password: PASSWORD });
    assert.equal(again.error, null);
    assert.equal(again.data.session, null);
    assert.equal(again.data.user.email, address);
    assert.equal(again.data.user.identities.length, 1);
    assert.equal(again.data.user.identities[0].identity_data.email_verified, false);
  });

  test('reauthenticate mails a nonce that a password change of an old session needs', async () => {
    const { client, session, email: address } = await signedIn(strict, 'reauth');
    // A session last refreshed over a day ago must prove it is the user.
    await pgQuery(strict.dbUrl, "update auth.sessions set created_at = now() - interval '2 days' where id = $1", [
      decodeJwt(session.access_token).payload.session_id,
    ]);
    const needed = await client.auth.updateUser({ password: 'password-after-reauth' });
    assert.equal(needed.error.code, 'reauthentication_needed');
    const since = sink.messages.length;
    assert.equal((await client.auth.reauthenticate()).error, null);
    const mail = await sink.next(address, since);
    assert.match(mail.text, /code/);
    const nonce = mail.text.match(/(\d{6})/)[1];
    const wrong = await client.auth.updateUser({ password: 'password-after-reauth', nonce: '000000' === nonce ? '111111' : '000000' });
    assert.equal(wrong.error.code, 'reauthentication_not_valid');
    const ok = await client.auth.updateUser({ password: 'password-after-reauth', nonce });
    assert.equal(ok.error, null);
    const again = await client.auth.updateUser({ password: 'password-after-reauth-2', nonce });
    assert.equal(again.error.code, 'reauthentication_not_valid', 'a nonce works once');
    const relog = await anonClient(strict).auth.signInWithPassword({ email: address, password: 'password-after-reauth' });
    assert.equal(relog.error, null);
  });

  test('with autoconfirm off, an email change needs both addresses to confirm (secure email change)', async () => {
    const { client, email: address } = await signedIn(strict, 'changer');
    const target = email('changed');
    const since = sink.messages.length;
    const { data, error } = await client.auth.updateUser({ email: target });
    assert.equal(error, null);
    assert.equal(data.user.email, address);
    assert.equal(data.user.new_email, target);
    const toNew = await sink.next(target, since);
    const toCurrent = await sink.next(address, since);
    assert.match(toNew.subject, /email change/i);
    assert.match(toCurrent.subject, /email change/i);
    assert.notEqual(toNew.code, toCurrent.code);
    const statusOf = async () =>
      (await pgQuery(strict.dbUrl, 'select email, email_change_confirm_status as s from auth.users where id = $1', [data.user.id]))[0];
    assert.deepEqual(await statusOf(), { email: address, s: 0 });

    // The new address confirms with its code: only the first of two steps.
    const first = await client.auth.verifyOtp({ email: target, token: toNew.code, type: 'email_change' });
    assert.equal(first.error, null);
    assert.equal(first.data.session, null, 'the first of two confirmations gives no session');
    assert.equal(first.data.user, null);
    assert.deepEqual(await statusOf(), { email: address, s: 1 });
    assert.equal((await client.auth.getUser()).data.user.email, address, 'one confirmation changes nothing');
    const early = await anonClient(strict).auth.signInWithPassword({ email: target, password: PASSWORD });
    assert.equal(early.error.code, 'invalid_credentials');
    const again = await client.auth.verifyOtp({ email: target, token: toNew.code, type: 'email_change' });
    assert.equal(again.error.code, 'otp_expired', 'a code works once');

    // The current address confirms with the mailed link: the change applies.
    const location = await follow(toCurrent.link);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.ok(fragment.get('access_token'));
    assert.equal(fragment.get('type'), 'email_change');
    const me = await client.auth.getUser();
    assert.equal(me.data.user.email, target);
    assert.equal(me.data.user.new_email, undefined);
    assert.equal((await statusOf()).s, 0);
    const relog = await anonClient(strict).auth.signInWithPassword({ email: target, password: PASSWORD });
    assert.equal(relog.error, null);
    assert.equal(relog.data.user.email, target);
    const old = await anonClient(strict).auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(old.error.code, 'invalid_credentials');
  });

  test('resend type email_change mails both addresses again; the old codes no longer work', async () => {
    const { client, email: address } = await signedIn(strict, 'changer-resend');
    const target = email('changed-resend');
    const since = sink.messages.length;
    assert.equal((await client.auth.updateUser({ email: target })).error, null);
    const oldNew = await sink.next(target, since);
    const oldCurrent = await sink.next(address, since);
    const sinceResend = sink.messages.length;
    assert.equal((await anonClient(strict).auth.resend({ type: 'email_change', email: target })).error, null);
    const toNew = await sink.next(target, sinceResend);
    const toCurrent = await sink.next(address, sinceResend);
    const stale = await client.auth.verifyOtp({ email: target, token: oldNew.code, type: 'email_change' });
    assert.equal(stale.error.code, 'otp_expired');
    const staleCurrent = await client.auth.verifyOtp({ email: address, token: oldCurrent.code, type: 'email_change' });
    assert.equal(staleCurrent.error.code, 'otp_expired');
    assert.equal((await client.auth.verifyOtp({ email: address, token: toCurrent.code, type: 'email_change' })).error, null);
    const done = await client.auth.verifyOtp({ email: target, token: toNew.code, type: 'email_change' });
    assert.equal(done.error, null);
    assert.equal(done.data.user.email, target);
  });

  test('the first confirmation by link lands on the site with a message, not a session', async () => {
    const { client, email: address } = await signedIn(strict, 'changer-link');
    const target = email('changed-link');
    const since = sink.messages.length;
    assert.equal((await client.auth.updateUser({ email: target })).error, null);
    const toCurrent = await sink.next(address, since);
    const toNew = await sink.next(target, since);
    const location = await follow(toCurrent.link);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(location.origin, SITE);
    assert.equal(fragment.get('access_token'), null);
    assert.ok(fragment.get('message'));
    assert.equal((await client.auth.getUser()).data.user.email, address);
    const second = await client.auth.verifyOtp({ email: target, token: toNew.code, type: 'email_change' });
    assert.equal(second.error, null);
    assert.ok(second.data.session);
    assert.equal(second.data.user.email, target);
  });

  test('with secure email change off, the new address alone confirms', async () => {
    const { client, email: address } = await signedIn(templated, 'single');
    const target = email('single-new');
    const since = sink.messages.length;
    const { data, error } = await client.auth.updateUser({ email: target });
    assert.equal(error, null);
    assert.equal(data.user.new_email, target);
    const mail = await sink.next(target, since);
    // The email-change template (a file:// URL) names both addresses.
    assert.match(mail.text, new RegExp(`Moving from ${address} to ${target}`));
    const { data: verified, error: verifyError } = await client.auth.verifyOtp({ email: target, token: mail.code, type: 'email_change' });
    assert.equal(verifyError, null);
    assert.ok(verified.session);
    assert.equal((await client.auth.getUser()).data.user.email, target);
    assert.equal(
      sink.messages.slice(since).filter((m) => m.to.includes(address)).length,
      0,
      'nothing mailed to the current address',
    );
    const relog = await anonClient(templated).auth.signInWithPassword({ email: target, password: PASSWORD });
    assert.equal(relog.error, null);
  });

  test('a confirmation template from a file is used for the sign-up mail, and its link works', async () => {
    const supabase = anonClient(templated);
    const address = email('templated');
    const since = sink.messages.length;
    const { data, error } = await supabase.auth.signUp({
      email: address,
      password: PASSWORD,
      options: { data: { name: 'Ada <3' }, emailRedirectTo: 'http://localhost:3000/welcome' },
    });
    assert.equal(error, null);
    assert.equal(data.session, null);
    const mail = await sink.next(address, since);
    assert.match(mail.text, new RegExp(`Welcome aboard Tool Connect Craft, ${address}!`));
    assert.match(mail.text, /\(http:\/\/localhost:3000, http:\/\/localhost:3000\/welcome\)/);
    assert.match(mail.text, /name Ada &lt;3\./);
    const token = mail.text.match(/or type (\d{6})/)[1];
    assert.equal(token, mail.code);
    const hash = mail.text.match(/Hash ([0-9a-f]{64})/)[1];
    assert.equal(hash, createHash('sha256').update(`${address}${token}`).digest('hex'));
    assert.doesNotMatch(mail.text, /\{\{/);
    const href = mail.text.match(/<a href="([^"]+)">Confirm my account<\/a>/)[1].replace(/&amp;/g, '&');
    const link = new URL(href);
    assert.equal(link.searchParams.get('token'), hash);
    assert.equal(link.searchParams.get('type'), 'signup');
    const location = await follow(href);
    const fragment = new URLSearchParams(location.hash.slice(1));
    assert.equal(`${location.origin}${location.pathname}`, 'http://localhost:3000/welcome');
    assert.equal(fragment.get('type'), 'signup');
    assert.ok(fragment.get('access_token'));
    const relog = await anonClient(templated).auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(relog.error, null);

    // An unreachable template URL falls back to the built-in text.
    const sinceRecover = sink.messages.length;
    assert.equal((await anonClient(templated).auth.resetPasswordForEmail(address)).error, null);
    const recovery = await sink.next(address, sinceRecover);
    assert.match(recovery.text, /reset your password/);
    assert.ok(recovery.link);
  });

  test('the reauthentication mail uses its template and subject, and its code changes the password', async () => {
    const { client, email: address } = await signedIn(templated, 'reauth-template');
    const since = sink.messages.length;
    assert.equal((await client.auth.reauthenticate()).error, null);
    const mail = await sink.next(address, since);
    assert.equal(mail.subject, 'Is it really you?');
    const nonce = mail.text.match(new RegExp(`${address}, your code for http://localhost:3000 is (\\d{6})\\.`))[1];
    assert.doesNotMatch(mail.text, /\{\{/);
    const { error } = await client.auth.updateUser({ password: 'password-after-template', nonce });
    assert.equal(error, null);
  });
});

describe('rate limits', () => {
  test('wrong passwords past the limit get 429 over_request_rate_limit, per client address', async () => {
    const admin = serviceClient(limited).auth.admin;
    const address = email('limited');
    await admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
    const from = (ip) => createClient(limited.url, limited.anonKey, { global: { headers: { 'X-Forwarded-For': ip } } });
    const attacker = from('203.0.113.7');
    const codes = [];
    for (let i = 0; i < 62; i++) {
      const { error } = await attacker.auth.signInWithPassword({ email: address, password: 'guess' + i });
      codes.push(`${error.status} ${error.code}`);
    }
    assert.deepEqual(codes, [
      ...Array(60).fill('400 invalid_credentials'),
      '429 over_request_rate_limit',
      '429 over_request_rate_limit',
    ]);
    const other = await from('198.51.100.2').auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(other.error, null);
  });

  test('emails past the limit get 429 over_email_send_rate_limit', async () => {
    const client = createClient(limited.url, limited.anonKey, { global: { headers: { 'X-Forwarded-For': '192.0.2.9' } } });
    const results = [];
    // With autoconfirm (as GoTrue) the project-wide count is off; one recipient's count is not.
    const target = email('flood');
    for (let i = 0; i < 3; i++) {
      const { error } = await client.auth.resetPasswordForEmail(target);
      results.push(error ? `${error.status} ${error.code}` : 'ok');
    }
    assert.deepEqual(results, ['ok', 'ok', '429 over_email_send_rate_limit']);
  });
});

describe('OAuth sign-in', () => {
  test('signInWithOAuth through the local provider links to the account with that email', async () => {
    const admin = serviceClient(cb).auth.admin;
    const { data: existing } = await admin.createUser({ email: GITHUB_EMAIL, password: PASSWORD, email_confirm: true });
    const supabase = anonClient(cb);
    const { data, error } = await supabase.auth.signInWithOAuth({
      provider: 'github',
      options: { redirectTo: `${SITE}/oauth`, skipBrowserRedirect: true },
    });
    assert.equal(error, null);
    assert.ok(data.url.startsWith(`${cb.url}/auth/v1/authorize?provider=github`), data.url);
    const landed = await browse(data.url, SITE);
    assert.equal(landed.pathname, '/oauth');
    const fragment = new URLSearchParams(landed.hash.slice(1));
    assert.match(fragment.get('provider_token'), /^gho_/);
    assert.match(fragment.get('provider_refresh_token'), /^ghr_/);
    const { data: set, error: setError } = await supabase.auth.setSession({
      access_token: fragment.get('access_token'),
      refresh_token: fragment.get('refresh_token'),
    });
    assert.equal(setError, null);
    assert.equal(set.user.id, existing.user.id, 'the verified email links the GitHub identity to the account');
    assert.equal(set.user.email, GITHUB_EMAIL);
    assert.deepEqual(set.user.app_metadata.providers.sort(), ['email', 'github']);
    const identity = set.user.identities.find((i) => i.provider === 'github');
    assert.equal(identity.id, '4242');
    assert.equal(identity.identity_data.user_name, 'octo');
    assert.equal(decodeJwt(fragment.get('access_token')).payload.amr[0].method, 'oauth');
    assert.ok(github.requests.includes('POST /login/oauth/access_token'));
  });

  test('exchangeCodeForSession after an OAuth redirect (PKCE) hands back the provider token', async () => {
    const supabase = anonClient(cb, { auth: { flowType: 'pkce' } });
    const { data } = await supabase.auth.signInWithOAuth({
      provider: 'github',
      options: { redirectTo: `${SITE}/pkce`, skipBrowserRedirect: true },
    });
    assert.match(data.url, /code_challenge=/);
    const landed = await browse(data.url, SITE);
    const code = landed.searchParams.get('code');
    assert.ok(code, landed.toString());
    const { data: exchanged, error } = await supabase.auth.exchangeCodeForSession(code);
    assert.equal(error, null);
    assert.equal(exchanged.user.email, GITHUB_EMAIL);
    assert.match(exchanged.session.provider_token, /^gho_/);
    const me = await supabase.auth.getUser();
    assert.equal(me.data.user.identities.filter((i) => i.provider === 'github').length, 1);
  });

  test('linkIdentity attaches a GitHub account to the signed-in user; unlinkIdentity removes it', async () => {
    const { client, user } = await signedIn();
    const second = { id: 777, login: 'linker', name: 'Link Er', email: null, avatar_url: null };
    github.setAccount({ user: second, emails: [{ email: 'linker@example.com', primary: true, verified: true }] });
    try {
      const { data, error } = await client.auth.linkIdentity({
        provider: 'github',
        options: { redirectTo: `${SITE}/linked`, skipBrowserRedirect: true },
      });
      assert.equal(error, null);
      const landed = await browse(data.url, SITE);
      assert.equal(landed.pathname, '/linked');
      assert.ok(new URLSearchParams(landed.hash.slice(1)).get('access_token'), landed.toString());
      const { data: ids } = await client.auth.getUserIdentities();
      assert.deepEqual(ids.identities.map((i) => i.provider).sort(), ['email', 'github']);
      const me = await client.auth.getUser();
      assert.equal(me.data.user.id, user.id);
      assert.deepEqual(me.data.user.app_metadata.providers.sort(), ['email', 'github']);

      // The same GitHub account cannot be linked to a second user.
      const { client: other } = await signedIn();
      const { data: again } = await other.auth.linkIdentity({
        provider: 'github',
        options: { redirectTo: `${SITE}/linked`, skipBrowserRedirect: true },
      });
      const refused = await browse(again.url, SITE);
      assert.equal(new URLSearchParams(refused.hash.slice(1)).get('error_code'), 'identity_already_exists');

      const gh = ids.identities.find((i) => i.provider === 'github');
      assert.equal((await client.auth.unlinkIdentity(gh)).error, null);
      const after = await client.auth.getUserIdentities();
      assert.deepEqual(after.data.identities.map((i) => i.provider), ['email']);
      const last = await client.auth.unlinkIdentity(after.data.identities[0]);
      assert.equal(last.error.code, 'single_identity_not_deletable');
    } finally {
      github.setAccount({
        user: { id: 4242, login: 'octo', name: 'Octo Cat', email: null, avatar_url: 'https://example.com/octo.png' },
        emails: [
          { email: 'old@example.com', primary: false, verified: true },
          { email: GITHUB_EMAIL, primary: true, verified: true },
        ],
      });
    }
  });

  test('signInWithIdToken with an OpenID Connect ID token (nonce, audience, signature checked)', async () => {
    const address = email('idtoken');
    const rawNonce = randomBytes(16).toString('hex');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: github.url,
      aud: 'acme-client',
      sub: `acme-${now}`,
      email: address,
      email_verified: true,
      name: 'Id Token',
      iat: now,
      exp: now + 300,
      nonce: createHash('sha256').update(rawNonce).digest('hex'),
    };
    const supabase = anonClient(cb);
    const { data, error } = await supabase.auth.signInWithIdToken({ provider: 'acme', token: github.signIdToken(claims), nonce: rawNonce });
    assert.equal(error, null);
    assert.equal(data.user.email, address);
    assert.equal(data.user.app_metadata.provider, 'acme');
    assert.equal(data.user.identities[0].provider, 'acme');
    assert.equal(data.user.identities[0].id, claims.sub);
    assert.ok(data.user.email_confirmed_at);
    // The same account signs in to the same user.
    const again = await anonClient(cb).auth.signInWithIdToken({ provider: 'acme', token: github.signIdToken(claims), nonce: rawNonce });
    assert.equal(again.data.user.id, data.user.id);

    const refusals = {
      'wrong nonce': { token: github.signIdToken(claims), nonce: 'other' },
      'wrong audience': { token: github.signIdToken({ ...claims, aud: 'someone-else' }), nonce: rawNonce },
      'wrong issuer': { token: github.signIdToken({ ...claims, iss: 'https://evil.example' }), nonce: rawNonce },
      expired: { token: github.signIdToken({ ...claims, exp: now - 600 }), nonce: rawNonce },
      'other key': {
        token: github.signIdToken(claims, { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
        nonce: rawNonce,
      },
    };
    for (const [why, { token, nonce }] of Object.entries(refusals)) {
      const { error: refused } = await anonClient(cb).auth.signInWithIdToken({ provider: 'acme', token, nonce });
      assert.equal(refused?.status, 400, why);
    }
    const unknown = await anonClient(cb).auth.signInWithIdToken({ provider: 'nope', token: github.signIdToken(claims) });
    assert.equal(unknown.error.status, 400);
  });

  test('an unknown provider is refused and a forged state goes back to the site with an error', async () => {
    const res = await fetch(`${cb.url}/auth/v1/authorize?provider=gitlab`, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error_code, 'validation_failed');
    const forged = await fetch(`${cb.url}/auth/v1/callback?code=x&state=not-a-jwt`, { redirect: 'manual' });
    assert.equal(forged.status, 302);
    const location = new URL(forged.headers.get('location'));
    assert.equal(location.origin, SITE);
    assert.equal(new URLSearchParams(location.hash.slice(1)).get('error_code'), 'bad_oauth_state');
  });
});

describe('sessions against /rest/v1', () => {
  test('Tool Connect Craft: sign up, connect, run a job, read own jobs; another user sees none', async () => {
    const alice = anonClient(cb);
    const { data: signUp, error } = await alice.auth.signUp({ email: email('alice'), password: PASSWORD });
    assert.equal(error, null);
    const uid = signUp.user.id;
    const connectors = await alice.from('connectors').select('id, slug').eq('is_active', true).limit(1);
    assert.equal(connectors.error, null);
    const connector = connectors.data[0];
    const connected = await alice
      .from('user_connections')
      .upsert({ user_id: uid, connector_id: connector.id, status: 'active' }, { onConflict: 'user_id,connector_id' })
      .select()
      .single();
    assert.equal(connected.error, null, JSON.stringify(connected.error));
    const job = await alice
      .from('pipeline_jobs')
      .insert({ user_id: uid, connector_id: connector.id, type: 'tool_run', input: { q: 1 } })
      .select()
      .single();
    assert.equal(job.error, null, JSON.stringify(job.error));
    const mine = await alice.from('pipeline_jobs').select('id, user_id').order('created_at', { ascending: false });
    assert.equal(mine.error, null);
    assert.deepEqual(mine.data.map((j) => j.id), [job.data.id]);

    const bob = anonClient(cb);
    await bob.auth.signUp({ email: email('bob'), password: PASSWORD });
    const theirs = await bob.from('pipeline_jobs').select('id');
    assert.equal(theirs.error, null);
    assert.deepEqual(theirs.data, []);
    const forged = await bob.from('pipeline_jobs').insert({ user_id: uid, connector_id: connector.id, type: 'x' });
    assert.ok(forged.error, 'RLS refuses a job in another user\'s name');
    // Without a session (anon) none of it is visible either.
    const anon = anonClient(cb);
    assert.deepEqual((await anon.from('pipeline_jobs').select('id')).data, []);
  });

  test('with 5 s access tokens, auto-refresh keeps a session working for 30 s', { timeout: 60_000 }, async () => {
    const address = email('auto');
    await serviceClient(limited).auth.admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
    const supabase = createClient(limited.url, limited.anonKey, { auth: { autoRefreshToken: true } });
    const events = [];
    supabase.auth.onAuthStateChange((event) => events.push(event));
    const { data, error } = await supabase.auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(error, null);
    assert.equal(data.session.expires_in, 5);
    const tokens = new Set([data.session.access_token]);
    const started = Date.now();
    try {
      while (Date.now() - started < 30_000) {
        const me = await supabase.auth.getUser();
        assert.equal(me.error, null, `after ${Date.now() - started} ms: ${me.error?.message}`);
        assert.equal(me.data.user.email, address);
        const { data: s } = await supabase.auth.getSession();
        tokens.add(s.session.access_token);
        assert.ok(s.session.expires_at * 1000 > Date.now(), 'the stored token is never expired');
        await sleep(2_500);
      }
    } finally {
      supabase.auth.stopAutoRefresh();
    }
    assert.ok(tokens.size >= 6, `the token was refreshed along the way (${tokens.size} tokens)`);
    assert.ok(events.includes('TOKEN_REFRESHED'));
    assert.ok(!events.includes('SIGNED_OUT'));
  });
});

describe('phone without an SMS provider', () => {
  test('sign-up, sign-in, OTP, resend and verify by phone answer as GoTrue with the phone provider off', async () => {
    const supabase = anonClient(cb);
    const phone = '+15555550123';
    const checks = [
      [await supabase.auth.signUp({ phone, password: PASSWORD }), 400, 'Phone signups are disabled'],
      [await supabase.auth.signInWithPassword({ phone, password: PASSWORD }), 422, 'Phone logins are disabled'],
      [await supabase.auth.signInWithOtp({ phone }), 400, 'Unsupported phone provider'],
      [await supabase.auth.resend({ type: 'sms', phone }), 400, 'Phone logins are disabled'],
    ];
    for (const [{ error }, status, message] of checks) {
      assert.equal(error.code, 'phone_provider_disabled', message);
      assert.equal(error.status, status, message);
      assert.equal(error.message, message);
    }
    const verify = await supabase.auth.verifyOtp({ phone, token: '123456', type: 'sms' });
    assert.equal(verify.error.code, 'otp_expired');
    assert.equal(verify.error.status, 403);
    const rows = await pgQuery(cb.dbUrl, 'select count(*)::int as n from auth.users where phone = $1', [phone.slice(1)]);
    assert.equal(rows[0].n, 0);
  });
});

describe('asymmetric signing keys', () => {
  test('ES256 tokens with a kid: published in the JWKS, verified by getClaims, accepted by /rest/v1', async () => {
    const jwks = await (await fetch(`${limited.url}/auth/v1/.well-known/jwks.json`)).json();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kid, SIGNING_JWK.kid);
    assert.equal(jwks.keys[0].x, SIGNING_JWK.x);
    assert.equal(jwks.keys[0].d, undefined);

    const address = email('es256');
    await serviceClient(limited).auth.admin.createUser({ email: address, password: PASSWORD, email_confirm: true });
    const supabase = anonClient(limited);
    const { data, error } = await supabase.auth.signInWithPassword({ email: address, password: PASSWORD });
    assert.equal(error, null);
    const { header, payload } = decodeJwt(data.session.access_token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, SIGNING_JWK.kid);

    const claims = await supabase.auth.getClaims();
    assert.equal(claims.error, null);
    assert.equal(claims.data.claims.sub, payload.sub);
    assert.equal(claims.data.header.alg, 'ES256');

    const jobs = await supabase.from('pipeline_jobs').select('id');
    assert.equal(jobs.error, null, JSON.stringify(jobs.error));
    const connector = (await supabase.from('connectors').select('id').limit(1)).data[0];
    const inserted = await supabase
      .from('pipeline_jobs')
      .insert({ user_id: payload.sub, connector_id: connector.id, type: 'es256' })
      .select()
      .single();
    assert.equal(inserted.error, null, JSON.stringify(inserted.error));
    assert.equal(inserted.data.user_id, payload.sub);

    // A token signed by another key with the same kid is refused.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const { createSign } = await import('node:crypto');
    const h = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: SIGNING_JWK.kid })).toString('base64url');
    const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const sig = createSign('SHA256').update(`${h}.${p}`).sign({ key: other, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    const forged = await anonClient(limited).auth.getUser(`${h}.${p}.${sig}`);
    assert.equal(forged.error.status, 403);
  });
});
