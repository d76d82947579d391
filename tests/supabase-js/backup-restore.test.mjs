// `craftbase backup` and `craftbase restore`: a project's users and rows survive a dump and a
// restore into a fresh data directory served on other ports. The users sign in with the same
// passwords, each sees only their own rows (RLS came along), the migration ledger came along so
// nothing is applied again, and realtime streams from the restored database (its replication
// slot, never in a dump, is made at start). With the secrets file the keys, tokens and refresh
// tokens of before stay valid; without it new keys are minted. A restore into a data directory
// in use is refused and leaves it untouched.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { anonClient, craftbaseBin, createClient, hermeticEnv, livePostmasters, pgQuery, serviceClient, startCraftbase } from './lib/craftbase.mjs';
import { Inbox, subscribed } from './lib/realtime.mjs';

const PASSWORD = 'correct-horse-battery';
const MIGRATION = `
create table public.backup_notes (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  body text not null
);
alter table public.backup_notes enable row level security;
create policy "own notes" on public.backup_notes for all to authenticated
  using (user_id = auth.uid()) with check (user_id = auth.uid());
alter publication supabase_realtime add table public.backup_notes;
-- A role of the project's own: pg_dump carries no roles, restore must make it.
create role backup_notes_reader nologin;
grant select on public.backup_notes to backup_notes_reader;
create policy "readers read all" on public.backup_notes for select to backup_notes_reader using (true);
`;

let tmp;
let projectDir;
/** the original, then each restored one */
const servers = [];
const clients = [];

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-backup-'));
  // The postgres user (craftbase run as root) must reach the clusters inside.
  await fs.chmod(tmp, 0o755);
  projectDir = path.join(tmp, 'project');
  await fs.mkdir(path.join(projectDir, 'supabase', 'migrations'), { recursive: true });
  await fs.writeFile(path.join(projectDir, 'supabase', 'migrations', '20240101000000_backup_notes.sql'), MIGRATION);
});

after(
  async () => {
    for (const c of clients) await c.removeAllChannels().catch(() => {});
    for (const cb of servers) await cb.stop().catch(() => {});
    if (tmp) {
      for (const pid of await livePostmasters(tmp)) process.kill(pid, 'SIGKILL');
      await fs.rm(tmp, { recursive: true, force: true });
    }
  },
  { timeout: 60_000 },
);

/** Runs the craftbase binary with args; resolves with its exit code and output. */
function craftbase(args) {
  return new Promise((resolve) => {
    execFile(craftbaseBin(), args, { env: hermeticEnv(), timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function start(dataDir) {
  const cb = await startCraftbase({ projectDir, dataDir });
  servers.push(cb);
  return cb;
}

async function signIn(cb, email) {
  const client = anonClient(cb);
  clients.push(client);
  const { data, error } = await client.auth.signInWithPassword({ email, password: PASSWORD });
  assert.equal(error, null, `${email} cannot sign in: ${error?.message}${cb.diagnostics()}`);
  return { client, session: data.session };
}

async function notesOf(client) {
  const { data, error } = await client.from('backup_notes').select('body').order('body');
  assert.equal(error, null, error?.message);
  return data.map((n) => n.body);
}

// Both ledgers: the platform's (craftbase.migrations) and the project's (the Supabase CLI's).
const ledger = (cb) =>
  pgQuery(
    cb.dbUrl,
    `select name, checksum, applied_at::text from craftbase.migrations
     union all select version || '_' || name || '.sql', array_to_string(statements, ';'), null
       from supabase_migrations.schema_migrations
     order by 1`,
  );

async function mode(file) {
  return (await fs.stat(file)).mode & 0o777;
}

test('backup, restore into a fresh data directory: same users, rows, RLS and ledger', { timeout: 170_000 }, async () => {
  const original = await start(path.join(tmp, 'original'));
  const alice = `alice-${Date.now()}@example.com`;
  const bob = `bob-${Date.now()}@example.com`;
  for (const email of [alice, bob]) {
    const { error } = await anonClient(original).auth.signUp({ email, password: PASSWORD });
    assert.equal(error, null, error?.message);
  }
  const a = await signIn(original, alice);
  const b = await signIn(original, bob);
  for (const [who, bodies] of [
    [a, ['alice 1', 'alice 2']],
    [b, ['bob 1']],
  ]) {
    const { error } = await who.client.from('backup_notes').insert(bodies.map((body) => ({ body })));
    assert.equal(error, null, error?.message);
  }
  const keys = { anon: original.anonKey, secret: original.jwtSecret };
  const ledgerBefore = await ledger(original);
  assert.ok(ledgerBefore.some((m) => m.name.endsWith('20240101000000_backup_notes.sql')));

  // While it runs: through its socket.
  const live = path.join(tmp, 'live.dump');
  const hot = await craftbase(['backup', '--data-dir', original.dataDir, '--output', live, '--include-secrets']);
  assert.equal(hot.code, 0, hot.stderr);
  assert.match(hot.stdout, /backup written: .*live\.dump/);
  assert.equal(await mode(live), 0o600, 'the dump holds password hashes');
  assert.equal(await mode(`${live}.secrets.json`), 0o600);
  assert.equal(JSON.parse(await fs.readFile(`${live}.secrets.json`, 'utf8')).jwt_secret, keys.secret);

  // From a server given by URL (a craftbase started with DATABASE_URL): restorable too.
  const byUrl = path.join(tmp, 'url.dump');
  const fromUrl = await craftbase(['backup', '--db-url', original.dbUrl, '--output', byUrl]);
  assert.equal(fromUrl.code, 0, fromUrl.stderr);
  const urlRestore = await craftbase(['restore', byUrl, '--data-dir', path.join(tmp, 'from-url')]);
  assert.equal(urlRestore.code, 0, urlRestore.stderr);

  // Stopped: its cluster is started for the dump and stopped again.
  await original.stop({ keepDataDir: true });
  const cold = path.join(tmp, 'cold.dump');
  const stopped = await craftbase(['backup', '--data-dir', original.dataDir, '--output', cold]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(await livePostmasters(original.dataDir), [], 'the cluster started for the dump is stopped');
  await assert.rejects(fs.access(`${cold}.secrets.json`), 'no secrets without --include-secrets');
  const again = await craftbase(['backup', '--data-dir', original.dataDir, '--output', cold]);
  assert.notEqual(again.code, 0, 'an existing file is never overwritten');

  // With the secrets: the same keys, and the sessions of before still work.
  const restoredDir = path.join(tmp, 'restored');
  const restored = await craftbase(['restore', live, '--data-dir', restoredDir, '--secrets', `${live}.secrets.json`]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /start it with: craftbase start --data-dir/);
  assert.match(restored.stdout, /created without login .*: backup_notes_reader\./);
  const copy = await start(restoredDir);
  assert.notEqual(copy.url, original.url);
  assert.equal(copy.anonKey, keys.anon);
  assert.equal(copy.jwtSecret, keys.secret);

  const a2 = await signIn(copy, alice);
  assert.equal(a2.session.user.id, a.session.user.id);
  assert.deepEqual(await notesOf(a2.client), ['alice 1', 'alice 2']);
  const b2 = await signIn(copy, bob);
  assert.deepEqual(await notesOf(b2.client), ['bob 1']);
  assert.deepEqual(await notesOf(anonClient(copy)), [], 'RLS still applies');
  const oldToken = createClient(copy.url, copy.anonKey, { global: { headers: { Authorization: `Bearer ${a.session.access_token}` } } });
  assert.deepEqual(await notesOf(oldToken), ['alice 1', 'alice 2'], 'an access token of before is valid');
  const refreshed = await anonClient(copy).auth.refreshSession({ refresh_token: b.session.refresh_token });
  assert.equal(refreshed.error, null, `a refresh token of before: ${refreshed.error?.message}`);
  assert.equal(refreshed.data.user.email, bob);

  // The ledger came with the dump: nothing was applied again.
  assert.deepEqual(await ledger(copy), ledgerBefore);
  assert.doesNotMatch(copy.stderr(), /applying migration/);

  // The project's own role is back, with its grant and its policy.
  const [reader] = await pgQuery(
    copy.dbUrl,
    `select rolcanlogin, has_table_privilege('backup_notes_reader', 'public.backup_notes', 'select') as can_read,
            (select count(*)::int from pg_policies where 'backup_notes_reader' = any (roles)) as policies
       from pg_roles where rolname = 'backup_notes_reader'`,
  );
  assert.deepEqual(reader, { rolcanlogin: false, can_read: true, policies: 1 });

  // Realtime streams from the restored database: slot made at start, publication restored.
  const [slot] = await pgQuery(copy.dbUrl, `select count(*)::int as n from pg_replication_slots where slot_type = 'logical'`);
  assert.equal(slot.n, 1);
  const inbox = new Inbox();
  await a2.client.realtime.setAuth(a2.session.access_token);
  await subscribed(
    a2.client.channel('notes').on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'backup_notes' }, inbox.push),
  );
  const { error: insertError } = await a2.client.from('backup_notes').insert({ body: 'alice 3' });
  assert.equal(insertError, null, insertError?.message);
  await inbox.next((m) => m.new?.body === 'alice 3', 15_000);
  await a2.client.removeAllChannels();

  // A data directory in use is refused, and left as it was.
  const secretsBefore = await fs.readFile(path.join(restoredDir, 'secrets.json'), 'utf8');
  const refused = await craftbase(['restore', cold, '--data-dir', restoredDir]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /already holds a craftbase data directory; restore never overwrites one/);
  assert.equal(await fs.readFile(path.join(restoredDir, 'secrets.json'), 'utf8'), secretsBefore);
  const stillServing = await signIn(copy, alice);
  assert.deepEqual(await notesOf(stillServing.client), ['alice 1', 'alice 2', 'alice 3']);
  await copy.stop();

  // Without the secrets: new keys, the old token refused, the same users and rows.
  const freshDir = path.join(tmp, 'fresh');
  const fresh = await craftbase(['restore', cold, '--data-dir', freshDir]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, /new JWT secret and keys were generated/);
  const rekeyed = await start(freshDir);
  assert.notEqual(rekeyed.anonKey, keys.anon);
  assert.notEqual(rekeyed.jwtSecret, keys.secret);
  const stale = createClient(rekeyed.url, rekeyed.anonKey, { global: { headers: { Authorization: `Bearer ${a.session.access_token}` } } });
  const { error: staleError } = await stale.from('backup_notes').select('body');
  assert.ok(staleError, 'a token signed with the old secret is refused');
  const a3 = await signIn(rekeyed, alice);
  assert.deepEqual(await notesOf(a3.client), ['alice 1', 'alice 2']);
  assert.deepEqual(await ledger(rekeyed), ledgerBefore);
  await rekeyed.stop();
});

test('restore refuses a file that is not a dump and leaves no data directory behind', { timeout: 60_000 }, async () => {
  const junk = path.join(tmp, 'junk.dump');
  await fs.writeFile(junk, 'not a dump');
  const target = path.join(tmp, 'never');
  const res = await craftbase(['restore', junk, '--data-dir', target]);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /is not a dump pg_restore can read/);
  await assert.rejects(fs.access(target));
});

test('a restore that fails part-way keeps nothing: a new directory is removed, an empty one emptied', { timeout: 120_000 }, async () => {
  const cb = await start(path.join(tmp, 'checked'));
  // A CHECK through a function reading another table: pg_dump's classic trap. The child's rows
  // are restored before the parent's, so the restore fails in the middle, after the schema.
  await pgQuery(cb.dbUrl, 'create table public.zz_parent (id int primary key)');
  await pgQuery(
    cb.dbUrl,
    `create function public.parent_exists(i int) returns bool language sql stable
       as 'select exists (select 1 from public.zz_parent where id = i)'`,
  );
  await pgQuery(cb.dbUrl, 'create table public.aa_child (parent_id int check (public.parent_exists(parent_id)))');
  await pgQuery(cb.dbUrl, 'insert into public.zz_parent values (1)');
  await pgQuery(cb.dbUrl, 'insert into public.aa_child values (1)');
  const dump = path.join(tmp, 'checked.dump');
  const backup = await craftbase(['backup', '--data-dir', cb.dataDir, '--output', dump]);
  assert.equal(backup.code, 0, backup.stderr);
  await cb.stop();

  const target = path.join(tmp, 'half');
  const res = await craftbase(['restore', dump, '--data-dir', target]);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /restore failed; .*half was removed: pg_restore failed/);
  assert.match(res.stderr, /violates check constraint "aa_child_parent_id_check"/, 'pg_restore\'s own error is shown');
  await assert.rejects(fs.access(target));

  const empty = path.join(tmp, 'empty');
  await fs.mkdir(empty, { mode: 0o750 });
  await fs.chmod(empty, 0o750);
  const again = await craftbase(['restore', dump, '--data-dir', empty]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /empty was emptied again/);
  assert.deepEqual(await fs.readdir(empty), []);
  assert.equal(await mode(empty), 0o750);
  assert.deepEqual(await livePostmasters(tmp), []);
});

test('storage objects: a backup keeps the bytes its rows name, a restore brings rows and bytes back', { timeout: 170_000 }, async () => {
  const cb = await start(path.join(tmp, 'with-objects'));
  const admin = serviceClient(cb);
  clients.push(admin);
  assert.equal((await admin.storage.createBucket('files', { public: false })).error, null);
  const put = (name, body) => admin.storage.from('files').upload(name, new Blob([body], { type: 'text/plain' }), { upsert: true });
  assert.equal((await put('docs/a.txt', 'first a')).error, null);
  assert.equal((await put('b.txt', 'bee')).error, null);

  const dump = path.join(tmp, 'objects.dump');
  const backup = await craftbase(['backup', '--data-dir', cb.dataDir, '--output', dump]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /storage objects written: .*objects\.dump\.storage \(2 files, 10 B\)/);
  // After the backup, the live store replaces and removes bytes: the backup keeps its own.
  assert.equal((await put('docs/a.txt', 'second a')).error, null);
  assert.equal((await admin.storage.from('files').remove(['b.txt'])).error, null);
  await cb.stop();

  const restoredDir = path.join(tmp, 'objects-restored');
  const restored = await craftbase(['restore', dump, '--data-dir', restoredDir]);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /restored 2 storage object files/);
  const again = await start(restoredDir);
  const client = serviceClient(again);
  clients.push(client);
  for (const [name, body] of [['docs/a.txt', 'first a'], ['b.txt', 'bee']]) {
    const { data, error } = await client.storage.from('files').download(name);
    assert.equal(error, null, `${name}: ${error?.message}`);
    assert.equal(await data.text(), body);
  }
  await again.stop();

  // An old backup (no folder beside the dump) restores its rows and says the bytes are missing.
  await fs.rm(`${dump}.storage`, { recursive: true });
  const old = await craftbase(['restore', dump, '--data-dir', path.join(tmp, 'objects-old')]);
  assert.equal(old.code, 0, old.stderr);
  assert.match(old.stdout, /the dump has 2 storage objects but no .*objects\.dump\.storage beside it/);
});
