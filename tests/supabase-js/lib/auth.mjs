// Helpers the auth suites share: a browser following redirects to the app, and an authenticator
// app computing TOTP codes.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

/** Follows redirects as a browser would until it lands on the app (`site`), which is not fetched. */
export async function browse(start, site) {
  let url = start;
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(site)) return new URL(url);
    const res = await fetch(url, { redirect: 'manual' });
    const location = res.headers.get('location');
    assert.ok([302, 303].includes(res.status) && location, `GET ${url} answered ${res.status}: ${await res.text()}`);
    url = new URL(location, url).toString();
  }
  throw new Error(`too many redirects from ${start}`);
}

/** RFC 4648 base32 (no padding) to bytes. */
function base32(secret) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (HMAC-SHA1, 6 digits, 30 s steps) of `secret` at `seconds`. */
export function totp(secret, seconds = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

/** A code none of the accepted steps (previous, current, next) has. */
export function wrongCode(secret) {
  const now = Date.now() / 1000;
  const valid = new Set([totp(secret, now - 30), totp(secret, now), totp(secret, now + 30)]);
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}
