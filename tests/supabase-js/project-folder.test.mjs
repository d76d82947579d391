// A Supabase project folder of its own (supabase/config.toml, two migrations with RLS, a seed),
// written here into a temp dir and served with `craftbase start --project-dir`: the config's
// settings are in effect, the project's RLS decides, and no Tool Connect Craft table is there.
// Also `craftbase config` (which source each setting came from) and the db.major_version check.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { anonClient, craftbaseBin, hermeticEnv, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const CONFIG = `
project_id = "notes"

[api]
enabled = true
port = 54321
schemas = ["public", "graphql_public"]
# util holds a helper the project's functions call unqualified.
extra_search_path = ["public", "extensions", "util"]
max_rows = 2

[db]
port = 54322

[realtime]
enabled = false

[studio]
enabled = true
port = 54323

[auth]
enabled = true
site_url = "env(NOTES_SITE_URL)"
additional_redirect_urls = ["http://notes.example.test/welcome"]
jwt_expiry = 900
enable_signup = true
enable_anonymous_sign_ins = false
minimum_password_length = 10

[auth.email]
enable_signup = true
enable_confirmations = false
max_frequency = "30s"

[definitely_not_supabase]
answer = 42
`;

const NOTES = `
create table public.notes (
  id bigint generated always as identity primary key,
  owner uuid not null default auth.uid() references auth.users (id) on delete cascade,
  body text not null
);
alter table public.notes enable row level security;
create policy "owners read their notes" on public.notes for select to authenticated
  using (owner = auth.uid());
create policy "owners write their notes" on public.notes for insert to authenticated
  with check (owner = auth.uid());

create table public.tags (
  id int primary key,
  name text not null unique
);
alter table public.tags enable row level security;
create policy "tags are public" on public.tags for select to anon, authenticated using (true);
`;

const HELPERS = `
create schema util;
grant usage on schema util to anon, authenticated, service_role;
create function util.shout(t text) returns text language sql immutable as $$ select upper(t) $$;
-- Resolved at call time through the request's search_path (api.extra_search_path).
create function public.shout_note(note_id bigint) returns text language plpgsql stable as $$
begin
  return (select shout(body) from notes where id = note_id);
end $$;
`;

const SEED = `insert into public.tags (id, name) values (1, 'home'), (2, 'work'), (3, 'ideas');\n`;

/** Writes the project folder; `config` replaces config.toml's text. */
async function writeProject(dir, config = CONFIG) {
  await fs.mkdir(path.join(dir, 'supabase', 'migrations'), { recursive: true });
  await fs.writeFile(path.join(dir, 'supabase', 'config.toml'), config);
  await fs.writeFile(path.join(dir, 'supabase', 'migrations', '20240101000000_notes.sql'), NOTES);
  await fs.writeFile(path.join(dir, 'supabase', 'migrations', '20240102000000_helpers.sql'), HELPERS);
  await fs.writeFile(path.join(dir, 'supabase', 'seed.sql'), SEED);
}

/** Runs the craftbase binary to its end: { code, stdout, stderr }. */
function runCraftbase(args, env = {}) {
  return new Promise((resolve) => {
    execFile(
      craftbaseBin(),
      args,
      { env: { ...hermeticEnv(), ...env }, timeout: 60_000, cwd: os.tmpdir() },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let root;
let projectDir;
let cb;
let service;

before(
  async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-project-'));
    projectDir = path.join(root, 'notes');
    await writeProject(projectDir);
    cb = await startCraftbase({ projectDir, env: { NOTES_SITE_URL: 'http://notes.example.test' } });
    service = serviceClient(cb);
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  },
  { timeout: 60_000 },
);

/** A signed-up user's client. */
async function signedUp(email) {
  const client = anonClient(cb);
  const { data, error } = await client.auth.signUp({ email, password: 'correct horse battery' });
  assert.equal(error, null);
  assert.ok(data.session, 'enable_confirmations = false: a session at once');
  return { client, user: data.user, session: data.session };
}

describe('a project folder with its own config.toml', () => {
  test('unknown keys are warned about by name; Supabase-only sections are not', () => {
    assert.match(cb.stderr(), /unknown key in config\.toml.*definitely_not_supabase/);
    assert.doesNotMatch(cb.stderr(), /unknown key in config\.toml.*studio/);
  });

  test('the seed ran, and api.max_rows caps a read', async () => {
    const { data, error } = await anonClient(cb).from('tags').select('name').order('id');
    assert.equal(error, null);
    assert.deepEqual(data, [{ name: 'home' }, { name: 'work' }]);
    const { count } = await service.from('tags').select('*', { count: 'exact', head: true });
    assert.equal(count, 3);
  });

  test('auth: minimum_password_length, jwt_expiry and enable_anonymous_sign_ins', async () => {
    const client = anonClient(cb);
    const weak = await client.auth.signUp({ email: 'short@example.test', password: 'abc123456' });
    assert.equal(weak.error?.status, 422);
    assert.equal(weak.error?.code, 'weak_password');

    const { session } = await signedUp('carol@example.test');
    assert.equal(session.expires_in, 900);

    const anon = await anonClient(cb).auth.signInAnonymously();
    assert.equal(anon.error?.status, 422);
    assert.equal(anon.error?.code, 'anonymous_provider_disabled');
  });

  test('auth: site_url (through env()) is where links land by default', async () => {
    const created = await service.auth.admin.createUser({ email: 'dave@example.test', email_confirm: true });
    assert.equal(created.error, null);
    const { data, error } = await service.auth.admin.generateLink({
      type: 'magiclink',
      email: 'dave@example.test',
    });
    assert.equal(error, null);
    assert.equal(data.properties.redirect_to, 'http://notes.example.test');
    // additional_redirect_urls are allowed targets.
    const allowed = await service.auth.admin.generateLink({
      type: 'magiclink',
      email: 'dave@example.test',
      options: { redirectTo: 'http://notes.example.test/welcome' },
    });
    assert.equal(allowed.data.properties.redirect_to, 'http://notes.example.test/welcome');
  });

  test('auth.email.max_frequency: a second mail to one address too soon is refused', async () => {
    const created = await service.auth.admin.createUser({ email: 'erin@example.test', email_confirm: true });
    assert.equal(created.error, null);
    const client = anonClient(cb);
    const first = await client.auth.resetPasswordForEmail('erin@example.test');
    assert.equal(first.error, null);
    const second = await client.auth.resetPasswordForEmail('erin@example.test');
    assert.equal(second.error?.status, 429);
    assert.equal(second.error?.code, 'over_email_send_rate_limit');
    assert.match(second.error.message, /only request this after \d+ seconds/);
  });

  test("the project's RLS: a user sees only their notes, anon none", async () => {
    const alice = await signedUp('alice@example.test');
    const bob = await signedUp('bob@example.test');
    let r = await alice.client.from('notes').insert({ body: 'alice one' }).select().single();
    assert.equal(r.error, null);
    const aliceNote = r.data;
    assert.equal(aliceNote.owner, alice.user.id);
    r = await bob.client.from('notes').insert({ body: 'bob one' });
    assert.equal(r.error, null);
    // Writing as someone else is refused by the policy.
    r = await bob.client.from('notes').insert({ body: 'forged', owner: alice.user.id });
    assert.equal(r.error?.code, '42501');

    r = await alice.client.from('notes').select('body');
    assert.deepEqual(r.data, [{ body: 'alice one' }]);
    r = await bob.client.from('notes').select('body');
    assert.deepEqual(r.data, [{ body: 'bob one' }]);
    r = await anonClient(cb).from('notes').select('body');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, []);

    // api.extra_search_path: the function finds util.shout unqualified.
    r = await alice.client.rpc('shout_note', { note_id: aliceNote.id });
    assert.equal(r.error, null);
    assert.equal(r.data, 'ALICE ONE');
  });

  test('realtime.enabled = false: its prefix answers 404 as the gateway does for no route', async () => {
    const res = await fetch(`${cb.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: cb.anonKey, 'content-type': 'application/json' },
      body: '{"messages":[]}',
    });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { message: 'no Route matched with those values' });
    // Nothing streams from the database then, and that is no reason to be unready.
    const ready = await fetch(`${cb.url}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { database: 'up', migrations: 'applied', replication: 'off' });
  });

  // Tool Connect Craft is an example project, not part of the platform.
  test('no Tool Connect Craft table exists', async () => {
    for (const table of ['connectors', 'connections']) {
      const { error, status } = await service.from(table).select('*').limit(1);
      assert.equal(status, 404, `${table} should not exist`);
      assert.equal(error?.code, 'PGRST205');
    }
  });
});

describe('craftbase config', () => {
  test('prints each setting with its source: flag > env > config.toml > default; secrets masked', async () => {
    const { code, stdout, stderr } = await runCraftbase(
      ['config', '--json', '--project-dir', projectDir, '--port', '7777'],
      {
        GOTRUE_SITE_URL: 'http://from-env.test',
        GOTRUE_SMTP_PASS: 'hunter2-hunter2',
        DATABASE_URL: 'postgresql://postgres:pa55word@127.0.0.1:5432/postgres',
      },
    );
    assert.equal(code, 0, stderr);
    const out = JSON.parse(stdout);
    assert.equal(out.config_file, path.join(projectDir, 'supabase', 'config.toml'));
    assert.deepEqual(out.unknown_keys, ['definitely_not_supabase']);
    const by = Object.fromEntries(out.settings.map((s) => [s.name, s]));
    assert.deepEqual(
      { value: by.CRAFTBASE_PORT.value, source: by.CRAFTBASE_PORT.source },
      { value: '7777', source: 'flag' },
    );
    assert.deepEqual(
      { value: by.GOTRUE_SITE_URL.value, source: by.GOTRUE_SITE_URL.source },
      { value: 'http://from-env.test', source: 'env' },
    );
    assert.deepEqual(
      { value: by.PGRST_DB_MAX_ROWS.value, source: by.PGRST_DB_MAX_ROWS.source, key: by.PGRST_DB_MAX_ROWS.key },
      { value: '2', source: 'config.toml', key: 'api.max_rows' },
    );
    assert.deepEqual(
      { value: by.CRAFTBASE_DB_PORT.value, source: by.CRAFTBASE_DB_PORT.source },
      { value: '54322', source: 'config.toml' },
    );
    assert.equal(by.GOTRUE_URI_ALLOW_LIST.value, 'http://notes.example.test/welcome');
    assert.equal(by.GOTRUE_URI_ALLOW_LIST.source, 'config.toml');
    assert.equal(by.GOTRUE_JWT_AUD.source, 'default');
    assert.equal(by.GOTRUE_SMTP_PASS.value, '****');
    assert.equal(by.DATABASE_URL.value, 'postgresql://postgres:****@127.0.0.1:5432/postgres');
    assert.doesNotMatch(stdout, /hunter2|pa55word/);
  });

  test('a wrong type stops start-up naming the file and the key', async () => {
    const dir = path.join(root, 'wrong-type');
    await writeProject(dir, '[api]\nmax_rows = "lots"\n');
    const { code, stderr } = await runCraftbase(['config', '--project-dir', dir]);
    assert.notEqual(code, 0);
    assert.match(stderr, /config\.toml/);
    assert.match(stderr, /api\.max_rows/);
  });

  test('db.major_version that is not the PostgreSQL craftbase runs stops start-up', async () => {
    const dir = path.join(root, 'old-major');
    await writeProject(dir, '[db]\nmajor_version = 9\n');
    const data = path.join(root, 'old-major-data');
    const { code, stderr } = await runCraftbase([
      'start',
      '--project-dir',
      dir,
      '--data-dir',
      data,
      '--port',
      '0',
    ]);
    assert.notEqual(code, 0);
    assert.match(stderr, /db\.major_version = 9/);
    assert.match(stderr, /PostgreSQL craftbase runs is \d+/);
    assert.match(stderr, /postgresql-9/);
  });
});
