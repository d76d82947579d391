// A software WebAuthn authenticator for the passkey and WebAuthn-factor tests: one P-256 key
// per registration (ES256), `none` or `packed` self attestation, authenticator data with the
// user-present and user-verified flags and a signature counter, and client data with the
// challenge and origin, all built with node's crypto and a small CBOR encoder. It answers with
// the JSON a browser's `PublicKeyCredential.toJSON()` gives, and can play
// `navigator.credentials` for the supabase-js methods that call it.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const FLAG_USER_PRESENT = 0x01;
const FLAG_USER_VERIFIED = 0x04;
const FLAG_ATTESTED_CREDENTIAL_DATA = 0x40;

export const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const bytesOf = (v) =>
  typeof v === 'string' ? Buffer.from(v, 'base64url') : Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v);
const sha256 = (data) => createHash('sha256').update(data).digest();

// --- CBOR (RFC 8949), the subset attestation objects and COSE keys need -----------------

function head(major, n) {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

export function cbor(value) {
  if (Number.isInteger(value)) return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') {
    const s = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, s.length), s]);
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  }
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  if (value instanceof Map) {
    const parts = [head(5, value.size)];
    for (const [k, v] of value) parts.push(cbor(k), cbor(v));
    return Buffer.concat(parts);
  }
  const entries = Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

// --- keys ---------------------------------------------------------------------------------

/** A new P-256 key pair: `{ privateKey, cose }` (the public key as a COSE_Key, ES256). */
export function newKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = new Map([
    [1, 2], // kty: EC2
    [3, -7], // alg: ES256
    [-1, 1], // crv: P-256
    [-2, Buffer.from(jwk.x, 'base64url')],
    [-3, Buffer.from(jwk.y, 'base64url')],
  ]);
  return { privateKey, cose: cbor(cose) };
}

function authenticatorData(rpId, flags, counter, attested) {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(counter >>> 0);
  return Buffer.concat([sha256(Buffer.from(rpId, 'utf8')), Buffer.from([flags]), count, attested ?? Buffer.alloc(0)]);
}

function clientData(type, challenge, origin) {
  return Buffer.from(JSON.stringify({ type, challenge: b64url(bytesOf(challenge)), origin, crossOrigin: false }));
}

/**
 * One authenticator holding one credential at a time for `rpId`, answering as if the page were
 * `origin`. Every option can be overridden per ceremony to forge bad answers.
 */
export class SoftwareAuthenticator {
  constructor({ rpId = 'localhost', origin = 'http://localhost:3000', attestation = 'none' } = {}) {
    this.rpId = rpId;
    this.origin = origin;
    this.attestation = attestation;
    this.counter = 0;
    this.credential = null; // { id, key, userHandle }
  }

  /** Answers creation options (JSON or browser form) with a new credential, as `toJSON()`. */
  create(options, { origin = this.origin, rpId = this.rpId } = {}) {
    const key = newKey();
    const id = randomBytes(32);
    this.credential = { id, key, userHandle: bytesOf(options.user.id) };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, id, key.cose]);
    const flags = FLAG_USER_PRESENT | FLAG_USER_VERIFIED | FLAG_ATTESTED_CREDENTIAL_DATA;
    const authData = authenticatorData(rpId, flags, this.counter, attested);
    const clientDataJSON = clientData('webauthn.create', options.challenge, origin);
    const attStmt =
      this.attestation === 'packed'
        ? { alg: -7, sig: sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), key.privateKey) }
        : {};
    const attestationObject = cbor({ fmt: this.attestation, attStmt, authData });
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /**
   * Answers request options with an assertion by the held credential, as `toJSON()`.
   * `signWith` signs with another key; `counter` sets the signature counter.
   */
  get(options, { origin = this.origin, rpId = this.rpId, signWith, counter } = {}) {
    if (!this.credential) throw new Error('the authenticator holds no credential');
    this.counter = counter ?? this.counter + 1;
    const authData = authenticatorData(rpId, FLAG_USER_PRESENT | FLAG_USER_VERIFIED, this.counter);
    const clientDataJSON = clientData('webauthn.get', options.challenge, origin);
    const key = signWith ?? this.credential.key.privateKey;
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), key);
    return {
      id: b64url(this.credential.id),
      rawId: b64url(this.credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: b64url(this.credential.userHandle),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}

/** What a browser hands back from `navigator.credentials`: serialisable with `toJSON()`. */
export class FakePublicKeyCredential {
  constructor(json) {
    this.id = json.id;
    this.rawId = bytesOf(json.rawId).buffer;
    this.type = 'public-key';
    this.authenticatorAttachment = json.authenticatorAttachment;
    this.json = json;
    this.response = Object.fromEntries(
      Object.entries(json.response).map(([k, v]) => [k, typeof v === 'string' ? bytesOf(v).buffer : v]),
    );
  }
  getClientExtensionResults() {
    return {};
  }
  toJSON() {
    return this.json;
  }
}

/**
 * Makes this process look like a browser with `authenticator` behind `navigator.credentials`
 * (supabase-js checks `window`, `document`, `PublicKeyCredential` and `navigator.credentials`).
 * Returns a function that removes it all again.
 */
export function installFakeBrowser(authenticator) {
  const saved = {};
  const set = (name, value) => {
    saved[name] = Object.getOwnPropertyDescriptor(globalThis, name);
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  };
  const credentials = {
    create: async ({ publicKey }) => new FakePublicKeyCredential(authenticator.create(publicKey)),
    get: async ({ publicKey }) => new FakePublicKeyCredential(authenticator.get(publicKey)),
  };
  set('PublicKeyCredential', FakePublicKeyCredential);
  set('window', { PublicKeyCredential: FakePublicKeyCredential, addEventListener() {}, removeEventListener() {} });
  set('document', { visibilityState: 'visible' });
  set('navigator', { credentials });
  return () => {
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete globalThis[name];
    }
  };
}
