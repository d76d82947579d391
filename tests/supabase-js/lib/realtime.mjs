// Helpers for the realtime suite: signed-in clients from minted JWTs, subscribing with a
// promise, and collecting events with deadlines.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { createClient, mintJwt, nowSeconds, pgQuery } from './craftbase.mjs';

/** Inserts a user into auth.users and returns {id, email}. */
export async function createUser(cb, email = `${randomUUID()}@example.com`) {
  const [row] = await pgQuery(
    cb.dbUrl,
    `insert into auth.users (id, email, aud, role) values (gen_random_uuid(), $1, 'authenticated', 'authenticated') returning id`,
    [email],
  );
  return { id: row.id, email };
}

/** A user access token for `sub`, valid for `ttl` seconds. */
export function userToken(cb, sub, ttl = 3600, extra = {}) {
  return mintJwt(cb.jwtSecret, {
    sub,
    role: 'authenticated',
    aud: 'authenticated',
    exp: nowSeconds() + ttl,
    iat: nowSeconds(),
    ...extra,
  });
}

/**
 * A supabase-js client whose realtime runs as `token` (the anon key when null), as supabase-js
 * itself does on SIGNED_IN: `realtime.setAuth(access_token)`.
 */
export async function clientAs(cb, token, options = {}) {
  const client = createClient(cb.url, cb.anonKey, options);
  if (token) await client.realtime.setAuth(token);
  return client;
}

/** Subscribes `channel`, resolving with the status once SUBSCRIBED (rejects on error/timeout). */
export function subscribed(channel, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('subscribe timed out')), timeoutMs);
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') {
        clearTimeout(timer);
        resolve(status);
      } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        clearTimeout(timer);
        reject(err ?? new Error(status));
      }
    });
  });
}

/** Collects what a callback receives; `next(pred)` waits for a matching item. */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
    this.push = (item) => {
      this.items.push(item);
      for (const w of [...this.waiters]) w();
    };
  }

  /** Resolves with the first item matching pred, waiting up to timeoutMs. */
  next(pred = () => true, timeoutMs = 10_000) {
    const found = this.items.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.items.find(pred);
        if (f) {
          done();
          resolve(f);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.items).slice(0, 2000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
    });
  }

  /** Waits `ms`, then returns the items matching pred (for asserting that nothing came). */
  async settle(pred = () => true, ms = 1500) {
    await sleep(ms);
    return this.items.filter(pred);
  }
}

/**
 * After a restart: inserts five jobs (`insert(i)` returns the new id) and waits for each; then,
 * once anything replayed or duplicated has had time to arrive, checks that the job from before
 * (`firstId`) and each new one arrived exactly once and nothing else did. Returns what arrived.
 */
export async function newChangesArriveOnce(inbox, cb, firstId, insert) {
  const ids = [];
  for (let i = 0; i < 5; i++) {
    ids.push(await insert(i));
    await sleep(100);
  }
  for (const id of ids) {
    await inbox.next((m) => m.new?.id === id, 45_000).catch((e) => {
      throw new Error(`${e.message}${cb.diagnostics()}`);
    });
  }
  const all = await inbox.settle(() => true, 3_000);
  const count = (id) => all.filter((m) => m.new?.id === id).length;
  assert.equal(count(firstId), 1, 'the change from before the restart is not delivered again');
  for (const [i, id] of ids.entries()) {
    assert.equal(count(id), 1, `change ${i} after the restart arrives exactly once`);
  }
  assert.equal(all.length, 1 + ids.length, `nothing else arrives: ${JSON.stringify(all.map((m) => m.new?.type))}`);
  return all;
}
