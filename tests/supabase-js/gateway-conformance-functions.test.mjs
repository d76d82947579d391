// REST conformance of functions used as relationships and columns (issue 11), as PostgREST 12/13
// answers them: computed relationships (a function of a row returning SETOF a table, or one row
// of it), embeds and computed fields on an RPC's result, and computed fields (a function of a row
// returning one value) selected, filtered and ordered like columns. One craftbase for the file,
// with its own tables and functions (prefixed cf_): writers, their novels and prizes.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { anonClient, pgQuery, restRequest, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';

let cb;
let service;
let anon;

const SCHEMA = `
  create table public.cf_writers (id int primary key, name text not null, country text);
  create table public.cf_novels (
    id int primary key,
    writer_id int not null references public.cf_writers (id),
    title text not null,
    pages int not null
  );
  create table public.cf_prizes (id int primary key, novel_id int not null references public.cf_novels (id), year int not null);
  create table public.cf_drafts (id int primary key, writer_id int not null references public.cf_writers (id), body text, shared boolean not null);
  insert into public.cf_writers values (1, 'Ines', 'PT'), (2, 'Oskar', 'SE'), (3, 'Wren', null);
  insert into public.cf_novels values
    (10, 1, 'Tidewater', 120), (11, 1, 'Salt Roads', 80), (12, 1, 'Harbour Lights', 310), (20, 2, 'Birch', 205);
  insert into public.cf_prizes values (100, 12, 2020), (101, 12, 2022), (102, 20, 2019);
  insert into public.cf_drafts values (1, 1, 'open draft', true), (2, 1, 'secret draft', false);
  alter table public.cf_drafts enable row level security;
  create policy cf_drafts_shared on public.cf_drafts for select to anon using (shared);
  grant select on public.cf_writers, public.cf_novels, public.cf_prizes, public.cf_drafts
    to anon, authenticated, service_role;
  grant insert on public.cf_writers to service_role;

  -- computed relationships (to-many, to-one by ROWS 1, to-one by returning one row)
  create function public.cf_novels_of(w public.cf_writers) returns setof public.cf_novels
    language sql stable as $$ select * from public.cf_novels where writer_id = w.id order by id $$;
  create function public.cf_longest(public.cf_writers) returns setof public.cf_novels rows 1
    language sql stable as $$ select * from public.cf_novels where writer_id = $1.id order by pages desc limit 1 $$;
  create function public.cf_debut(public.cf_writers) returns public.cf_novels
    language sql stable as $$ select * from public.cf_novels where writer_id = $1.id order by id limit 1 $$;
  create function public.cf_writer_of(public.cf_novels) returns public.cf_writers
    language sql stable as $$ select * from public.cf_writers where id = $1.writer_id $$;
  -- same name as the table: overrides the foreign-key relationship cf_writers -> cf_novels
  create function public.cf_novels(public.cf_writers) returns setof public.cf_novels
    language sql stable as $$ select * from public.cf_novels where writer_id = $1.id and pages >= 200 $$;
  -- runs as the request's role: RLS of cf_drafts applies
  create function public.cf_drafts_of(public.cf_writers) returns setof public.cf_drafts
    language sql stable as $$ select * from public.cf_drafts where writer_id = $1.id order by id $$;
  -- EXECUTE only for service_role
  create function public.cf_guarded(public.cf_writers) returns setof public.cf_novels
    language sql stable as $$ select * from public.cf_novels where writer_id = $1.id $$;
  revoke execute on function public.cf_guarded(public.cf_writers) from public, anon, authenticated;
  grant execute on function public.cf_guarded(public.cf_writers) to service_role;
  -- not relationships: no row parameter, or a schema that is not exposed
  create function public.cf_every_novel() returns setof public.cf_novels
    language sql stable as $$ select * from public.cf_novels $$;
  create schema cf_hidden;
  grant usage on schema cf_hidden to anon, authenticated, service_role;
  create function cf_hidden.cf_secret_novels(public.cf_writers) returns setof public.cf_novels
    language sql stable as $$ select * from public.cf_novels $$;

  -- computed fields
  create function public.cf_blurb(public.cf_novels) returns text
    language sql stable as $$ select $1.title || ' (' || $1.pages || 'p)' $$;
  create function public.cf_is_long(n public.cf_novels) returns boolean
    language sql immutable as $$ select n.pages >= 200 $$;
  create function public.cf_tag(public.cf_writers) returns text
    language sql stable as $$ select lower($1.name) || '@' || coalesce($1.country, '--') $$;

  -- functions whose result is a table's rows
  create function public.cf_novels_by(writer text) returns setof public.cf_novels
    language sql stable as $$
      select n.* from public.cf_novels n join public.cf_writers w on w.id = n.writer_id
      where w.name = writer order by n.id $$;
  create function public.cf_writer_named(who text) returns public.cf_writers
    language sql stable as $$ select * from public.cf_writers where name = who $$;
  create function public.cf_add_writer(id int, name text) returns setof public.cf_writers
    language sql volatile as $$ insert into public.cf_writers values (id, name, 'NO') returning * $$;
  notify pgrst, 'reload schema';
`;

const rest = (path, options = {}) => restRequest(cb, path, { as: 'service', ...options });

const ok = (r) => {
  assert.equal(r.error, null, JSON.stringify(r.error));
  return r.data;
};

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(cb.dbUrl, SCHEMA);
    service = serviceClient(cb);
    anon = anonClient(cb);
    await waitForSchema(async () => (await service.from('cf_writers').select('id')).error === null);
    await waitForSchema(async () => (await service.rpc('cf_novels_by', { writer: 'x' })).error === null);
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('computed relationships', () => {
  test('a SETOF function of the row embeds as an array, with an alias', async () => {
    const data = ok(await service.from('cf_writers').select('id, books:cf_novels_of(id, title)').order('id'));
    assert.deepEqual(data, [
      {
        id: 1,
        books: [
          { id: 10, title: 'Tidewater' },
          { id: 11, title: 'Salt Roads' },
          { id: 12, title: 'Harbour Lights' },
        ],
      },
      { id: 2, books: [{ id: 20, title: 'Birch' }] },
      { id: 3, books: [] },
    ]);
    const star = ok(await service.from('cf_writers').select('*, cf_novels_of(*)').eq('id', 2));
    assert.deepEqual(star, [
      { id: 2, name: 'Oskar', country: 'SE', cf_novels_of: [{ id: 20, writer_id: 2, title: 'Birch', pages: 205 }] },
    ]);
  });

  test('ROWS 1 and a single-row result embed as an object; no row is null or an all-null object', async () => {
    const data = ok(
      await service.from('cf_writers').select('id, longest:cf_longest(title), debut:cf_debut(title, pages)').order('id'),
    );
    assert.deepEqual(data, [
      { id: 1, longest: { title: 'Harbour Lights' }, debut: { title: 'Tidewater', pages: 120 } },
      { id: 2, longest: { title: 'Birch' }, debut: { title: 'Birch', pages: 205 } },
      // SETOF ... ROWS 1 with no row: null; a function returning one (null) row: its columns null
      { id: 3, longest: null, debut: { title: null, pages: null } },
    ]);
    const back = ok(await service.from('cf_novels').select('id, cf_writer_of(name)').eq('id', 20));
    assert.deepEqual(back, [{ id: 20, cf_writer_of: { name: 'Oskar' } }]);
  });

  test('filters, order and limit inside the embedded function, and !inner', async () => {
    const data = ok(
      await service
        .from('cf_writers')
        .select('id, books:cf_novels_of(title, pages)')
        .gt('books.pages', 100)
        .order('pages', { referencedTable: 'books', ascending: false })
        .limit(1, { referencedTable: 'books' })
        .order('id'),
    );
    assert.deepEqual(data, [
      { id: 1, books: [{ title: 'Harbour Lights', pages: 310 }] },
      { id: 2, books: [{ title: 'Birch', pages: 205 }] },
      { id: 3, books: [] },
    ]);
    const inner = ok(
      await service.from('cf_writers').select('id, cf_novels_of!inner(title)').eq('cf_novels_of.title', 'Birch'),
    );
    assert.deepEqual(inner, [{ id: 2, cf_novels_of: [{ title: 'Birch' }] }]);
    const innerOne = ok(await service.from('cf_writers').select('id, cf_longest!inner(pages)').order('id'));
    assert.deepEqual(innerOne.map((w) => w.id), [1, 2]);
  });

  test('nested embeds, computed fields inside, spreads and ordering by a to-one function', async () => {
    const nested = ok(
      await service.from('cf_writers').select('name, cf_novels_of(title, cf_blurb, cf_prizes(year))').eq('id', 1),
    );
    assert.deepEqual(nested, [
      {
        name: 'Ines',
        cf_novels_of: [
          { title: 'Tidewater', cf_blurb: 'Tidewater (120p)', cf_prizes: [] },
          { title: 'Salt Roads', cf_blurb: 'Salt Roads (80p)', cf_prizes: [] },
          { title: 'Harbour Lights', cf_blurb: 'Harbour Lights (310p)', cf_prizes: [{ year: 2020 }, { year: 2022 }] },
        ],
      },
    ]);
    const spread = ok(await service.from('cf_writers').select('name, ...cf_longest(top:title)').order('id'));
    assert.deepEqual(spread, [
      { name: 'Ines', top: 'Harbour Lights' },
      { name: 'Oskar', top: 'Birch' },
      { name: 'Wren', top: null },
    ]);
    const ordered = await rest('/cf_writers?select=name,cf_longest(pages)&id=lt.9&order=cf_longest(pages).desc.nullslast');
    assert.equal(ordered.status, 200, ordered.text);
    assert.deepEqual(ordered.json.map((w) => w.name), ['Ines', 'Oskar', 'Wren']);
  });

  test('a function named like a related table overrides that foreign-key relationship', async () => {
    const data = ok(await service.from('cf_writers').select('id, cf_novels(title)').order('id'));
    assert.deepEqual(data, [
      { id: 1, cf_novels: [{ title: 'Harbour Lights' }] },
      { id: 2, cf_novels: [{ title: 'Birch' }] },
      { id: 3, cf_novels: [] },
    ]);
    // the other direction still goes through the foreign key
    const back = ok(await service.from('cf_novels').select('id, cf_writers(name)').eq('id', 11));
    assert.deepEqual(back, [{ id: 11, cf_writers: { name: 'Ines' } }]);
  });

  test('not a relationship: a function without a row parameter, or outside the exposed schemas', async () => {
    for (const fn of ['cf_every_novel', 'cf_secret_novels']) {
      const r = await service.from('cf_writers').select(`id, ${fn}(*)`);
      assert.equal(r.status, 400);
      assert.equal(r.error.code, 'PGRST200');
      assert.equal(
        r.error.details,
        `Searched for a foreign key relationship between 'cf_writers' and '${fn}' in the schema 'public', but no matches were found.`,
      );
    }
  });

  test("the function runs as the request's role: RLS and EXECUTE apply", async () => {
    const mine = ok(await service.from('cf_writers').select('id, cf_drafts_of(body)').eq('id', 1));
    assert.deepEqual(mine[0].cf_drafts_of, [{ body: 'open draft' }, { body: 'secret draft' }]);
    const theirs = ok(await anon.from('cf_writers').select('id, cf_drafts_of(body)').eq('id', 1));
    assert.deepEqual(theirs[0].cf_drafts_of, [{ body: 'open draft' }]);

    const allowed = ok(await service.from('cf_writers').select('id, cf_guarded(id)').eq('id', 2));
    assert.deepEqual(allowed, [{ id: 2, cf_guarded: [{ id: 20 }] }]);
    const denied = await anon.from('cf_writers').select('id, cf_guarded(id)').eq('id', 2);
    assert.equal(denied.status, 401);
    assert.equal(denied.error.code, '42501');
    assert.match(denied.error.message, /permission denied for function cf_guarded/);
  });
});

describe("embedding on an RPC's result", () => {
  test('POST and GET of a SETOF function embed through the foreign keys of its table', async () => {
    const post = ok(await service.rpc('cf_novels_by', { writer: 'Ines' }).select('title, cf_writers(name)').gt('pages', 100));
    assert.deepEqual(post, [
      { title: 'Tidewater', cf_writers: { name: 'Ines' } },
      { title: 'Harbour Lights', cf_writers: { name: 'Ines' } },
    ]);
    const get = ok(
      await service
        .rpc('cf_novels_by', { writer: 'Ines' }, { get: true })
        .select('id, cf_prizes(year)')
        .order('id', { ascending: false })
        .limit(1),
    );
    assert.deepEqual(get, [{ id: 12, cf_prizes: [{ year: 2020 }, { year: 2022 }] }]);
    const raw = await rest('/rpc/cf_novels_by?writer=Oskar&select=id,cf_writers!inner(name)&cf_writers.name=eq.Ines');
    assert.equal(raw.status, 200, raw.text);
    assert.deepEqual(raw.json, []);
  });

  test('a function returning one row embeds computed relationships and foreign keys', async () => {
    const data = ok(
      await service
        .rpc('cf_writer_named', { who: 'Ines' })
        .select('name, longest:cf_longest(title), cf_novels_of(id), cf_drafts(id)'),
    );
    assert.deepEqual(data, {
      name: 'Ines',
      longest: { title: 'Harbour Lights' },
      cf_novels_of: [{ id: 10 }, { id: 11 }, { id: 12 }],
      cf_drafts: [{ id: 1 }, { id: 2 }],
    });
  });

  test('with an exact count, and on a volatile function', async () => {
    const counted = await service
      .rpc('cf_novels_by', { writer: 'Ines' }, { count: 'exact' })
      .select('id, cf_writers(name), cf_blurb')
      .range(0, 0);
    assert.equal(counted.error, null, JSON.stringify(counted.error));
    assert.equal(counted.count, 3);
    assert.deepEqual(counted.data, [{ id: 10, cf_writers: { name: 'Ines' }, cf_blurb: 'Tidewater (120p)' }]);
    const added = ok(await service.rpc('cf_add_writer', { id: 9, name: 'Yara' }).select('name, cf_tag, cf_novels_of(id)'));
    assert.deepEqual(added, [{ name: 'Yara', cf_tag: 'yara@NO', cf_novels_of: [] }]);
  });
});

describe('computed fields', () => {
  test('selected, filtered and ordered like a column', async () => {
    const data = ok(
      await service.from('cf_novels').select('id, cf_blurb, long:cf_is_long').eq('cf_is_long', true).order('cf_blurb'),
    );
    assert.deepEqual(data, [
      { id: 20, cf_blurb: 'Birch (205p)', long: true },
      { id: 12, cf_blurb: 'Harbour Lights (310p)', long: true },
    ]);
    const like = ok(await service.from('cf_novels').select('id').like('cf_blurb', '*Roads*'));
    assert.deepEqual(like, [{ id: 11 }]);
    const ordered = ok(
      await service.from('cf_writers').select('cf_tag').lt('id', 9).order('cf_tag', { ascending: false }),
    );
    assert.deepEqual(ordered.map((w) => w.cf_tag), ['wren@--', 'oskar@SE', 'ines@PT']);
    const cast = ok(await service.from('cf_novels').select('id, label:cf_blurb::text').eq('id', 10));
    assert.deepEqual(cast, [{ id: 10, label: 'Tidewater (120p)' }]);
    const orFilter = ok(await service.from('cf_novels').select('id').or('cf_is_long.is.false,id.eq.20').order('id'));
    assert.deepEqual(orFilter.map((n) => n.id), [10, 11, 20]);
  });

  test("on an RPC's result whose type is the table", async () => {
    const data = ok(
      await service
        .rpc('cf_novels_by', { writer: 'Ines' })
        .select('title, cf_blurb')
        .eq('cf_is_long', false)
        .order('cf_blurb', { ascending: false }),
    );
    assert.deepEqual(data, [
      { title: 'Tidewater', cf_blurb: 'Tidewater (120p)' },
      { title: 'Salt Roads', cf_blurb: 'Salt Roads (80p)' },
    ]);
  });

  test('in the representation of a write', async () => {
    const data = ok(
      await service.from('cf_writers').insert({ id: 50, name: 'Zed', country: 'NZ' }).select('id, cf_tag, cf_novels_of(id)'),
    );
    assert.deepEqual(data, [{ id: 50, cf_tag: 'zed@NZ', cf_novels_of: [] }]);
  });

  test('a name that is neither a column nor a computed field is still 42703', async () => {
    const r = await service.from('cf_novels').select('id, cf_nothing');
    assert.equal(r.status, 400);
    assert.equal(r.error.code, '42703');
    // a function of another table's row is not a field of this one
    const other = await service.from('cf_writers').select('id, cf_blurb');
    assert.equal(other.status, 400);
    assert.equal(other.error.code, '42703');
  });
});
