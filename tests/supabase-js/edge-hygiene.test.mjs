// HTTP hygiene of the API port, seen by raw Node `http`/`net` clients: a refused upload still
// reads its status, slow heads and stalled bodies are cut off after their timeouts (set low
// here through the environment), a malformed chunk size is a 400, and a kept-alive connection
// survives refused requests and idle spells shorter than the keep-alive timeout.
// Time bounds are only upper bounds with a wide margin over the configured timeout.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import { startCraftbase } from './lib/craftbase.mjs';

const HEADER_TIMEOUT_S = 1;
const BODY_TIMEOUT_S = 2;
const KEEP_ALIVE_TIMEOUT_S = 8;
const DRAIN_LIMIT = 10 * 1024 * 1024;
/** Added to a timeout before a test calls the server too slow. */
const MARGIN_MS = 10_000;
const MiB = 1024 * 1024;

/** @type {Awaited<ReturnType<typeof startCraftbase>>} */
let cb;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        CRAFTBASE_HEADER_TIMEOUT: String(HEADER_TIMEOUT_S),
        CRAFTBASE_BODY_TIMEOUT: String(BODY_TIMEOUT_S),
        CRAFTBASE_KEEP_ALIVE_TIMEOUT: String(KEEP_ALIVE_TIMEOUT_S),
        CRAFTBASE_DRAIN_LIMIT: String(DRAIN_LIMIT),
      },
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

function port() {
  return new URL(cb.url).port;
}

/**
 * POSTs `total` bytes on a raw socket in 64 KiB pieces, pausing every few, like a slow
 * uploader; then asks for /health on the same connection. Reports what it read, how much it
 * sent, and any socket error (EPIPE, ECONNRESET).
 */
function upload(path, headers, total) {
  return new Promise((resolve) => {
    const result = { status: null, response: '', error: null, sent: 0 };
    // Half-open allowed: the client goes on sending after the server has shut its side.
    const socket = net.connect({ host: '127.0.0.1', port: port(), allowHalfOpen: true });
    const timer = setTimeout(() => socket.destroy(), 60_000);
    socket.setEncoding('latin1');
    socket.on('data', (c) => {
      result.response += c;
      result.status ??= statusOf(result.response);
    });
    socket.on('error', (e) => {
      result.error ??= e;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(result);
    });
    // The server shut its side: once the upload is over, shut ours.
    let serverDone = false;
    let uploaded = false;
    socket.on('end', () => {
      serverDone = true;
      if (uploaded) socket.end();
    });
    const head =
      `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${total}\r\n` +
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('') +
      '\r\n';
    const piece = Buffer.alloc(64 * 1024, 'x');
    (async () => {
      socket.write(head);
      let i = 0;
      while (result.sent < total && !result.error && !socket.destroyed) {
        const n = Math.min(piece.length, total - result.sent);
        const ok = socket.write(n === piece.length ? piece : piece.subarray(0, n));
        result.sent += n;
        if (!ok) await new Promise((r) => socket.once('drain', r).once('close', r));
        if (++i % 8 === 0) await sleep(5);
      }
      uploaded = true;
      if (socket.destroyed) return;
      if (serverDone) socket.end();
      else socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    })();
  });
}

/** The JSON body of the first answer in a raw response. */
function firstBody(raw) {
  const start = raw.indexOf('\r\n\r\n') + 4;
  const length = Number(raw.match(/content-length: (\d+)/i)?.[1] ?? 0);
  return JSON.parse(raw.slice(start, start + length));
}

/** Asserts the upload read `status` first and its connection then served /health. */
function assertRefusedAndKept(r, status, total) {
  assert.equal(r.error, null, `the upload failed with ${r.error?.code ?? r.error} after ${r.sent} bytes`);
  assert.equal(r.status, status, r.response.slice(0, 300));
  assert.equal(r.sent, total);
  const answers = r.response.match(/HTTP\/1\.1 \d{3}/g) ?? [];
  assert.deepEqual(answers, [`HTTP/1.1 ${status}`, 'HTTP/1.1 200'], 'the connection did not serve the next request');
}

/** Writes `text` on a fresh socket and reads until the server closes it or `ms` pass. */
function rawExchange(text, ms = MARGIN_MS) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: port() });
    let data = '';
    let error = null;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ data, closed: false, error });
    }, ms);
    socket.setEncoding('utf8');
    socket.on('data', (c) => (data += c));
    socket.on('error', (e) => (error = e));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true, error });
    });
    socket.write(text);
  });
}

function statusOf(raw) {
  const m = raw.match(/^HTTP\/1\.1 (\d{3})/);
  return m ? Number(m[1]) : null;
}

describe('refused uploads read their status', () => {
  test('415 PGRST107 for a non-JSON body while 8 MiB are still being sent', async () => {
    const total = 8 * MiB;
    const r = await upload('/rest/v1/connectors', { apikey: cb.anonKey, 'content-type': 'text/plain' }, total);
    assertRefusedAndKept(r, 415, total);
    assert.equal(firstBody(r.response).code, 'PGRST107');
  });

  test('413 from REST for a body over its limit (10 MiB) is read, not reset', async () => {
    const total = 12 * MiB;
    const r = await upload('/rest/v1/connectors', { apikey: cb.anonKey, 'content-type': 'application/json' }, total);
    assertRefusedAndKept(r, 413, total);
  });

  test("413 from auth's body cap while 4 MiB are still being sent", async () => {
    const total = 4 * MiB;
    const r = await upload('/auth/v1/signup', { apikey: cb.anonKey, 'content-type': 'application/json' }, total);
    assertRefusedAndKept(r, 413, total);
  });

  test('past the drain limit the answer is still read, then the connection closes without a reset', async () => {
    const total = DRAIN_LIMIT + 6 * MiB;
    const r = await upload('/rest/v1/connectors', { apikey: cb.anonKey, 'content-type': 'text/plain' }, total);
    assert.equal(r.error, null, `the upload failed with ${r.error?.code ?? r.error} after ${r.sent} bytes`);
    assert.equal(r.status, 415, r.response.slice(0, 300));
    assert.equal(r.sent, total);
    assert.deepEqual(r.response.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 415']);
  });

  test('401 from the apikey gate on a 4 MiB POST', async () => {
    const total = 4 * MiB;
    const r = await upload('/rest/v1/connectors', { 'content-type': 'application/json' }, total);
    assertRefusedAndKept(r, 401, total);
    assert.equal(firstBody(r.response).message, 'No API key found in request');
  });
});

describe('malformed bodies', () => {
  for (const path of ['/rest/v1/connectors', '/auth/v1/signup']) {
    test(`a malformed chunk size is 400, not 413 (${path})`, async () => {
      const r = await rawExchange(
        `POST ${path} HTTP/1.1\r\nHost: localhost\r\napikey: ${cb.anonKey}\r\n` +
          'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      );
      assert.equal(statusOf(r.data), 400, r.data);
      assert.match(r.data, /"message":"Bad request"/);
    });
  }
});

describe('timeouts', () => {
  test('a request head that never ends is closed after the header timeout (slowloris)', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: port() });
    await new Promise((r) => socket.once('connect', r));
    const started = Date.now();
    socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
    const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 300);
    socket.on('error', () => {});
    const closed = await Promise.race([
      new Promise((r) => socket.once('close', () => r(true))),
      sleep(HEADER_TIMEOUT_S * 1000 + MARGIN_MS, false),
    ]);
    clearInterval(drip);
    socket.destroy();
    assert.ok(closed, `still open ${Date.now() - started} ms after a head began (header timeout ${HEADER_TIMEOUT_S} s)`);
  });

  test('a connection that sends nothing is closed after the header timeout', async () => {
    const r = await rawExchange('', HEADER_TIMEOUT_S * 1000 + MARGIN_MS);
    assert.ok(r.closed, 'a silent connection stayed open');
  });

  test('a stalled body gets 408 after the body timeout and the connection is closed', async () => {
    const r = await rawExchange(
      `POST /rest/v1/connectors HTTP/1.1\r\nHost: localhost\r\napikey: ${cb.anonKey}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":',
      BODY_TIMEOUT_S * 1000 + MARGIN_MS,
    );
    assert.equal(statusOf(r.data), 408, r.data || '(no answer)');
    assert.match(r.data, /"message":"Request timeout"/);
    assert.ok(r.closed, 'the connection stayed open after a 408');
  });
});

describe('keep-alive', () => {
  /** Sends one request on `agent`, the body written after the head; resolves status and reuse. */
  function small(agent, { method = 'POST', path = '/rest/v1/connectors', headers = {}, body = '{"name":"x"}' } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: port(),
          path,
          method,
          agent,
          headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } : headers,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
        },
      );
      req.on('error', reject);
      req.flushHeaders();
      if (body) setTimeout(() => req.end(body), 10);
      else req.end();
    });
  }

  test('refused small POSTs (401, 415) do not drop the kept-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let sockets = 0;
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args) => {
      sockets++;
      return create(...args);
    };
    try {
      for (let i = 0; i < 40; i++) {
        const r =
          i % 2 === 0
            ? await small(agent)
            : await small(agent, { headers: { apikey: cb.anonKey, 'content-type': 'text/plain' } });
        assert.equal(r.status, i % 2 === 0 ? 401 : 415, `request ${i}`);
      }
      const get = await small(agent, { method: 'GET', path: '/health', body: null });
      assert.equal(get.status, 200);
      assert.equal(sockets, 1, `${sockets} connections for 41 small requests`);
    } finally {
      agent.destroy();
    }
  });

  test('an idle kept-alive connection outlives the header timeout', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await small(agent, { method: 'GET', path: '/health', body: null });
      assert.equal(first.status, 200);
      await sleep(HEADER_TIMEOUT_S * 1000 + 2_000);
      const second = await small(agent, { method: 'GET', path: '/health', body: null });
      assert.equal(second.status, 200);
      assert.equal(second.reused, true, 'the kept-alive connection was closed while idle');
    } finally {
      agent.destroy();
    }
  });
});
