// Storage (/storage/v1) through @supabase/supabase-js's storage client: buckets, uploads
// (multipart and raw, streamed), downloads (authenticated, public, signed; ranges, ETags,
// disposition), listing, move/copy, remove, info, signed URLs, and RLS on storage.objects
// deciding as in Supabase. One craftbase with a 5 MiB global file size limit.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import { anonClient, createClient, mintJwt, nowSeconds, pgQuery, serviceClient, startCraftbase, withPg } from './lib/craftbase.mjs';

const LIMIT = 5 * 1024 * 1024;
let cb;
let admin;

/** A client acting as a signed-in user `sub` (its token in Authorization, as after sign-in). */
function userClient(sub) {
  const token = mintJwt(cb.jwtSecret, {
    sub,
    role: 'authenticated',
    aud: 'authenticated',
    iat: nowSeconds(),
    exp: nowSeconds() + 3600,
  });
  return createClient(cb.url, cb.anonKey, { global: { headers: { Authorization: `Bearer ${token}` } } });
}

const text = (s) => new Blob([s], { type: 'text/plain' });
const bucketName = (tag) => `${tag}-${randomUUID().slice(0, 8)}`;

async function newBucket(options = { public: false }) {
  const id = bucketName('b');
  const { error } = await admin.storage.createBucket(id, options);
  assert.equal(error, null);
  return id;
}

before(async () => {
  cb = await startCraftbase({ projectDir: null, env: { FILE_SIZE_LIMIT: String(LIMIT) } });
  admin = serviceClient(cb);
});

after(async () => {
  await cb?.stop();
});

describe('buckets', () => {
  test('create, get, list, update, empty and delete', async () => {
    const id = bucketName('photos');
    const created = await admin.storage.createBucket(id, {
      public: false,
      fileSizeLimit: '1MB',
      allowedMimeTypes: ['image/*', 'text/plain'],
    });
    assert.equal(created.error, null);
    assert.deepEqual(created.data, { name: id });

    const got = await admin.storage.getBucket(id);
    assert.equal(got.error, null);
    assert.equal(got.data.id, id);
    assert.equal(got.data.public, false);
    assert.equal(got.data.file_size_limit, 1024 * 1024);
    assert.deepEqual(got.data.allowed_mime_types, ['image/*', 'text/plain']);

    const listed = await admin.storage.listBuckets();
    assert.equal(listed.error, null);
    assert.ok(listed.data.some((b) => b.id === id));

    const updated = await admin.storage.updateBucket(id, { public: true, fileSizeLimit: 2048, allowedMimeTypes: null });
    assert.equal(updated.error, null);
    assert.deepEqual(updated.data, { message: 'Successfully updated' });
    const after = (await admin.storage.getBucket(id)).data;
    assert.equal(after.public, true);
    assert.equal(after.file_size_limit, 2048);
    assert.equal(after.allowed_mime_types, null);

    assert.equal((await admin.storage.from(id).upload('a.txt', text('a'))).error, null);
    const notEmpty = await admin.storage.deleteBucket(id);
    assert.equal(notEmpty.error.status, 400);
    assert.equal(notEmpty.error.statusCode, '409');
    assert.equal(notEmpty.error.message, 'The bucket you tried to delete is not empty');

    const emptied = await admin.storage.emptyBucket(id);
    assert.deepEqual(emptied.data, { message: 'Successfully emptied' });
    const deleted = await admin.storage.deleteBucket(id);
    assert.deepEqual(deleted.data, { message: 'Successfully deleted' });

    const gone = await admin.storage.getBucket(id);
    assert.equal(gone.error.statusCode, '404');
    assert.equal(gone.error.message, 'Bucket not found');
  });

  test('listBuckets: search, sort, limit and offset', async () => {
    const tag = randomUUID().slice(0, 6);
    for (const n of ['c', 'a', 'b']) {
      assert.equal((await admin.storage.createBucket(`sort-${tag}-${n}`)).error, null);
    }
    const names = async (options) => (await admin.storage.listBuckets(options)).data.map((b) => b.name);
    assert.deepEqual(await names({ search: tag }), [`sort-${tag}-a`, `sort-${tag}-b`, `sort-${tag}-c`]);
    assert.deepEqual(await names({ search: tag, sortColumn: 'name', sortOrder: 'desc' }), [`sort-${tag}-c`, `sort-${tag}-b`, `sort-${tag}-a`]);
    assert.deepEqual(await names({ search: tag, limit: 1, offset: 1 }), [`sort-${tag}-b`]);
  });

  test('a duplicate bucket and a bad name are refused', async () => {
    const id = await newBucket();
    const dup = await admin.storage.createBucket(id);
    assert.equal(dup.error.statusCode, '409');
    assert.equal(dup.error.message, 'The resource already exists');
    const bad = await admin.storage.createBucket('a/b');
    assert.equal(bad.error.statusCode, '400');
    assert.equal(bad.error.message, 'Bucket name invalid');
  });

  test('MIME types with wildcards and the bucket size limit are enforced', async () => {
    const id = await newBucket({ public: false, allowedMimeTypes: ['image/*'], fileSizeLimit: 10 });
    const png = await admin.storage.from(id).upload('p.png', new Blob(['12345'], { type: 'image/png' }));
    assert.equal(png.error, null);
    const txt = await admin.storage.from(id).upload('t.txt', text('hi'));
    assert.equal(txt.error.statusCode, '415');
    assert.equal(txt.error.message, 'mime type text/plain is not supported');
    const big = await admin.storage.from(id).upload('big.png', new Blob(['x'.repeat(11)], { type: 'image/png' }));
    assert.equal(big.error.statusCode, '413');
    assert.equal(big.error.message, 'The object exceeded the maximum allowed size');
    const raw = await admin.storage.from(id).upload('raw.png', Buffer.alloc(11), { contentType: 'image/png' });
    assert.equal(raw.error.statusCode, '413');
  });

  test('anon and authenticated see no bucket without a policy (RLS on, none written)', async () => {
    await newBucket();
    const anon = await anonClient(cb).storage.listBuckets();
    assert.equal(anon.error, null);
    assert.deepEqual(anon.data, []);
    const user = await userClient(randomUUID()).storage.listBuckets();
    assert.deepEqual(user.data, []);
    const create = await userClient(randomUUID()).storage.createBucket(bucketName('mine'));
    assert.equal(create.error.status, 400);
    assert.equal(create.error.statusCode, '403');
    assert.equal(create.error.message, 'new row violates row-level security policy');
  });
});

describe('objects', () => {
  let bucket;
  before(async () => {
    bucket = await newBucket();
  });

  test('upload multipart and raw, upsert, update, download, info and exists', async () => {
    const files = admin.storage.from(bucket);
    const up = await files.upload('docs/a.txt', text('hello'), { cacheControl: '60', metadata: { owner: 'me' } });
    assert.equal(up.error, null);
    assert.equal(up.data.path, 'docs/a.txt');
    assert.equal(up.data.fullPath, `${bucket}/docs/a.txt`);
    assert.match(up.data.id, /^[0-9a-f-]{36}$/);

    const dup = await files.upload('docs/a.txt', text('again'));
    assert.equal(dup.error.statusCode, '409');
    assert.equal(dup.error.message, 'The resource already exists');

    const upsert = await files.upload('docs/a.txt', text('hello, again'), { upsert: true, cacheControl: '120' });
    assert.equal(upsert.error, null);

    const raw = await files.upload('docs/b.bin', Buffer.from([1, 2, 3, 4]), { contentType: 'application/x-test', metadata: { k: 1 } });
    assert.equal(raw.error, null);

    const down = await files.download('docs/a.txt');
    assert.equal(down.error, null);
    assert.equal(await down.data.text(), 'hello, again');

    const info = await files.info('docs/a.txt');
    assert.equal(info.error, null);
    assert.equal(info.data.size, 12);
    assert.equal(info.data.contentType, 'text/plain');
    assert.equal(info.data.cacheControl, 'max-age=120');
    assert.equal(info.data.bucketId, bucket);
    assert.ok(info.data.etag);

    const rawInfo = await files.info('docs/b.bin');
    assert.equal(rawInfo.data.contentType, 'application/x-test');
    assert.deepEqual(rawInfo.data.metadata, { k: 1 });

    const updated = await files.update('docs/b.bin', Buffer.from('replaced'), { contentType: 'text/plain' });
    assert.equal(updated.error, null);
    assert.equal(await (await files.download('docs/b.bin')).data.text(), 'replaced');

    assert.deepEqual(await files.exists('docs/a.txt'), { data: true, error: null });
    assert.equal((await files.exists('docs/none.txt')).data, false);

    const missing = await files.download('docs/none.txt');
    assert.equal(missing.error.status, 400);
    const missingInfo = await files.info('docs/none.txt');
    assert.equal(missingInfo.error.statusCode, '404');
    assert.equal(missingInfo.error.message, 'Object not found');
  });

  test('Range, ETag / If-None-Match and the download disposition', async () => {
    const files = admin.storage.from(bucket);
    await files.upload('range.txt', text('0123456789'));
    const url = `${cb.url}/storage/v1/object/${bucket}/range.txt`;
    const auth = { apikey: cb.serviceRoleKey, authorization: `Bearer ${cb.serviceRoleKey}` };
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=2-4' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 2-4/10');
    assert.equal(await part.text(), '234');
    const whole = await fetch(url, { headers: auth });
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'text/plain');
    assert.equal(whole.headers.get('content-length'), '10');
    const etag = whole.headers.get('etag');
    assert.ok(etag);
    await whole.arrayBuffer();
    const again = await fetch(url, { headers: { ...auth, 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const bad = await fetch(url, { headers: { ...auth, range: 'bytes=50-60' } });
    assert.equal(bad.status, 416);
    const disposition = await fetch(`${url}?download=report.txt`, { headers: auth });
    assert.equal(disposition.headers.get('content-disposition'), 'attachment; filename=report.txt');
    await disposition.arrayBuffer();
  });

  test('the ETag is the MD5 of the bytes (as S3 and storage-api): equal bytes, equal ETags', async () => {
    const files = admin.storage.from(bucket);
    const md5 = (s) => `"${createHash('md5').update(s).digest('hex')}"`;
    const auth = { apikey: cb.serviceRoleKey, authorization: `Bearer ${cb.serviceRoleKey}` };
    assert.equal((await files.upload('md5/a.txt', text('hello'))).error, null);
    assert.equal((await files.upload('md5/b.txt', Buffer.from('hello'), { contentType: 'text/plain' })).error, null);
    for (const name of ['md5/a.txt', 'md5/b.txt']) {
      const res = await fetch(`${cb.url}/storage/v1/object/${bucket}/${name}`, { headers: auth });
      assert.equal(res.headers.get('etag'), md5('hello'), name);
      await res.arrayBuffer();
      assert.equal((await files.info(name)).data.etag, md5('hello'));
    }
    assert.equal((await files.copy('md5/a.txt', 'md5/c.txt')).error, null);
    assert.equal((await files.info('md5/c.txt')).data.etag, md5('hello'));
    assert.equal((await files.update('md5/a.txt', text('changed'))).error, null);
    const changed = await fetch(`${cb.url}/storage/v1/object/${bucket}/md5/a.txt`, {
      headers: { ...auth, 'if-none-match': md5('hello') },
    });
    assert.equal(changed.status, 200, 'new bytes, new ETag');
    assert.equal(changed.headers.get('etag'), md5('changed'));
    await changed.arrayBuffer();
  });

  test('list: folders, prefix, limit, offset, sortBy and search', async () => {
    const files = admin.storage.from(bucket);
    for (const name of ['l/x/1.txt', 'l/x/2.txt', 'l/y.txt', 'l/z.txt', 'l/w/deep/3.txt']) {
      assert.equal((await files.upload(name, text(name))).error, null);
    }
    const top = await files.list('l');
    assert.equal(top.error, null);
    assert.deepEqual(top.data.map((e) => e.name), ['w', 'x', 'y.txt', 'z.txt']);
    assert.equal(top.data[0].id, null);
    assert.ok(top.data[2].id);
    assert.equal(top.data[2].metadata.size, 7);

    const page = await files.list('l', { limit: 2, offset: 1 });
    assert.deepEqual(page.data.map((e) => e.name), ['x', 'y.txt']);
    const desc = await files.list('l', { sortBy: { column: 'name', order: 'desc' } });
    assert.deepEqual(desc.data.map((e) => e.name), ['x', 'w', 'z.txt', 'y.txt']);
    const searched = await files.list('l', { search: 'z' });
    assert.deepEqual(searched.data.map((e) => e.name), ['z.txt']);
    const inner = await files.list('l/x');
    assert.deepEqual(inner.data.map((e) => e.name), ['1.txt', '2.txt']);
    const root = await files.list();
    assert.ok(root.data.some((e) => e.name === 'l' && e.id === null));
  });

  test('listV2: full keys, folders once with a delimiter, pages with a cursor', async () => {
    const files = admin.storage.from(bucket);
    for (const name of ['v/a/1.txt', 'v/a/2.txt', 'v/b.txt', 'v/c/3.txt', 'v/d.txt']) {
      assert.equal((await files.upload(name, text(name))).error, null);
    }
    const flat = await files.listV2({ prefix: 'v/' });
    assert.equal(flat.error, null);
    assert.deepEqual(flat.data.objects.map((o) => o.name), ['v/a/1.txt', 'v/a/2.txt', 'v/b.txt', 'v/c/3.txt', 'v/d.txt']);
    assert.deepEqual(flat.data.folders, []);
    assert.equal(flat.data.hasNext, false);

    const level = await files.listV2({ prefix: 'v/', with_delimiter: true });
    assert.deepEqual(level.data.folders.map((f) => f.name), ['v/a/', 'v/c/']);
    assert.deepEqual(level.data.objects.map((o) => o.name), ['v/b.txt', 'v/d.txt']);
    assert.equal(level.data.objects[0].metadata.size, 7);

    const seen = [];
    let cursor;
    for (let page = 0; page < 10; page++) {
      const { data, error } = await files.listV2({ prefix: 'v/', with_delimiter: true, limit: 1, cursor });
      assert.equal(error, null);
      seen.push(...data.folders.map((f) => f.name), ...data.objects.map((o) => o.name));
      if (!data.hasNext) break;
      cursor = data.nextCursor;
    }
    assert.deepEqual(seen, ['v/a/', 'v/b.txt', 'v/c/', 'v/d.txt']);

    const desc = await files.listV2({ prefix: 'v/', with_delimiter: true, sortBy: { column: 'name', order: 'desc' } });
    assert.deepEqual(desc.data.folders.map((f) => f.name), ['v/c/', 'v/a/']);
    assert.deepEqual(desc.data.objects.map((o) => o.name), ['v/d.txt', 'v/b.txt']);
  });

  test('listV2: sortBy name, created_at and updated_at, each order, cursor pages see every entry once', async () => {
    const sorted = await newBucket();
    const files = admin.storage.from(sorted);
    // created_at ties for a and b (name breaks it); folder t/f/ takes its earliest object's created_at.
    const times = {
      't/c.txt': [1, 1],
      't/f/1.txt': [2, 2],
      't/a.txt': [3, 9],
      't/b.txt': [3, 4],
      't/f/2.txt': [5, 5],
    };
    for (const name of Object.keys(times)) {
      assert.equal((await files.upload(name, text(name))).error, null);
    }
    await withPg(cb.dbUrl, async (c) => {
      await c.query('set session_replication_role = replica'); // keep the updated_at trigger out
      for (const [name, [created, updated]] of Object.entries(times)) {
        await c.query(
          `update storage.objects set created_at = timestamptz '2026-01-01T00:00:00Z' + make_interval(secs => $3),
             updated_at = timestamptz '2026-01-01T00:00:00Z' + make_interval(secs => $4)
           where bucket_id = $1 and name = $2`,
          [sorted, name, created, updated],
        );
      }
    });
    const flat = {
      name: ['t/a.txt', 't/b.txt', 't/c.txt', 't/f/1.txt', 't/f/2.txt'],
      created_at: ['t/c.txt', 't/f/1.txt', 't/a.txt', 't/b.txt', 't/f/2.txt'],
      updated_at: ['t/c.txt', 't/f/1.txt', 't/b.txt', 't/f/2.txt', 't/a.txt'],
    };
    const level = {
      name: ['t/a.txt', 't/b.txt', 't/c.txt', 't/f/'],
      created_at: ['t/c.txt', 't/f/', 't/a.txt', 't/b.txt'],
      updated_at: ['t/c.txt', 't/f/', 't/b.txt', 't/a.txt'],
    };
    const entries = (data) => [...data.folders, ...data.objects];
    const walk = async (options, limit) => {
      const seen = [];
      let cursor;
      for (let page = 0; page < 20; page++) {
        const { data, error } = await files.listV2({ ...options, limit, cursor });
        assert.equal(error, null);
        assert.ok(entries(data).length <= limit);
        seen.push(...entries(data).map((e) => e.name));
        if (!data.hasNext) break;
        assert.equal(typeof data.nextCursor, 'string');
        cursor = data.nextCursor;
      }
      return seen;
    };
    for (const column of ['name', 'created_at', 'updated_at']) {
      for (const order of ['asc', 'desc']) {
        const flip = (names) => (order === 'asc' ? names : [...names].reverse());
        const sortBy = { column, order };
        const all = await files.listV2({ prefix: 't/', sortBy });
        assert.equal(all.error, null, `${column} ${order}`);
        assert.deepEqual(all.data.objects.map((o) => o.name), flip(flat[column]), `${column} ${order}`);
        assert.deepEqual(all.data.folders, []);
        assert.equal(all.data.hasNext, false);
        assert.deepEqual(await walk({ prefix: 't/', sortBy }, 2), flip(flat[column]), `paged ${column} ${order}`);

        const one = await files.listV2({ prefix: 't/', with_delimiter: true, sortBy });
        assert.equal(one.error, null);
        const expected = flip(level[column]);
        assert.deepEqual(one.data.folders.map((f) => f.name), ['t/f/'], `${column} ${order}`);
        assert.equal(one.data.folders[0].id, null);
        assert.deepEqual(one.data.objects.map((o) => o.name), expected.filter((n) => n !== 't/f/'), `${column} ${order}`);
        assert.deepEqual(await walk({ prefix: 't/', with_delimiter: true, sortBy }, 1), expected, `paged folders ${column} ${order}`);
      }
    }
    // The order defaults to ascending; the cursor keeps the sort it was made under.
    const first = await files.listV2({ prefix: 't/', limit: 2, sortBy: { column: 'updated_at' } });
    assert.deepEqual(first.data.objects.map((o) => o.name), flat.updated_at.slice(0, 2));
    const next = await files.listV2({ prefix: 't/', limit: 2, cursor: first.data.nextCursor });
    assert.deepEqual(next.data.objects.map((o) => o.name), flat.updated_at.slice(2, 4));

    const bad = await files.listV2({ prefix: 't/', sortBy: { column: 'size' } });
    assert.equal(bad.error?.statusCode, '400');
    const badOrder = await files.listV2({ prefix: 't/', sortBy: { column: 'name', order: 'sideways' } });
    assert.equal(badOrder.error?.statusCode, '400');
  });

  test('move and copy, within and across buckets', async () => {
    const other = await newBucket();
    const files = admin.storage.from(bucket);
    await files.upload('m/src.txt', text('move me'));
    const moved = await files.move('m/src.txt', 'm/dst.txt');
    assert.equal(moved.error, null);
    assert.deepEqual(moved.data, { message: 'Successfully moved' });
    assert.equal((await files.download('m/src.txt')).error.status, 400);
    assert.equal(await (await files.download('m/dst.txt')).data.text(), 'move me');

    const copied = await files.copy('m/dst.txt', 'm/copy.txt');
    assert.equal(copied.error, null);
    assert.equal(copied.data.path, `${bucket}/m/copy.txt`);
    assert.equal(await (await files.download('m/copy.txt')).data.text(), 'move me');

    const across = await files.copy('m/dst.txt', 'c.txt', { destinationBucket: other });
    assert.equal(across.error, null);
    assert.equal(await (await admin.storage.from(other).download('c.txt')).data.text(), 'move me');
    const movedAcross = await files.move('m/copy.txt', 'moved.txt', { destinationBucket: other });
    assert.equal(movedAcross.error, null);
    assert.equal(await (await admin.storage.from(other).download('moved.txt')).data.text(), 'move me');

    const clash = await files.move('m/dst.txt', 'c.txt', { destinationBucket: other });
    assert.equal(clash.error.statusCode, '409');
    const none = await files.move('m/none.txt', 'x.txt');
    assert.equal(none.error.statusCode, '404');
  });

  test('remove many', async () => {
    const files = admin.storage.from(bucket);
    await files.upload('r/1.txt', text('1'));
    await files.upload('r/2.txt', text('2'));
    const removed = await files.remove(['r/1.txt', 'r/2.txt', 'r/none.txt']);
    assert.equal(removed.error, null);
    assert.deepEqual(removed.data.map((o) => o.name).sort(), ['r/1.txt', 'r/2.txt']);
    assert.deepEqual((await files.list('r')).data, []);
    assert.equal((await pgQuery(cb.dbUrl, `select count(*)::int as n from storage.objects where bucket_id = $1 and name like 'r/%'`, [bucket]))[0].n, 0);
  });

  test('rows cannot be deleted around the API', async () => {
    await assert.rejects(
      pgQuery(cb.dbUrl, `delete from storage.objects where bucket_id = $1`, [bucket]),
      /Storage API/,
    );
  });

  test('image transformation is not offered', async () => {
    const res = await fetch(`${cb.url}/storage/v1/render/image/public/${bucket}/x.png?width=10`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error, 'Not Found');
  });
});

describe('public buckets and signed URLs', () => {
  let pub;
  let priv;
  before(async () => {
    pub = await newBucket({ public: true });
    priv = await newBucket({ public: false });
    await admin.storage.from(pub).upload('p.txt', text('public bytes'));
    await admin.storage.from(priv).upload('s.txt', text('secret bytes'));
  });

  test('a public bucket is readable by anyone, without a key', async () => {
    const { data } = anonClient(cb).storage.from(pub).getPublicUrl('p.txt');
    const res = await fetch(data.publicUrl);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'public bytes');
    const info = await fetch(`${cb.url}/storage/v1/object/info/public/${pub}/p.txt`);
    assert.equal((await info.json()).size, 12);
    const dl = anonClient(cb).storage.from(pub).getPublicUrl('p.txt', { download: true });
    const res2 = await fetch(dl.data.publicUrl);
    assert.equal(res2.headers.get('content-disposition'), 'attachment;');
    await res2.text();
  });

  test('a private bucket is not public, and anon cannot read it', async () => {
    const { data } = anonClient(cb).storage.from(priv).getPublicUrl('s.txt');
    const res = await fetch(data.publicUrl);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      statusCode: '404',
      code: 'NoSuchBucket',
      error: 'Bucket not found',
      message: 'Bucket not found',
    });
    const anon = await anonClient(cb).storage.from(priv).download('s.txt');
    assert.equal(anon.error.status, 400);
  });

  test('signed URLs: single, batch, download name, tampering and expiry', async () => {
    const files = admin.storage.from(priv);
    const one = await files.createSignedUrl('s.txt', 60);
    assert.equal(one.error, null);
    const res = await fetch(one.data.signedUrl);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'secret bytes');

    const named = await files.createSignedUrl('s.txt', 60, { download: 'x.txt' });
    const res2 = await fetch(named.data.signedUrl);
    assert.equal(res2.headers.get('content-disposition'), 'attachment; filename=x.txt');
    await res2.text();

    const many = await files.createSignedUrls(['s.txt', 'none.txt'], 60);
    assert.equal(many.error, null);
    assert.equal(many.data[0].error, null);
    assert.ok(many.data[0].signedUrl);
    assert.equal(many.data[1].error, 'Either the object does not exist or you do not have access to it');

    const missing = await files.createSignedUrl('none.txt', 60);
    assert.equal(missing.error.statusCode, '404');

    // A token for one object does not open another.
    const token = new URL(one.data.signedUrl).searchParams.get('token');
    await admin.storage.from(priv).upload('other.txt', text('other'));
    const wrong = await fetch(`${cb.url}/storage/v1/object/sign/${priv}/other.txt?token=${token}`);
    assert.equal(wrong.status, 400);
    assert.equal((await wrong.json()).error, 'InvalidSignature');

    const forged = mintJwt('not-the-secret-not-the-secret-not-the-secret', { url: `${priv}/s.txt`, exp: nowSeconds() + 60 });
    const bad = await fetch(`${cb.url}/storage/v1/object/sign/${priv}/s.txt?token=${forged}`);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).statusCode, '400');

    const short = await files.createSignedUrl('s.txt', 1);
    await sleep(2100);
    const expired = await fetch(short.data.signedUrl);
    assert.equal(expired.status, 400);
    assert.deepEqual(await expired.json(), {
      statusCode: '400',
      code: 'InvalidJWT',
      error: 'InvalidJWT',
      message: 'jwt expired',
    });
  });

  test('signed upload URLs', async () => {
    const files = admin.storage.from(priv);
    const signed = await files.createSignedUploadUrl('up/new.txt');
    assert.equal(signed.error, null);
    assert.ok(signed.data.token);
    const up = await anonClient(cb).storage.from(priv).uploadToSignedUrl('up/new.txt', signed.data.token, text('via token'));
    assert.equal(up.error, null);
    assert.equal(up.data.fullPath, `${priv}/up/new.txt`);
    assert.equal(await (await files.download('up/new.txt')).data.text(), 'via token');
    // Another path with the same token is refused.
    const other = await anonClient(cb).storage.from(priv).uploadToSignedUrl('up/other.txt', signed.data.token, text('x'));
    assert.equal(other.error.status, 400);
    // A download token does not upload.
    const dl = await files.createSignedUrl('up/new.txt', 60);
    const dlToken = new URL(dl.data.signedUrl).searchParams.get('token');
    const misuse = await anonClient(cb).storage.from(priv).uploadToSignedUrl('up/new.txt', dlToken, text('x'));
    assert.equal(misuse.error.status, 400);
  });
});

describe('RLS on storage.objects', () => {
  let bucket;
  const alice = randomUUID();
  const bob = randomUUID();
  before(async () => {
    bucket = await newBucket();
    await pgQuery(cb.dbUrl, `
      create policy "own folder insert" on storage.objects for insert to authenticated
        with check (bucket_id = '${bucket}' and (storage.foldername(name))[1] = auth.uid()::text);
      create policy "own folder select" on storage.objects for select to authenticated
        using (bucket_id = '${bucket}' and (storage.foldername(name))[1] = auth.uid()::text);
      create policy "own folder delete" on storage.objects for delete to authenticated
        using (bucket_id = '${bucket}' and (storage.foldername(name))[1] = auth.uid()::text);
    `);
  });

  test('each user writes and reads only under their own folder', async () => {
    const a = userClient(alice).storage.from(bucket);
    const b = userClient(bob).storage.from(bucket);
    const mine = await a.upload(`${alice}/note.txt`, text('alice'));
    assert.equal(mine.error, null);
    const row = await pgQuery(cb.dbUrl, `select owner::text, owner_id from storage.objects where bucket_id = $1 and name = $2`, [bucket, `${alice}/note.txt`]);
    assert.deepEqual(row[0], { owner: alice, owner_id: alice });

    const intrude = await b.upload(`${alice}/evil.txt`, text('bob'));
    assert.equal(intrude.error.status, 400);
    assert.equal(intrude.error.statusCode, '403');
    assert.equal(intrude.error.message, 'new row violates row-level security policy');
    const count = await pgQuery(cb.dbUrl, `select count(*)::int as n from storage.objects where name = $1`, [`${alice}/evil.txt`]);
    assert.equal(count[0].n, 0);

    assert.equal(await (await a.download(`${alice}/note.txt`)).data.text(), 'alice');
    const peek = await b.download(`${alice}/note.txt`);
    assert.equal(peek.error.status, 400);
    assert.deepEqual((await b.list(alice)).data, []);
    assert.deepEqual((await a.list(alice)).data.map((e) => e.name), ['note.txt']);
    assert.deepEqual((await b.listV2({ prefix: '' })).data.objects, []);
    assert.deepEqual((await a.listV2({ prefix: '' })).data.objects.map((o) => o.name), [`${alice}/note.txt`]);
    const sign = await b.createSignedUrl(`${alice}/note.txt`, 60);
    assert.equal(sign.error.statusCode, '404');
    const removed = await b.remove([`${alice}/note.txt`]);
    assert.deepEqual(removed.data, []);
    assert.equal((await a.exists(`${alice}/note.txt`)).data, true);

    // No update policy: an upsert over one's own file is refused.
    const upsert = await a.upload(`${alice}/note.txt`, text('again'), { upsert: true });
    assert.equal(upsert.error.statusCode, '403');
    // A signed upload URL is refused where the caller may not write.
    const signUp = await b.createSignedUploadUrl(`${alice}/x.txt`);
    assert.equal(signUp.error.statusCode, '403');

    const anon = await anonClient(cb).storage.from(bucket).upload(`${alice}/anon.txt`, text('x'));
    assert.equal(anon.error.statusCode, '403');
  });

  test('a bad token is refused before anything runs', async () => {
    const res = await fetch(`${cb.url}/storage/v1/object/list/${bucket}`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-a-jwt', 'content-type': 'application/json' },
      body: JSON.stringify({ prefix: '' }),
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.statusCode, '403');
    assert.equal(body.error, 'Unauthorized');
  });
});

describe('streamed uploads', () => {
  let bucket;
  before(async () => {
    bucket = await newBucket();
  });

  /** A raw upload streamed with chunked encoding (no Content-Length), as a Node stream. */
  function streamUpload(name, bytes, { contentLength = false } = {}) {
    return new Promise((resolve, reject) => {
      const url = new URL(`${cb.url}/storage/v1/object/${bucket}/${name}`);
      const headers = {
        apikey: cb.serviceRoleKey,
        authorization: `Bearer ${cb.serviceRoleKey}`,
        'content-type': 'application/octet-stream',
      };
      if (contentLength) headers['content-length'] = String(bytes);
      const req = http.request(url, { method: 'POST', headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (sent < bytes) {
          const n = Math.min(chunk.length, bytes - sent);
          sent += n;
          if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
  }

  test('a streamed upload under the limit is stored whole', async () => {
    const res = await streamUpload('ok.bin', 3 * 1024 * 1024 + 17);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.Key, `${bucket}/ok.bin`);
    const info = await admin.storage.from(bucket).info('ok.bin');
    assert.equal(info.data.size, 3 * 1024 * 1024 + 17);
  });

  test('a streamed upload over the limit is answered, not cut off (no EPIPE)', async () => {
    const res = await streamUpload('big.bin', 40 * 1024 * 1024);
    assert.equal(res.status, 400);
    assert.equal(res.body.statusCode, '413');
    assert.equal(res.body.error, 'Payload too large');
    const sized = await streamUpload('big2.bin', 40 * 1024 * 1024, { contentLength: true });
    assert.equal(sized.status, 400);
    assert.equal(sized.body.statusCode, '413');
    assert.equal((await admin.storage.from(bucket).exists('big.bin')).data, false);
  });

  test('a web ReadableStream body (duplex half) uploads', async () => {
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed '));
        controller.enqueue(new TextEncoder().encode('body'));
        controller.close();
      },
    });
    const up = await admin.storage.from(bucket).upload('web.txt', stream, { contentType: 'text/plain' });
    assert.equal(up.error, null);
    assert.equal(await (await admin.storage.from(bucket).download('web.txt')).data.text(), 'streamed body');
  });
});

test('/metrics counts storage requests and its pools under service="storage"', async () => {
  const res = await fetch(`${cb.url}/metrics`, { headers: { apikey: cb.serviceRoleKey } });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /craftbase_http_requests_total\{service="storage",route="object",status="200"\} [1-9]/);
  assert.match(text, /craftbase_http_requests_total\{service="storage",route="bucket",status="200"\} [1-9]/);
  assert.match(text, /craftbase_db_pool_max_connections\{service="storage",role="authenticator"\} 10/);
  assert.match(text, /craftbase_db_pool_max_connections\{service="storage",role="owner"\} 10/);
});

test('CRAFTBASE_STORAGE_ENABLED=false unmounts /storage/v1 (Kong\'s 404)', async () => {
  const off = await startCraftbase({ projectDir: null, env: { CRAFTBASE_STORAGE_ENABLED: 'false' } });
  try {
    const res = await fetch(`${off.url}/storage/v1/bucket`, { headers: { apikey: off.serviceRoleKey } });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { message: 'no Route matched with those values' });
  } finally {
    await off.stop();
  }
});
