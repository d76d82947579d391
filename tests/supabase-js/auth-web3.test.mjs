// Sign in with Web3 through @supabase/supabase-js: `auth.signInWithWeb3` with stand-in
// Ethereum and Solana wallets (keys made here; secp256k1, Keccak-256 and ed25519 from the
// @noble packages), which auth-js asks for accounts and signatures as it asks real wallets.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { keccak_256 } from '@noble/hashes/sha3.js';

import { anonClient, decodeJwt, startCraftbase } from './lib/craftbase.mjs';

const APP_URL = 'http://localhost:3000/';
let cb;

before(
  async () => {
    cb = await startCraftbase({
      env: {
        GOTRUE_SITE_URL: 'http://localhost:3000',
        GOTRUE_EXTERNAL_WEB3_ETHEREUM_ENABLED: 'true',
        GOTRUE_EXTERNAL_WEB3_SOLANA_ENABLED: 'true',
      },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  if (cb) await cb.stop();
});

const hex = (bytes) => Buffer.from(bytes).toString('hex');

/** An EIP-1193 wallet holding one secp256k1 key; `signWith` signs with another key instead. */
function ethereumWallet(key = secp256k1.utils.randomSecretKey(), signWith = key) {
  const pub = secp256k1.getPublicKey(key, false);
  const address = '0x' + hex(keccak_256(pub.subarray(1)).subarray(12));
  return {
    address,
    async request({ method, params }) {
      if (method === 'eth_requestAccounts') return [address];
      if (method === 'eth_chainId') return '0x1';
      if (method === 'personal_sign') {
        const message = Buffer.from(params[0].slice(2), 'hex');
        const prefix = Buffer.from(`\x19Ethereum Signed Message:\n${message.length}`);
        const digest = keccak_256(Buffer.concat([prefix, message]));
        const sig = secp256k1.sign(digest, signWith, { prehash: false, format: 'recovered' });
        return '0x' + hex(sig.subarray(1)) + (27 + sig[0]).toString(16);
      }
      throw new Error(`unexpected wallet method ${method}`);
    },
  };
}

/** Bitcoin's base58 alphabet, as Solana writes public keys. */
function base58(bytes) {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let n = BigInt('0x' + (hex(bytes) || '0'));
  let out = '';
  while (n > 0n) {
    out = alphabet[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

/** A wallet with the `signMessage` / `publicKey.toBase58()` interface auth-js accepts. */
function solanaWallet() {
  const secret = randomBytes(32);
  const address = base58(ed25519.getPublicKey(secret));
  return {
    address,
    publicKey: { toBase58: () => address },
    async signMessage(message) {
      return ed25519.sign(message, secret);
    },
  };
}

describe('signInWithWeb3', () => {
  test('an Ethereum wallet signs in with a web3 identity, and again as the same user', async () => {
    const wallet = ethereumWallet();
    const client = anonClient(cb);
    const { data, error } = await client.auth.signInWithWeb3({
      chain: 'ethereum',
      wallet,
      statement: 'Sign in to the test app',
      options: { url: APP_URL },
    });
    assert.equal(error, null);
    assert.ok(data.session.access_token);
    assert.equal(data.user.app_metadata.provider, 'web3');
    const identity = data.user.identities[0];
    assert.equal(identity.provider, 'web3');
    assert.equal(identity.identity_data.sub, `web3:ethereum:${wallet.address}`);
    assert.equal(identity.identity_data.statement, 'Sign in to the test app');
    assert.deepEqual(
      decodeJwt(data.session.access_token).payload.amr.map((a) => a.method),
      ['web3'],
    );
    const { data: me } = await client.auth.getUser();
    assert.equal(me.user.id, data.user.id);

    const again = await anonClient(cb).auth.signInWithWeb3({
      chain: 'ethereum',
      wallet,
      options: { url: APP_URL },
    });
    assert.equal(again.error, null);
    assert.equal(again.data.user.id, data.user.id);
  });

  test('a signature from another key is refused', async () => {
    const wallet = ethereumWallet(
      secp256k1.utils.randomSecretKey(),
      secp256k1.utils.randomSecretKey(),
    );
    const { data, error } = await anonClient(cb).auth.signInWithWeb3({
      chain: 'ethereum',
      wallet,
      options: { url: APP_URL },
    });
    assert.equal(data.session, null);
    assert.equal(error.status, 400);
    assert.equal(error.message, 'Signature does not match address in message');
  });

  test('a message signed for another app is refused', async () => {
    const { error } = await anonClient(cb).auth.signInWithWeb3({
      chain: 'ethereum',
      wallet: ethereumWallet(),
      options: { url: 'https://another-app.example.com/' },
    });
    assert.equal(error.status, 400);
    assert.match(error.message, /not allowed on this server/);
  });

  test('a Solana wallet signs in', async () => {
    const wallet = solanaWallet();
    const { data, error } = await anonClient(cb).auth.signInWithWeb3({
      chain: 'solana',
      wallet,
      statement: 'Sign in with Solana',
      options: { url: APP_URL, signInWithSolana: { chainId: 'solana:devnet' } },
    });
    assert.equal(error, null);
    const identity = data.user.identities[0];
    assert.equal(identity.identity_data.sub, `web3:solana:${wallet.address}`);
    assert.equal(identity.identity_data.network, 'solana:devnet');
  });
});
