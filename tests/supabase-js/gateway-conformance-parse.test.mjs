// REST conformance (issue 11), the parsing and output part, driven by supabase-js: logic trees
// holding array literals, empty embeds, an embed named twice, CSV as PostgREST writes it, and a
// second exposed schema that PostgreSQL does not answer with `permission denied` on every
// request. One craftbase for the file, with its own tables.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import { createClient, pgQuery, serviceClient, startCraftbase, waitForSchema } from './lib/craftbase.mjs';

let cb;
let service;
let ledger;

/** Every `postgres.log` under the data directory (the embedded cluster's server log). */
async function serverLogs(dir) {
  const found = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await serverLogs(full)));
    else if (entry.name === 'postgres.log') found.push(full);
  }
  return found;
}

/** How many times the server log says `permission denied for schema ledger`. */
async function schemaDenials() {
  const logs = await serverLogs(cb.dataDir);
  assert.ok(logs.length > 0, `no postgres.log under ${cb.dataDir}`);
  let n = 0;
  for (const log of logs) {
    const text = await fs.readFile(log, 'utf8');
    n += text.split('permission denied for schema ledger').length - 1;
  }
  return n;
}

before(
  async () => {
    cb = await startCraftbase({ env: { PGRST_DB_SCHEMAS: 'public,ledger' } });
    await pgQuery(
      cb.dbUrl,
      `create table public.cp_owners (id int primary key, name text not null);
       create table public.cp_tickets (
         id int primary key,
         owner_id int references public.cp_owners(id),
         title text,
         labels text[],
         extra jsonb,
         done boolean
       );
       insert into public.cp_owners values (1, 'Ada'), (2, 'Brian');
       insert into public.cp_tickets values
         (1, 1, 'plain', '{is:open,priority:high}', null, false),
         (2, 2, 'Smith, Jane', '{is:closed}', '{"k": "v, w"}', true),
         (3, null, 'say "hi"', '{}', '[1, 2]', null),
         (4, 1, E'two\\nlines', '{is:open,priority:high}', null, true),
         (5, 2, '', null, null, false);
       grant select on public.cp_owners, public.cp_tickets to anon, authenticated, service_role;
       create function public.cp_titles() returns setof text language sql stable
         as $$ select title from public.cp_tickets where id <= 2 order by id $$;
       create function public.cp_total() returns int language sql stable
         as $$ select count(*)::int from public.cp_tickets $$;
       -- A second exposed schema, usable by the API roles but not by the role the gateway
       -- connects as: PostgREST needs no more.
       create schema ledger;
       grant usage on schema ledger to anon, authenticated, service_role;
       create table ledger.entries (id int primary key, memo text);
       insert into ledger.entries values (1, 'first'), (2, 'second');
       grant select on ledger.entries to anon, authenticated, service_role;
       notify pgrst, 'reload schema';`,
    );
    service = serviceClient(cb);
    ledger = createClient(cb.url, cb.serviceRoleKey, { db: { schema: 'ledger' } });
    await waitForSchema(async () => {
      const a = await service.from('cp_tickets').select('id').limit(1);
      const b = await ledger.from('entries').select('id').limit(1);
      const c = await service.rpc('cp_total');
      return a.error === null && b.error === null && c.error === null;
    });
  },
  { timeout: 180_000 },
);

after(
  async () => {
    if (cb) await cb.stop();
  },
  { timeout: 60_000 },
);

describe('logic trees', () => {
  test('an array literal with commas is one value inside or=(...)', async () => {
    const r = await service
      .from('cp_tickets')
      .select('id')
      .or('id.in.(1,4),labels.cs.{is:closed}')
      .order('id');
    assert.equal(r.error, null);
    assert.deepEqual(r.data, [{ id: 1 }, { id: 2 }, { id: 4 }]);
    const s = await service
      .from('cp_tickets')
      .select('id')
      .or('id.in.(3,5),labels.cs.{is:open,priority:high}')
      .order('id');
    assert.equal(s.error, null, JSON.stringify(s.error));
    assert.deepEqual(s.data, [{ id: 1 }, { id: 3 }, { id: 4 }, { id: 5 }]);
  });

  test('commas in quotes and in nested and(...) with arrays do not split either', async () => {
    const r = await service
      .from('cp_tickets')
      .select('id')
      .or('title.eq."Smith, Jane",and(labels.ov.{is:open,x},done.is.true)')
      .order('id');
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.deepEqual(r.data, [{ id: 2 }, { id: 4 }]);
  });

  test('an unclosed array literal is still a 400 PGRST100', async () => {
    const r = await service.from('cp_tickets').select('id').or('labels.cs.{a,b');
    assert.equal(r.status, 400);
    assert.equal(r.error.code, 'PGRST100');
  });
});

describe('embeds', () => {
  test('an empty embed filters with !inner and adds nothing to the body', async () => {
    const r = await service
      .from('cp_tickets')
      .select('id, cp_owners!inner()')
      .eq('cp_owners.name', 'Ada')
      .order('id');
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.deepEqual(r.data, [{ id: 1 }, { id: 4 }]);
    // Without !inner it joins nothing away and still adds no key.
    const all = await service.from('cp_tickets').select('id, cp_owners()').order('id');
    assert.equal(all.error, null);
    assert.deepEqual(all.data, [1, 2, 3, 4, 5].map((id) => ({ id })));
  });

  test('the same embed twice is PostgreSQL 42712, as PostgREST answers', async () => {
    const r = await service.from('cp_tickets').select('id, cp_owners(id), cp_owners(name)');
    assert.equal(r.status, 400);
    assert.deepEqual(r.error, {
      code: '42712',
      details: null,
      hint: null,
      message: 'table name "cp_tickets_cp_owners_1" specified more than once',
    });
    // Aliases tell them apart.
    const ok = await service.from('cp_tickets').select('id, a:cp_owners(id), b:cp_owners(name)').eq('id', 1).single();
    assert.equal(ok.error, null);
    assert.deepEqual(ok.data, { id: 1, a: { id: 1 }, b: { name: 'Ada' } });
  });
});

describe('csv', () => {
  test('values are quoted as PostgreSQL writes a record, NULL is empty, header first', async () => {
    const r = await service.from('cp_tickets').select('id, title, labels, extra, done, owner_id').order('id').csv();
    assert.equal(r.error, null);
    assert.equal(
      r.data,
      [
        'id,title,labels,extra,done,owner_id',
        '1,plain,"{is:open,priority:high}",,f,1',
        '2,"Smith, Jane",{is:closed},"{""k"": ""v, w""}",t,2',
        '3,"say ""hi""",{},"[1, 2]",,',
        '4,"two\nlines","{is:open,priority:high}",,t,1',
        '5,"",,,f,2',
      ].join('\n'),
    );
  });

  test('a function returning scalars answers pgrst_scalar rows, one value or a set', async () => {
    let r = await service.rpc('cp_titles').csv();
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.equal(r.data, 'pgrst_scalar\nplain\n"Smith, Jane"');
    r = await service.rpc('cp_total').csv();
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.equal(r.data, 'pgrst_scalar\n5');
  });

  test('no rows is an empty header line', async () => {
    const r = await service.from('cp_tickets').select('id, title').eq('id', 99).csv();
    assert.equal(r.error, null);
    assert.equal(r.data, '\n');
  });
});

describe('a second exposed schema', () => {
  test('requests to it do not make PostgreSQL log permission denied for schema', async () => {
    const before = await schemaDenials();
    for (let i = 0; i < 5; i++) {
      const r = await ledger.from('entries').select('id, memo').eq('id', (i % 2) + 1);
      assert.equal(r.error, null);
      assert.equal(r.data.length, 1);
    }
    // The server log is written asynchronously; give it a moment before reading.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await schemaDenials()) - before, 0);
  });
});
