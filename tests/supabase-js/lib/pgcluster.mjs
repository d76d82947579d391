// A throwaway PostgreSQL cluster the test controls (start, restart, stop), for running craftbase
// with DATABASE_URL against a server that can be restarted under it. Uses the system's server
// binaries (PG_BINDIR, else the newest /usr/lib/postgresql/*/bin); run as root, every command runs
// as the `postgres` user through `runuser`.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { freePort } from './craftbase.mjs';

const run = promisify(execFile);

function binDir() {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length) throw new Error('no PostgreSQL server binaries found (set PG_BINDIR)');
  return path.join(root, versions[0], 'bin');
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/** Runs a PostgreSQL binary, as the postgres user when we are root. */
async function pg(bin, args, timeout = 60_000) {
  const exe = path.join(binDir(), bin);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  try {
    return await run(cmd, argv, { timeout, cwd: '/' });
  } catch (e) {
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * Initialises and starts a cluster on a free port: wal_level=logical, password (scram) auth over
 * TCP, trust on its Unix socket. Returns {url, port, restart(), stop()}.
 */
export async function startPgCluster() {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-pg-'));
  await fs.chmod(tmp, 0o755); // the postgres user must reach it
  const data = path.join(tmp, 'data');
  const pwfile = path.join(tmp, 'pwfile');
  const log = path.join(tmp, 'postgres.log');
  const password = randomBytes(12).toString('hex');
  await fs.mkdir(data, { mode: 0o700 });
  await fs.writeFile(pwfile, password + '\n', { mode: 0o644 });
  await fs.writeFile(log, '', { mode: 0o644 });
  if (isRoot()) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const uid = Number(stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    await fs.chown(data, uid, gid);
    await fs.chown(log, uid, gid);
  }
  const port = await freePort();
  await pg('initdb', ['-D', data, '-U', 'postgres', `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-instructions']);
  await fs.rm(pwfile);
  const options = [
    `-c port=${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${data}`,
    '-c wal_level=logical',
    '-c fsync=off',
    '-c max_connections=300',
  ].join(' ');
  await pg('pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', '60', 'start']);
  let running = true;
  return {
    port,
    url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    /** Fast shutdown, then start again on the same port and options. */
    async restart() {
      await pg('pg_ctl', ['-D', data, '-l', log, '-m', 'fast', '-w', '-t', '60', 'restart']);
    },
    /** The server's log so far. */
    async log() {
      return fs.readFile(log, 'utf8').catch(() => '');
    },
    /**
     * A streaming standby of this cluster (pg_basebackup -R over the Unix socket), started on a
     * free port with the same options: {url, port, pauseReplay(), resumeReplay(), stop()}. Its
     * URL carries the primary's password, which the copy has too.
     */
    async standby() {
      const standbyData = path.join(tmp, `standby-${await freePort()}`);
      const standbyLog = `${standbyData}.log`;
      await fs.mkdir(standbyData, { mode: 0o700 });
      await fs.writeFile(standbyLog, '', { mode: 0o644 });
      if (isRoot()) {
        const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
        const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
        await fs.chown(standbyData, uid, gid);
        await fs.chown(standbyLog, uid, gid);
      }
      await pg('pg_basebackup', ['-h', data, '-p', String(port), '-U', 'postgres', '-D', standbyData, '-R', '-X', 'stream', '-c', 'fast']);
      const standbyPort = await freePort();
      const standbyOptions = options
        .replace(`-c port=${port}`, `-c port=${standbyPort}`)
        .replace(`-c unix_socket_directories=${data}`, `-c unix_socket_directories=${standbyData}`);
      await pg('pg_ctl', ['-D', standbyData, '-l', standbyLog, '-o', standbyOptions, '-w', '-t', '60', 'start']);
      let standbyRunning = true;
      const sql = (q) => pg('psql', ['-h', standbyData, '-p', String(standbyPort), '-U', 'postgres', '-d', 'postgres', '-Atc', q]);
      return {
        port: standbyPort,
        url: `postgresql://postgres:${password}@127.0.0.1:${standbyPort}/postgres`,
        /** Stops applying WAL (it is still received): the standby falls behind. */
        async pauseReplay() {
          await sql('select pg_wal_replay_pause()');
        },
        async resumeReplay() {
          await sql('select pg_wal_replay_resume()');
        },
        async stop() {
          if (standbyRunning) {
            standbyRunning = false;
            await pg('pg_ctl', ['-D', standbyData, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => {});
          }
        },
      };
    },
    /** Stops the server (immediate) and removes its directory. */
    async stop() {
      if (running) {
        running = false;
        await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => {});
      }
      if (process.env.CRAFTBASE_KEEP_DATA === '1') process.stderr.write(`cluster kept in ${tmp}\n`);
      else await fs.rm(tmp, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
