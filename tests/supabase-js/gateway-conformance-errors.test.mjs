// PostgREST's exact error bodies for missing functions (PGRST202), missing and ambiguous
// relationships (PGRST200, PGRST201) and unknown columns of an embed (42703, named by the alias
// PostgREST gives the embedded table), and how an embed name picks its relationship: a
// self-referencing table, a `!hint` by constraint or column, a foreign key column as the name.
// One craftbase for the file, with tables of its own.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { pgQuery, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';

let cb;
let db;

/** The error and status supabase-js hands back, for exact comparison. */
function failure(res) {
  return { status: res.status, error: res.error && { ...res.error } };
}

before(
  async () => {
    cb = await startCraftbase();
    await pgQuery(
      cb.dbUrl,
      `create table public.ce_members (handle text primary key, display text);
       create table public.ce_notes (
         id int primary key,
         author text references public.ce_members (handle),
         body text);
       create table public.ce_pairs (
         id int primary key,
         lead text not null constraint ce_pairs_lead_fkey references public.ce_members (handle),
         partner text constraint ce_pairs_partner_fkey references public.ce_members (handle));
       create table public.ce_profiles (id int primary key, handle text references public.ce_members);
       create view public.ce_named_members as select * from public.ce_members where display is not null;
       create table public.ce_folders (
         id int primary key,
         parent_id int references public.ce_folders (id),
         title text);
       create table public.ce_tags (id int primary key, label text);
       create table public.ce_folder_tags (
         folder_id int references public.ce_folders, tag_id int references public.ce_tags,
         primary key (folder_id, tag_id));
       create table public.ce_folder_pins (
         folder_id int references public.ce_folders, tag_id int references public.ce_tags,
         primary key (folder_id, tag_id));
       insert into public.ce_members values ('kit', 'Kit Marlowe'), ('ada', 'Ada L.'), ('rob', 'Rob H.');
       insert into public.ce_notes values (1, 'kit', 'first draft'), (2, 'ada', 'margin note'), (3, 'kit', 'errata');
       insert into public.ce_profiles values (1, 'ada');
       insert into public.ce_pairs values (1, 'kit', 'ada'), (2, 'rob', null);
       insert into public.ce_folders values (1, null, 'drawer'), (2, 1, 'letters'), (3, 1, 'bills'), (4, 2, 'old letters');
       insert into public.ce_tags values (1, 'urgent'), (2, 'paid');
       insert into public.ce_folder_tags values (3, 2);
       insert into public.ce_folder_pins values (3, 1);
       create function public.ce_add_points(note_id int, amount int) returns int
         language sql immutable as $$ select note_id + amount $$;
       create function public.ce_greet(visitor text) returns text
         language sql immutable as $$ select 'hello ' || visitor $$;
       notify pgrst, 'reload schema';`,
    );
    db = serviceClient(cb);
    await waitForSchema(async () => (await db.rpc('ce_greet', { visitor: 'x' })).status === 200);
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('PGRST202: a function that is not there', () => {
  test('a misspelt name: the closest function of the schema as the hint', async () => {
    const res = await db.rpc('ce_add_pointz', { note_id: 1, amount: 2 });
    assert.deepEqual(failure(res), {
      status: 404,
      error: {
        code: 'PGRST202',
        message: 'Could not find the function public.ce_add_pointz(amount, note_id) in the schema cache',
        details:
          'Searched for the function public.ce_add_pointz with parameters amount, note_id or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.',
        hint: 'Perhaps you meant to call the function public.ce_add_points',
      },
    });
  });

  test('a misspelt argument: the closest parameter list of its overloads as the hint', async () => {
    let res = await db.rpc('ce_greet', { visiter: 'x' });
    assert.deepEqual(failure(res), {
      status: 404,
      error: {
        code: 'PGRST202',
        message: 'Could not find the function public.ce_greet(visiter) in the schema cache',
        details:
          'Searched for the function public.ce_greet with parameter visiter or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.',
        hint: 'Perhaps you meant to call the function public.ce_greet(visitor)',
      },
    });
    res = await db.rpc('ce_add_points', { note: 1, amount: 2 });
    assert.equal(res.error.message, 'Could not find the function public.ce_add_points(amount, note) in the schema cache');
    assert.equal(res.error.hint, 'Perhaps you meant to call the function public.ce_add_points(amount, note_id)');
  });

  test('GET without arguments: no single-json-parameter clause, and nothing close enough to hint', async () => {
    const res = await db.rpc('ce_greet', undefined, { get: true });
    assert.deepEqual(failure(res), {
      status: 404,
      error: {
        code: 'PGRST202',
        message: 'Could not find the function public.ce_greet without parameters in the schema cache',
        details: 'Searched for the function public.ce_greet without parameters, but no matches were found in the schema cache.',
        hint: null,
      },
    });
  });
});

describe('PGRST200: no relationship', () => {
  test('details name both tables and the schema; a close related table is the hint', async () => {
    let res = await db.from('ce_notes').select('id, ce_member(*)');
    assert.deepEqual(failure(res), {
      status: 400,
      error: {
        code: 'PGRST200',
        message: "Could not find a relationship between 'ce_notes' and 'ce_member' in the schema cache",
        details:
          "Searched for a foreign key relationship between 'ce_notes' and 'ce_member' in the schema 'public', but no matches were found.",
        hint: "Perhaps you meant 'ce_members' instead of 'ce_member'.",
      },
    });
    res = await db.from('ce_notes').select('id, ce_pairs(*)');
    assert.equal(res.error.hint, "Perhaps you meant 'ce_members' instead of 'ce_pairs'.");
    res = await db.from('ce_notes').select('id, zz_widgets(*)');
    assert.equal(res.error.code, 'PGRST200');
    assert.equal(res.error.hint, null, 'nothing close among the tables ce_notes relates to');
  });

  test('a hint that matches nothing is named in the details', async () => {
    const res = await db.from('ce_notes').select('id, ce_members!nope(*)');
    assert.deepEqual(failure(res), {
      status: 400,
      error: {
        code: 'PGRST200',
        message: "Could not find a relationship between 'ce_notes' and 'ce_members' in the schema cache",
        details:
          "Searched for a foreign key relationship between 'ce_notes' and 'ce_members' using the hint 'nope' in the schema 'public', but no matches were found.",
        hint: null,
      },
    });
  });
});

describe('PGRST201: more than one relationship', () => {
  test('many-to-one: details list each key, the hint each `!constraint`', async () => {
    const res = await db.from('ce_pairs').select('id, ce_members(*)');
    assert.deepEqual(failure(res), {
      status: 300,
      error: {
        code: 'PGRST201',
        message: "Could not embed because more than one relationship was found for 'ce_pairs' and 'ce_members'",
        details: [
          {
            cardinality: 'many-to-one',
            embedding: 'ce_pairs with ce_members',
            relationship: 'ce_pairs_lead_fkey using ce_pairs(lead) and ce_members(handle)',
          },
          {
            cardinality: 'many-to-one',
            embedding: 'ce_pairs with ce_members',
            relationship: 'ce_pairs_partner_fkey using ce_pairs(partner) and ce_members(handle)',
          },
        ],
        hint: "Try changing 'ce_members' to one of the following: 'ce_members!ce_pairs_lead_fkey', 'ce_members!ce_pairs_partner_fkey'. Find the desired relationship in the 'details' key.",
      },
    });
  });

  test('one-to-many seen from the referenced table', async () => {
    const res = await db.from('ce_members').select('handle, ce_pairs(id)');
    assert.equal(res.status, 300);
    assert.deepEqual(res.error.details, [
      {
        cardinality: 'one-to-many',
        embedding: 'ce_members with ce_pairs',
        relationship: 'ce_pairs_lead_fkey using ce_members(handle) and ce_pairs(lead)',
      },
      {
        cardinality: 'one-to-many',
        embedding: 'ce_members with ce_pairs',
        relationship: 'ce_pairs_partner_fkey using ce_members(handle) and ce_pairs(partner)',
      },
    ]);
    assert.equal(
      res.error.hint,
      "Try changing 'ce_pairs' to one of the following: 'ce_pairs!ce_pairs_lead_fkey', 'ce_pairs!ce_pairs_partner_fkey'. Find the desired relationship in the 'details' key.",
    );
  });
});

describe('PGRST201 through junction tables', () => {
  test('many-to-many: each junction with its two keys; `!junction` picks one', async () => {
    let res = await db.from('ce_folders').select('id, ce_tags(label)');
    assert.deepEqual(failure(res), {
      status: 300,
      error: {
        code: 'PGRST201',
        message: "Could not embed because more than one relationship was found for 'ce_folders' and 'ce_tags'",
        details: [
          {
            cardinality: 'many-to-many',
            embedding: 'ce_folders with ce_tags',
            relationship: 'ce_folder_pins using ce_folder_pins_folder_id_fkey(folder_id) and ce_folder_pins_tag_id_fkey(tag_id)',
          },
          {
            cardinality: 'many-to-many',
            embedding: 'ce_folders with ce_tags',
            relationship: 'ce_folder_tags using ce_folder_tags_folder_id_fkey(folder_id) and ce_folder_tags_tag_id_fkey(tag_id)',
          },
        ],
        hint: "Try changing 'ce_tags' to one of the following: 'ce_tags!ce_folder_pins', 'ce_tags!ce_folder_tags'. Find the desired relationship in the 'details' key.",
      },
    });
    res = await db.from('ce_folders').select('id, ce_tags!ce_folder_tags(label)').eq('id', 3).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { id: 3, ce_tags: [{ label: 'paid' }] });
  });
});

describe('42703 inside an embed names the alias PostgREST gives it', () => {
  test('depth 1 is `table_1`, depth 2 `table_2`, the top level the bare table', async () => {
    let res = await db.from('ce_members').select('handle, ce_notes(total)');
    assert.deepEqual(failure(res), {
      status: 400,
      error: { code: '42703', message: 'column ce_notes_1.total does not exist', details: null, hint: null },
    });
    res = await db.from('ce_members').select('handle, ce_notes(id, ce_members(nick))');
    assert.equal(res.error.message, 'column ce_members_2.nick does not exist');
    res = await db.from('ce_members').select('nick');
    assert.equal(res.error.message, 'column ce_members.nick does not exist');
  });
});

describe('which relationship an embed name means', () => {
  test('self-reference: the table name is the children, the key column the parent', async () => {
    let res = await db.from('ce_folders').select('id, ce_folders(id, title)').eq('id', 1).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, {
      id: 1,
      ce_folders: [
        { id: 2, title: 'letters' },
        { id: 3, title: 'bills' },
      ],
    });
    res = await db.from('ce_folders').select('id, parent_id(id, title)').eq('id', 4).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { id: 4, parent_id: { id: 2, title: 'letters' } });
  });

  test('self-reference: `!column` picks the children; `!constraint` matches nothing, as in PostgREST', async () => {
    let res = await db.from('ce_folders').select('id, kids:ce_folders!parent_id(id)').eq('id', 2).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { id: 2, kids: [{ id: 4 }] });
    res = await db.from('ce_folders').select('*, ce_folders!ce_folders_parent_id_fkey(*)');
    assert.deepEqual(failure(res), {
      status: 400,
      error: {
        code: 'PGRST200',
        message: "Could not find a relationship between 'ce_folders' and 'ce_folders' in the schema cache",
        details:
          "Searched for a foreign key relationship between 'ce_folders' and 'ce_folders' using the hint 'ce_folders_parent_id_fkey' in the schema 'public', but no matches were found.",
        hint: null,
      },
    });
  });

  test('a hint by constraint name or by either column settles an ambiguous embed', async () => {
    let res = await db
      .from('ce_pairs')
      .select('id, lead:ce_members!ce_pairs_lead_fkey(display), partner:ce_members!partner(display)')
      .order('id');
    assert.equal(res.error, null);
    assert.deepEqual(res.data, [
      { id: 1, lead: { display: 'Kit Marlowe' }, partner: { display: 'Ada L.' } },
      { id: 2, lead: { display: 'Rob H.' }, partner: null },
    ]);
    res = await db.from('ce_members').select('handle, led:ce_pairs!lead(id)').eq('handle', 'rob').single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { handle: 'rob', led: [{ id: 2 }] });
  });

  test("the foreign key column's name, or the constraint's, as the embed", async () => {
    let res = await db.from('ce_notes').select('id, author(display)').eq('id', 2).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { id: 2, author: { display: 'Ada L.' } });
    res = await db.from('ce_notes').select('id, ce_notes_author_fkey(handle)').eq('id', 3).single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { id: 3, ce_notes_author_fkey: { handle: 'kit' } });
    // The key column has the referenced column's name: still the parent, under that name. The
    // view over ce_members keeps the key, but a column or constraint name never means a view.
    res = await db.from('ce_profiles').select('handle(*)').single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { handle: { handle: 'ada', display: 'Ada L.' } });
    res = await db.from('ce_profiles').select('member:handle(display), ce_named_members(display)').single();
    assert.equal(res.error, null);
    assert.deepEqual(res.data, { member: { display: 'Ada L.' }, ce_named_members: { display: 'Ada L.' } });
  });
});
