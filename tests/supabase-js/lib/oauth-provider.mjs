// A tiny OAuth 2.0 provider for tests, speaking GitHub's endpoints so craftbase's GitHub preset
// can point at it (GOTRUE_EXTERNAL_GITHUB_URL). Its consent page approves at once: a GET of
// /login/oauth/authorize redirects straight back with a code, as a browser would after the user
// clicked "Authorize".
//
//   const provider = await startOAuthProvider({ user: { id: 42, login: 'octo', ... }, emails: [...] });
//   provider.url, provider.clientId, provider.clientSecret, provider.requests, provider.setAccount(...),
//   provider.signIdToken(claims) for OpenID Connect ID tokens checked against its /jwks
//   await provider.stop();

import http from 'node:http';
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';

export async function startOAuthProvider(account) {
  let { user, emails } = account;
  const clientId = 'craftbase-test-client';
  const clientSecret = randomBytes(16).toString('hex');
  const codes = new Map(); // code -> redirect_uri
  const tokens = new Set();
  const requests = [];
  // ID tokens (OpenID Connect) are ES256, signed with this key and published at /jwks.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'stub-oidc-1', alg: 'ES256', use: 'sig' };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    requests.push(`${req.method} ${url.pathname}`);
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const authorized = () => tokens.has((req.headers.authorization ?? '').replace(/^Bearer /i, ''));
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      if (url.searchParams.get('client_id') !== clientId) return json(400, { error: 'bad client' });
      const code = randomBytes(8).toString('hex');
      codes.set(code, url.searchParams.get('redirect_uri'));
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state'));
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const code = form.get('code');
      if (
        form.get('client_id') !== clientId ||
        form.get('client_secret') !== clientSecret ||
        !codes.has(code) ||
        codes.get(code) !== form.get('redirect_uri')
      ) {
        return json(400, { error: 'bad_verification_code' });
      }
      codes.delete(code);
      const token = `gho_${randomBytes(12).toString('hex')}`;
      tokens.add(token);
      return json(200, { access_token: token, refresh_token: `ghr_${randomBytes(12).toString('hex')}`, token_type: 'bearer', scope: 'user:email' });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      return json(200, { keys: [jwk] });
    }
    if (req.method === 'GET' && url.pathname === '/api/v3/user') {
      return authorized() ? json(200, user) : json(401, { message: 'Bad credentials' });
    }
    if (req.method === 'GET' && url.pathname === '/api/v3/user/emails') {
      return authorized() ? json(200, emails) : json(401, { message: 'Bad credentials' });
    }
    json(404, { message: 'Not Found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    clientId,
    clientSecret,
    requests,
    /** An ES256 ID token over claims, signed with the published key (or with `key`). */
    signIdToken(claims, { key = privateKey } = {}) {
      const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: jwk.kid })}.${b64(claims)}`;
      const sig = createSign('SHA256').update(input).sign({ key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      return `${input}.${sig}`;
    },
    /** The account the next consent signs in as. */
    setAccount(next) {
      ({ user, emails } = next);
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
