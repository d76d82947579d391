// Test harness: runs one `craftbase start` per call on a fresh data directory
// and free ports, and hands back what a supabase-js test needs to reach it.
//
//   const cb = await startCraftbase();
//   const supabase = anonClient(cb);
//   ...
//   await cb.stop();   // SIGTERM, awaits a clean exit, removes the temp dir
//
// Environment:
//   CRAFTBASE_BIN        path of the binary (default: <repo>/target/debug/craftbase,
//                        or $CARGO_TARGET_DIR/debug/craftbase when that is set)
//   CRAFTBASE_KEEP_DATA  when "1", temp data dirs are left in place (for debugging)
//   CRAFTBASE_LOG        when "1", the server's stderr is echoed live to this stderr

import { spawn, execFile } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient as supabaseCreateClient } from '@supabase/supabase-js';
import pg from 'pg';
import { WebSocket } from 'ws';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** tests/supabase-js */
export const SUITE_DIR = path.resolve(HERE, '..');
/** the repository root */
export const REPO_ROOT = path.resolve(SUITE_DIR, '..', '..');
/** The Tool Connect Craft example project, which most test files run on. */
export const EXAMPLE_PROJECT = path.join(REPO_ROOT, 'examples', 'tool-connect-craft');

const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
const STATUS_TIMEOUT_MS = 30_000;
const LOG_LIMIT = 1024 * 1024; // keep the last 1 MiB of each stream

export const STATUS_KEYS = Object.freeze([
  'anon_key',
  'api_url',
  'db_url',
  'jwt_secret',
  'publishable_key',
  'secret_key',
  'service_role_key',
]);

/** Path of the craftbase binary under test. */
export function craftbaseBin() {
  if (process.env.CRAFTBASE_BIN) {
    return path.resolve(process.env.CRAFTBASE_BIN);
  }
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, 'target');
  return path.join(targetDir, 'debug', 'craftbase');
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function twoFreePorts() {
  for (;;) {
    const a = await freePort();
    const b = await freePort();
    if (a !== b) return [a, b];
  }
}

/** Keeps the tail of a child's output stream in memory. */
class LogBuffer {
  constructor(stream, echoTo) {
    this.text = '';
    this.waiters = new Set();
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      if (echoTo) echoTo.write(chunk);
      this.text += chunk;
      if (this.text.length > LOG_LIMIT) this.text = this.text.slice(-LOG_LIMIT);
      for (const w of this.waiters) w();
    });
  }

  tail(n = 60) {
    return this.text.split('\n').slice(-n).join('\n');
  }

  /** Resolves with the match once `re` matches the captured text. */
  waitFor(re, timeoutMs = 10_000) {
    const m = this.text.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.text.match(re);
        if (found) {
          done();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in output:\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** postmaster.pid files under dir (a few levels deep). */
async function findPostmasterPidFiles(dir, depth = 4) {
  const found = [];
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name === 'postmaster.pid') found.push(p);
    else if (e.isDirectory() && depth > 0) found.push(...(await findPostmasterPidFiles(p, depth - 1)));
  }
  return found;
}

/** PIDs of PostgreSQL servers still running on a data directory below dir. */
export async function livePostmasters(dir) {
  const pids = [];
  for (const file of await findPostmasterPidFiles(dir)) {
    let first;
    try {
      first = (await fs.readFile(file, 'utf8')).split('\n')[0].trim();
    } catch {
      continue;
    }
    const pid = Number.parseInt(first, 10);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !isAlive(pid)) continue;
    if (await isPostmasterOf(pid, path.dirname(file))) pids.push(pid);
  }
  return pids;
}

/**
 * Guards against a stale postmaster.pid whose pid now belongs to some other
 * process: a postmaster runs with its data directory as working directory.
 */
async function isPostmasterOf(pid, pgdata) {
  try {
    const cwd = await fs.readlink(`/proc/${pid}/cwd`);
    return path.resolve(cwd) === (await fs.realpath(pgdata));
  } catch {
    // No /proc access (another user's process, or not Linux): fall back on the name.
    try {
      const cmd = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
      return /postgres|postmaster/.test(cmd);
    } catch {
      return false;
    }
  }
}

/**
 * Ends PostgreSQL servers left running on this harness's own data directory
 * (after kill9(), or a server that failed to stop its database), by their pid.
 */
async function reapPostmasters(dir) {
  const pids = await livePostmasters(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGQUIT'); // immediate shutdown
    } catch {}
  }
  const deadline = Date.now() + 10_000;
  while (pids.some(isAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids.filter(isAlive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return pids;
}

function waitExit(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Resolves like promise, or with 'timeout' after ms; never leaves a timer behind. */
async function withTimeout(promise, ms) {
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, 'timeout');
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function runCommand(bin, args, { env, timeoutMs = STATUS_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
        signal: err?.signal ?? null,
        error: err && typeof err.code !== 'number' ? err : null,
        stdout: String(stdout),
        stderr: String(stderr),
      });
    });
  });
}

/** Runs `craftbase status --json --data-dir dir`; json is the parsed object. */
export async function craftbaseStatus(dataDir, { bin = craftbaseBin(), env = process.env } = {}) {
  const res = await runCommand(bin, ['status', '--json', '--data-dir', dataDir], { env });
  let json = null;
  let parseError = null;
  try {
    json = JSON.parse(res.stdout);
  } catch (e) {
    parseError = e;
  }
  return { ...res, json, parseError };
}

async function fetchStatus(url, timeoutMs = 2_000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return res.status;
}

/**
 * This process's environment without what would make craftbase use another
 * database, secret or setting than the test asked for (it reads DATABASE_URL,
 * JWT_SECRET, PGRST_*, GOTRUE_*, CRAFTBASE_*; libpq reads PG*). Tests pass
 * such variables explicitly through startCraftbase({env}).
 */
export function hermeticEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(DATABASE_URL|JWT_SECRET|PGRST_.*|GOTRUE_.*|CRAFTBASE_.*|PG[A-Z_]*)$/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

const activeInstances = new Set();
process.once('exit', () => {
  // Last resort when a test file dies without its after() hook: ask each
  // server we started (by pid) to shut down.
  for (const inst of activeInstances) inst._signalOnExit();
});

/**
 * Starts craftbase on a fresh temp data dir and two free ports and waits until
 * GET /health answers 200.
 *
 * @param {object} [opts]
 * @param {string|null} [opts.projectDir]  passed as --project-dir; by default the Tool Connect
 *   Craft example project (examples/tool-connect-craft), null for none (an empty platform)
 * @param {object} [opts.env]         extra environment for the server
 * @param {string[]} [opts.args]      extra arguments after `start ...`
 * @param {string} [opts.dataDir]     use this data dir instead of a fresh one (not removed)
 * @param {number} [opts.readyTimeoutMs]
 */
export async function startCraftbase(opts = {}) {
  const bin = craftbaseBin();
  try {
    await fs.access(bin, fsConstants.X_OK);
  } catch {
    throw new Error(
      `craftbase binary not found or not executable at ${bin}; build it (cargo build) or set CRAFTBASE_BIN`,
    );
  }
  const inst = new CraftbaseInstance(bin, opts);
  try {
    await inst._init();
  } catch (e) {
    await inst._abandon();
    throw e;
  }
  return inst;
}

class CraftbaseInstance {
  constructor(bin, opts) {
    this.bin = bin;
    this.opts = opts;
    this.projectDir =
      opts.projectDir === null
        ? undefined
        : path.resolve(opts.projectDir ?? EXAMPLE_PROJECT);
    this.env = { ...hermeticEnv(), ...(opts.env ?? {}) };
    this.child = null;
    this.stdoutLog = null;
    this.stderrLog = null;
    this.ownsDataDir = !opts.dataDir;
    this.tmpRoot = null;
    this.dataDir = opts.dataDir ? path.resolve(opts.dataDir) : null;
    this.port = null;
    this.dbPort = null;
    this.statusJson = null;
    this.starts = 0;
    this.closed = false;
  }

  // --- public API --------------------------------------------------------

  /** http://127.0.0.1:PORT, as reported by `status --json` (no trailing slash). */
  get url() {
    return this.statusJson.api_url.replace(/\/+$/, '');
  }
  get anonKey() {
    return this.statusJson.anon_key;
  }
  get serviceRoleKey() {
    return this.statusJson.service_role_key;
  }
  get jwtSecret() {
    return this.statusJson.jwt_secret;
  }
  get dbUrl() {
    return this.statusJson.db_url;
  }
  /** The full object printed by `status --json` at the last (re)start. */
  get status() {
    return this.statusJson;
  }
  get pid() {
    return this.child?.pid;
  }
  /** Captured stdout / stderr of the current server process. */
  stdout() {
    return this.stdoutLog?.text ?? '';
  }
  stderr() {
    return this.stderrLog?.text ?? '';
  }
  /** Waits until the current process's stdout matches re; resolves with the match. */
  waitForStdout(re, timeoutMs) {
    return this.stdoutLog.waitFor(re, timeoutMs);
  }
  /** Runs `craftbase status --json` now. */
  runStatus() {
    return craftbaseStatus(this.dataDir, { bin: this.bin, env: this.env });
  }
  /** Text to append to an assertion message. */
  diagnostics(lines = 60) {
    return `\n--- craftbase stderr (last ${lines} lines) ---\n${this.stderrLog?.tail(lines) ?? ''}\n--- end ---`;
  }

  /**
   * SIGTERM, then waits for the process to exit. If it does not exit within
   * timeoutMs it is SIGKILLed and stop() throws. It also throws when the exit
   * is not clean (non-zero code, or a PostgreSQL left running on the data
   * dir). The temp data dir is removed afterwards unless keepDataDir is set
   * (or CRAFTBASE_KEEP_DATA=1); use restart() to run again on the same data.
   */
  async stop({ keepDataDir = false, timeoutMs = STOP_TIMEOUT_MS } = {}) {
    let problem = null;
    try {
      problem = await this._stopProcess(timeoutMs);
    } finally {
      if (!keepDataDir) await this._close();
    }
    if (problem) throw new Error(problem + this.diagnostics());
  }

  /**
   * SIGKILLs the server process (not its PostgreSQL) and awaits its exit,
   * simulating a crash. Follow with restart() or stop().
   */
  async kill9() {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await waitExit(child);
  }

  /**
   * Stops the server (gracefully if it is running) and starts it again on the
   * same data dir and ports; status is re-read afterwards.
   */
  async restart({ timeoutMs = STOP_TIMEOUT_MS } = {}) {
    if (this.closed) throw new Error('restart() after stop(): the data dir is gone');
    const problem = await this._stopProcess(timeoutMs);
    if (problem) throw new Error(problem + this.diagnostics());
    await this._startOnce(this.port, this.dbPort);
  }

  // --- internals ---------------------------------------------------------

  async _init() {
    if (this.ownsDataDir) {
      this.tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-test-'));
      // mkdtemp makes it 0700; let a database run as another user reach its dir.
      await fs.chmod(this.tmpRoot, 0o755);
      // The data dir itself is left for craftbase to create, as on a user's
      // first `craftbase start --data-dir ./data`.
      this.dataDir = path.join(this.tmpRoot, 'data');
    }
    activeInstances.add(this);
    let lastError;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [port, dbPort] = await twoFreePorts();
      try {
        await this._startOnce(port, dbPort);
        return;
      } catch (e) {
        lastError = e;
        // Only a lost race for a port is worth another try, on a fresh dir.
        if (!/address already in use|EADDRINUSE|could not bind|port .* in use/i.test(this.stderr())) throw e;
        await this._stopProcess(5_000);
        if (this.ownsDataDir) {
          await reapPostmasters(this.tmpRoot);
          await fs.rm(this.dataDir, { recursive: true, force: true });
        }
      }
    }
    throw lastError;
  }

  _spawn(port, dbPort) {
    const args = [
      'start',
      '--data-dir',
      this.dataDir,
      '--port',
      String(port),
      '--db-port',
      String(dbPort),
      '--host',
      '127.0.0.1',
    ];
    if (this.projectDir) args.push('--project-dir', this.projectDir);
    if (this.opts.args) args.push(...this.opts.args);
    const child = spawn(this.bin, args, {
      env: this.env,
      // --project-dir defaults to the working directory: keep that empty.
      cwd: this.tmpRoot ?? os.tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.stdoutLog = new LogBuffer(child.stdout);
    this.stderrLog = new LogBuffer(child.stderr, process.env.CRAFTBASE_LOG === '1' ? process.stderr : null);
    this.spawnError = null;
    child.on('error', (e) => {
      this.spawnError = e;
    });
    this.starts++;
    return child;
  }

  async _startOnce(port, dbPort) {
    this.port = port;
    this.dbPort = dbPort;
    const child = this._spawn(port, dbPort);
    const exited = waitExit(child);
    const healthUrl = `http://127.0.0.1:${port}/health`;
    const timeoutMs = this.opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let lastProbe = 'no answer yet';
    for (;;) {
      if (this.spawnError) throw new Error(`could not spawn ${this.bin}: ${this.spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        const { code, signal } = await exited;
        throw new Error(`craftbase start exited before it was ready (code ${code}, signal ${signal})` + this.diagnostics());
      }
      try {
        const s = await fetchStatus(healthUrl);
        if (s === 200) break;
        lastProbe = `HTTP ${s}`;
      } catch (e) {
        lastProbe = e.cause?.code ?? e.message;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `craftbase not ready after ${timeoutMs} ms (last /health probe: ${lastProbe})` + this.diagnostics(),
        );
      }
      await sleep(250);
    }

    const st = await this.runStatus();
    if (st.code !== 0 || !st.json) {
      throw new Error(
        `craftbase status --json failed (code ${st.code}): ${st.parseError?.message ?? ''}\n` +
          `stdout: ${st.stdout}\nstderr: ${st.stderr}` +
          this.diagnostics(),
      );
    }
    const missing = STATUS_KEYS.filter((k) => typeof st.json[k] !== 'string' || st.json[k] === '');
    if (missing.length) {
      throw new Error(`craftbase status --json lacks ${missing.join(', ')}: ${st.stdout}`);
    }
    this.statusJson = st.json;
  }

  /**
   * Ends the server process. Returns a description of what went wrong, or
   * null on a clean stop. After a graceful stop, a PostgreSQL still running
   * on the data dir is a problem (and is reaped); after kill9() it is left as
   * the crash left it, so that restart() tests recovery from it.
   */
  async _stopProcess(timeoutMs) {
    const child = this.child;
    this.child = null;
    if (!child) return null;
    const problems = [];
    const exited = waitExit(child);
    const running = child.exitCode === null && child.signalCode === null;
    if (running) child.kill('SIGTERM');
    const result = await withTimeout(exited, timeoutMs);
    if (result === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      problems.push(`craftbase did not exit within ${timeoutMs} ms of SIGTERM; it was SIGKILLed`);
    } else if (running && result.code !== 0) {
      problems.push(`craftbase exited with code ${result.code}, signal ${result.signal} after SIGTERM`);
    }
    if (running && this.dataDir) {
      const dirs = [this.dataDir, ...(await this._externalClusterDirs())];
      const live = async () => (await Promise.all(dirs.map(livePostmasters))).flat();
      // Give the database a moment to finish going away with its parent.
      const deadline = Date.now() + 5_000;
      while ((await live()).length && Date.now() < deadline) await sleep(100);
      const left = (await Promise.all(dirs.map(reapPostmasters))).flat();
      if (left.length && result !== 'timeout') {
        problems.push(`PostgreSQL (pid ${left.join(', ')}) was still running on the data dir after craftbase exited`);
      }
    }
    return problems.length ? problems.join('; ') : null;
  }

  async _close() {
    if (this.closed) return;
    this.closed = true;
    activeInstances.delete(this);
    const dir = this.tmpRoot ?? this.dataDir;
    if (dir) await reapPostmasters(dir);
    if (this.ownsDataDir && this.tmpRoot) {
      await this._removeExternalClusters();
      if (process.env.CRAFTBASE_KEEP_DATA === '1') {
        process.stderr.write(`craftbase test data kept in ${this.tmpRoot}\n`);
      } else {
        await fs.rm(this.tmpRoot, { recursive: true, force: true, maxRetries: 3 });
      }
    }
  }

  /**
   * craftbase run as root keeps the cluster of a data dir that the postgres
   * user cannot reach under /var/lib/craftbase/clusters, in a folder named
   * after the data dir's path. The harness makes its temp dirs reachable, so
   * this should find nothing; it is a guard against leaking clusters there.
   * Only folders named after this instance's unique temp dir are touched.
   */
  async _externalClusterDirs() {
    if (!this.ownsDataDir || !this.tmpRoot) return [];
    const parent = '/var/lib/craftbase/clusters';
    const tag = path.basename(this.tmpRoot);
    try {
      return (await fs.readdir(parent)).filter((n) => n.includes(tag)).map((n) => path.join(parent, n));
    } catch {
      return [];
    }
  }

  async _removeExternalClusters() {
    for (const dir of await this._externalClusterDirs()) {
      await reapPostmasters(dir);
      if (process.env.CRAFTBASE_KEEP_DATA !== '1') await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** After a failed start: kill whatever runs, clean up, never throw. */
  async _abandon() {
    try {
      if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
        const exited = waitExit(this.child);
        this.child.kill('SIGTERM');
        if ((await withTimeout(exited, 10_000)) === 'timeout') {
          this.child.kill('SIGKILL');
          await exited;
        }
      }
      this.child = null;
      await this._close();
    } catch {}
  }

  _signalOnExit() {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGTERM');
      } catch {}
    }
  }
}

// --- JWT ----------------------------------------------------------------

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

/**
 * An HS256 JWT over claims signed with secret (node:crypto only).
 * Pass header to override/extend the JOSE header (e.g. to forge alg).
 */
export function mintJwt(secret, claims, { header } = {}) {
  const h = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', ...(header ?? {}) }));
  const p = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

/** Splits a JWT and decodes its header and payload (no verification). */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a JWT (${parts.length} parts)`);
  const [h, p, s] = parts;
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    signingInput: `${h}.${p}`,
    signature: s,
  };
}

/** True when token is an HS256 JWT whose signature verifies with secret. */
export function verifyHs256(token, secret) {
  const { header, signingInput, signature } = decodeJwt(token);
  if (header.alg !== 'HS256') return false;
  const expected = createHmac('sha256', secret).update(signingInput).digest();
  const given = Buffer.from(signature, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** now, in JWT seconds */
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// --- supabase-js ----------------------------------------------------------

const BASE_CLIENT_OPTIONS = Object.freeze({
  auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  // Node 20 has no global WebSocket; supabase-js (2.110+) needs one passed in.
  realtime: { transport: WebSocket },
});

function mergeOptions(base, extra) {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra ?? {})) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object'
        ? { ...base[k], ...v }
        : v;
  }
  return out;
}

/** supabase-js client on url with key, no session persistence or refresh. */
export function createClient(url, key, options) {
  return supabaseCreateClient(url, key, mergeOptions(BASE_CLIENT_OPTIONS, options));
}

/** supabase-js client for cb with its anon key. */
export function anonClient(cb, options) {
  return createClient(cb.url, cb.anonKey, options);
}

/** supabase-js client for cb with its service_role key. */
export function serviceClient(cb, options) {
  return createClient(cb.url, cb.serviceRoleKey, options);
}

// --- database ---------------------------------------------------------------

/** Connects with node-postgres to dbUrl, runs fn(client), always disconnects. */
/**
 * Waits until `check()` resolves true: the schema cache reloads in the background after DDL, so a
 * test that creates tables or functions waits until the API knows them (10 s at most).
 */
/**
 * fetch against `/rest/v1` of `cb`; `as: 'service'` sends the service_role key as apikey and bearer,
 * `as: 'anon'` only the anon key as apikey. A string or bytes body goes as it is, anything else as
 * JSON; the answer's body is parsed when it is JSON.
 */
export async function restRequest(cb, path, { as = 'anon', method = 'GET', headers = {}, body, contentType = 'application/json' } = {}) {
  const keys = as === 'service' ? { apikey: cb.serviceRoleKey, authorization: `Bearer ${cb.serviceRoleKey}` } : { apikey: cb.anonKey };
  const init = { method, headers: { ...keys, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
    init.headers['content-type'] = contentType;
  }
  const res = await fetch(`${cb.url}/rest/v1${path}`, init);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

export async function waitForSchema(check) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error('schema cache did not reload');
}

export async function withPg(dbUrl, fn) {
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** One query through a short-lived connection; returns the rows. */
export async function pgQuery(dbUrl, sql, params = []) {
  return withPg(dbUrl, async (c) => (await c.query(sql, params)).rows);
}
