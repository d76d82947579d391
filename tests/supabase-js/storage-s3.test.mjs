// Storage on an S3-compatible store (STORAGE_BACKEND=s3, storage-api's variable names) against
// a local moto server this file starts. Skipped when `moto_server` cannot be found: install it
// with `pip install "moto[server]"` (PyPI), or name its path in MOTO_SERVER.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort, serviceClient, startCraftbase } from './lib/craftbase.mjs';

const MOTO = process.env.MOTO_SERVER || 'moto_server';
const hasMoto = spawnSync(MOTO, ['--help'], { stdio: 'ignore' }).status === 0;
const S3_BUCKET = 'craftbase-storage-test';

let moto;
let endpoint;
let cb;
let admin;

/** The keys the S3 bucket holds, through S3's own ListObjectsV2. */
async function s3Keys() {
  const xml = await (await fetch(`${endpoint}/${S3_BUCKET}?list-type=2`)).text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
}

const skip = hasMoto ? false : 'moto_server not installed (pip install "moto[server]")';

describe('storage on S3', () => {
  before(async () => {
    if (skip) return;
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    moto = spawn(MOTO, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${endpoint}/${S3_BUCKET}`, { method: 'PUT' });
        if (res.ok) break;
      } catch (e) {
        if (i > 100) throw e;
      }
      await sleep(100);
    }
    cb = await startCraftbase({
      projectDir: null,
      env: {
        STORAGE_BACKEND: 's3',
        GLOBAL_S3_BUCKET: S3_BUCKET,
        GLOBAL_S3_ENDPOINT: endpoint,
        GLOBAL_S3_FORCE_PATH_STYLE: 'true',
        REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
      },
    });
    admin = serviceClient(cb);
  });

  after(async () => {
    await cb?.stop();
    moto?.kill('SIGTERM');
  });

  test('upload, download, range, move, copy, signed URL and remove go through the S3 bucket', { skip }, async () => {
    assert.equal((await admin.storage.createBucket('docs')).error, null);
    const files = admin.storage.from('docs');
    const up = await files.upload('a/hello.txt', new Blob(['hello s3'], { type: 'text/plain' }));
    assert.equal(up.error, null);
    const keys = await s3Keys();
    assert.equal(keys.length, 1);
    assert.match(keys[0], /^docs\/a\/hello\.txt\/[0-9a-f-]{36}$/);

    assert.equal(await (await files.download('a/hello.txt')).data.text(), 'hello s3');
    const part = await fetch(`${cb.url}/storage/v1/object/docs/a/hello.txt`, {
      headers: { apikey: cb.serviceRoleKey, range: 'bytes=6-7' },
    });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), 's3');

    // Past the 8 MiB write buffer: an S3 multipart upload.
    const big = Buffer.alloc(12 * 1024 * 1024 + 5, 3);
    const bigUp = await files.upload('big.bin', big, { contentType: 'application/octet-stream' });
    assert.equal(bigUp.error, null);
    const back = Buffer.from(await (await files.download('big.bin')).data.arrayBuffer());
    assert.equal(back.length, big.length);
    assert.ok(back.equals(big));

    assert.equal((await files.move('a/hello.txt', 'b/moved.txt')).error, null);
    assert.equal((await files.copy('b/moved.txt', 'b/copy.txt')).error, null);
    const signed = await files.createSignedUrl('b/copy.txt', 60);
    assert.equal(await (await fetch(signed.data.signedUrl)).text(), 'hello s3');

    const removed = await files.remove(['b/moved.txt', 'b/copy.txt', 'big.bin']);
    assert.equal(removed.data.length, 3);
    assert.deepEqual(await s3Keys(), []);
  });
});
