// `craftbase gen types typescript` against a running craftbase: the generated `Database` type
// compiles with `tsc --noEmit` in a small typed supabase-js program (createClient<Database>, a
// select with an embed, an insert, an rpc call), and the types are real: a wrong column type is
// an error (`// @ts-expect-error`), and the calls type-check against the live database's schema.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { SUITE_DIR, craftbaseBin, craftbaseStatus, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const run = promisify(execFile);

/** The project's own schema: two related tables and a function, apart from any app's tables. */
const MIGRATION = `
create table public.typegen_authors (
  id bigint generated always as identity primary key,
  name text not null
);
create table public.typegen_books (
  id bigint generated always as identity primary key,
  author_id bigint not null references public.typegen_authors (id),
  title text not null,
  pages int,
  tags text[] default '{}'
);
create function public.typegen_book_count(author bigint) returns int
language sql stable as 'select count(*)::int from public.typegen_books where author_id = author';
grant all on public.typegen_authors, public.typegen_books to anon, authenticated, service_role;
`;

/** A program using the generated types the way an app does. */
const PROGRAM = `
import { createClient } from '@supabase/supabase-js'
import type { Database, Tables, TablesInsert } from './database.types'

const supabase = createClient<Database>('http://127.0.0.1:54321', 'anon-key')

export async function main(): Promise<number> {
  const { data: books, error } = await supabase
    .from('typegen_books')
    .select('id, title, pages, typegen_authors(name)')
    .order('id')
  if (error || !books) return 0
  const title: string = books[0].title
  const pages: number | null = books[0].pages
  const author: string = books[0].typegen_authors.name

  const row: TablesInsert<'typegen_books'> = { author_id: 1, title: 'Another' }
  await supabase.from('typegen_books').insert(row)

  const { data: count } = await supabase.rpc('typegen_book_count', { author: 1 })
  const n: number | null = count

  const book: Tables<'typegen_books'> | undefined = undefined
  // @ts-expect-error: title is a string, so the types are not any
  const wrong: number = books[0].title

  return title.length + (pages ?? 0) + author.length + (n ?? 0) + (book ? 1 : 0) + wrong
}
`;

let cb;
let tmp;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-gen-types-'));
  const migrations = path.join(tmp, 'project', 'supabase', 'migrations');
  await fs.mkdir(migrations, { recursive: true });
  await fs.writeFile(path.join(migrations, '20260101000000_typegen.sql'), MIGRATION);
  cb = await startCraftbase({ projectDir: path.join(tmp, 'project') });
}, { timeout: 180_000 });

after(async () => {
  if (cb) await cb.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
}, { timeout: 60_000 });

/** Runs `craftbase gen types typescript` with the database URL `status --json` reports. */
async function genTypes(...args) {
  const status = await craftbaseStatus(cb.dataDir);
  assert.equal(status.code, 0, status.stderr);
  const { stdout } = await run(
    craftbaseBin(),
    ['gen', 'types', 'typescript', '--db-url', status.json.db_url, ...args],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

test('the generated types describe the live schema', async () => {
  const types = await genTypes();
  assert.match(types, /^export type Json =/);
  assert.match(types, /typegen_books: \{\n\s+Row: \{\n\s+author_id: number\n\s+id: number\n\s+pages: number \| null\n\s+tags: string\[\] \| null\n\s+title: string\n/);
  assert.match(types, /Insert: \{\n\s+author_id: number\n\s+id\?: never\n/);
  assert.match(types, /foreignKeyName: "typegen_books_author_id_fkey"\n\s+columns: \["author_id"\]\n\s+isOneToOne: false\n\s+referencedRelation: "typegen_authors"/);
  assert.match(types, /typegen_book_count: \{ Args: \{ author: number \}; Returns: number \}/);
  assert.match(types, /export const Constants = \{/);
});

test('a typed supabase-js program compiles with tsc against the generated types', { timeout: 120_000 }, async () => {
  const dir = path.join(tmp, 'app');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'database.types.ts'), await genTypes('--schema', 'public'));
  await fs.writeFile(path.join(dir, 'app.ts'), PROGRAM);
  await fs.symlink(path.join(SUITE_DIR, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  await fs.writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        lib: ['ES2022', 'DOM'],
        skipLibCheck: true,
      },
      files: ['app.ts'],
    }),
  );
  const tsc = path.join(SUITE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
  assert.equal(result.code, 0, `tsc failed:\n${result.stdout}${result.stderr}`);

  // Without the @ts-expect-error line's error (types that were any), tsc must fail: the
  // directive itself is then unused.
  await fs.writeFile(path.join(dir, 'app.ts'), PROGRAM.replace('const wrong: number = books[0].title', 'const wrong: number = books[0].pages ?? 0'));
  const unused = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
    () => ({ code: 0, stdout: '' }),
    (e) => ({ code: e.code, stdout: e.stdout }),
  );
  assert.notEqual(unused.code, 0, 'an unused @ts-expect-error must fail tsc');
  assert.match(unused.stdout, /TS2578/);
});

test('the calls the program type-checks work against the server', async () => {
  const supabase = serviceClient(cb);
  const { data: author, error: e1 } = await supabase.from('typegen_authors').insert({ name: 'Ada' }).select().single();
  assert.equal(e1, null);
  const { error: e2 } = await supabase.from('typegen_books').insert({ author_id: author.id, title: 'Notes' });
  assert.equal(e2, null);
  const { data: books, error: e3 } = await supabase.from('typegen_books').select('id, title, pages, typegen_authors(name)');
  assert.equal(e3, null);
  assert.deepEqual(books.map((b) => [b.title, b.typegen_authors.name]), [['Notes', 'Ada']]);
  const { data: n, error: e4 } = await supabase.rpc('typegen_book_count', { author: author.id });
  assert.equal(e4, null);
  assert.equal(n, 1);
});
