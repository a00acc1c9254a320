// The test support (demo provider, sample API, BrowserClient) proven on its own, without the gateway:
// the OP's client points at URLs this file serves itself, or that nobody serves.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { BrowserClient, type Navigation } from '../support/browser.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { startUpstream, type RunningUpstream } from '../support/upstream.js';

interface ProviderMetadata {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint: string;
  jwks_uri: string;
}

interface TokenSet {
  access_token: string;
  id_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

function stringField(value: unknown, name: string): string {
  const field: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, name) : undefined;
  if (typeof field !== 'string') throw new Error(`expected a string "${name}" in ${JSON.stringify(value)}`);
  return field;
}

async function discover(issuer: string): Promise<ProviderMetadata> {
  const metadata: unknown = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  return {
    authorization_endpoint: stringField(metadata, 'authorization_endpoint'),
    token_endpoint: stringField(metadata, 'token_endpoint'),
    end_session_endpoint: stringField(metadata, 'end_session_endpoint'),
    jwks_uri: stringField(metadata, 'jwks_uri'),
  };
}

async function tokenRequest(
  op: RunningOp,
  metadata: ProviderMetadata,
  params: Record<string, string>,
  auth: 'client_secret_basic' | 'client_secret_post' = 'client_secret_basic',
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const form = new URLSearchParams(params);
  if (auth === 'client_secret_basic') {
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
    const credentials = `${encodeURIComponent(op.clientId)}:${encodeURIComponent(op.clientSecret)}`;
    headers['authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  } else {
    form.set('client_id', op.clientId);
    form.set('client_secret', op.clientSecret);
  }
  const response = await fetch(metadata.token_endpoint, { method: 'POST', headers, body: form });
  return { status: response.status, body: await response.json() };
}

function tokenSet(body: unknown): TokenSet {
  const expiresIn: unknown = typeof body === 'object' && body !== null ? Reflect.get(body, 'expires_in') : undefined;
  if (typeof expiresIn !== 'number') throw new Error(`no expires_in in ${JSON.stringify(body)}`);
  return {
    access_token: stringField(body, 'access_token'),
    id_token: stringField(body, 'id_token'),
    refresh_token: stringField(body, 'refresh_token'),
    token_type: stringField(body, 'token_type'),
    expires_in: expiresIn,
  };
}

interface PkceRequest {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

function authorizationRequest(metadata: ProviderMetadata, clientId: string, redirectUri: string, omit: string[] = []): PkceRequest {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const url = new URL(metadata.authorization_endpoint);
  const params: Record<string, string> = {
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid profile email offline_access',
    state,
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(params)) if (!omit.includes(name)) url.searchParams.set(name, value);
  return { url: url.href, state, nonce, verifier };
}

async function listenOn(server: Server, port = 0): Promise<string> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

async function readText(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

describe('the demo provider, the sample API and BrowserClient without a gateway', () => {
  let op: RunningOp;
  let upstream: RunningUpstream;
  let metadata: ProviderMetadata;
  let callbackUrl: string;
  const atCallback = (url: URL): boolean => `${url.origin}${url.pathname}` === callbackUrl;

  /** Login and consent at the provider, stopping at the callback nobody serves. */
  async function authorize(browser: BrowserClient, login = 'alice'): Promise<{ request: PkceRequest; callback: URL; navigation: Navigation }> {
    const request = authorizationRequest(metadata, op.clientId, callbackUrl);
    const start = await browser.navigate(request.url, { stopAt: atCallback });
    const navigation = await browser.completeProviderInteraction(start, { login, stopAt: atCallback });
    if (navigation.stoppedAt === undefined) throw new Error(`no redirect to the callback: ${navigation.visited.join(' -> ')}`);
    return { request, callback: new URL(navigation.stoppedAt), navigation: { ...navigation, visited: [...start.visited, ...navigation.visited] } };
  }

  async function signedInTokens(login = 'alice'): Promise<{ tokens: TokenSet; request: PkceRequest }> {
    const { request, callback } = await authorize(new BrowserClient(), login);
    const { status, body } = await tokenRequest(op, metadata, {
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code') ?? '',
      redirect_uri: callbackUrl,
      code_verifier: request.verifier,
    });
    if (status !== 200) throw new Error(`token endpoint answered ${status}: ${JSON.stringify(body)}`);
    return { tokens: tokenSet(body), request };
  }

  beforeAll(async () => {
    const gatewayUrl = `http://127.0.0.1:${await freePort()}`;
    callbackUrl = `${gatewayUrl}/auth/callback`;
    op = await startOp({ gatewayUrl });
    upstream = await startUpstream(op);
    metadata = await discover(op.issuer);
  });

  afterAll(async () => {
    await upstream?.close();
    await op?.stop();
  });

  it('redirects to the callback with a code and the same state after the login and consent pages', async () => {
    const { request, callback, navigation } = await authorize(new BrowserClient());

    expect(callback.searchParams.get('state')).toBe(request.state);
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    expect(callback.searchParams.get('iss')).toBe(op.issuer);
    // Login page and its POST, consent page and its POST.
    expect(new Set(navigation.visited.filter((url) => new URL(url).pathname.startsWith('/interaction/'))).size).toBe(2);
    expect(navigation.visited.some((url) => url.startsWith(callbackUrl))).toBe(false);
  });

  it('renders the login page without loading anything from the internet', async () => {
    const browser = new BrowserClient();
    const { response } = await browser.navigate(authorizationRequest(metadata, op.clientId, callbackUrl).url);
    const html = await response.text();

    expect(html).toContain('name="login"');
    expect(html).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
  });

  it('refuses an authorization request without a PKCE challenge', async () => {
    const request = authorizationRequest(metadata, op.clientId, callbackUrl, ['code_challenge', 'code_challenge_method']);
    const { stoppedAt } = await new BrowserClient().navigate(request.url, { stopAt: atCallback });

    expect(stoppedAt).toBeDefined();
    const callback = new URL(stoppedAt ?? '');
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('state')).toBe(request.state);
  });

  it('exchanges the code (client_secret_basic, PKCE verifier) for a JWT access token for the API, an ID token and a refresh token', async () => {
    const { tokens, request } = await signedInTokens();
    const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));

    const accessToken = await jwtVerify(tokens.access_token, jwks, { issuer: op.issuer, audience: op.audience, typ: 'at+jwt' });
    expect(accessToken.payload).toMatchObject({ sub: 'alice', client_id: op.clientId, name: 'Alice Example' });
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expires_in).toBeGreaterThan(0);
    expect(tokens.expires_in).toBeLessThanOrEqual(300);

    const idToken = await jwtVerify(tokens.id_token, jwks, { issuer: op.issuer, audience: op.clientId });
    expect(idToken.protectedHeader.alg).toBe('RS256');
    expect(idToken.payload).toMatchObject({
      sub: 'alice',
      nonce: request.nonce,
      name: 'Alice Example',
      given_name: 'Alice',
      family_name: 'Example',
      email: 'alice@example.com',
      email_verified: true,
      sid: expect.any(String),
    });
    expect(tokens.refresh_token).not.toBe('');
  });

  it('refuses the code exchange without the PKCE verifier', async () => {
    const { callback } = await authorize(new BrowserClient());
    const { status, body } = await tokenRequest(op, metadata, { grant_type: 'authorization_code', code: callback.searchParams.get('code') ?? '', redirect_uri: callbackUrl });

    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant' });
  });

  it('signs in any other login as a user whose sub and name are that login', async () => {
    const { tokens } = await signedInTokens('bob');

    expect(decodeJwt(tokens.id_token)).toMatchObject({ sub: 'bob', name: 'bob' });
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'bob' });
  });

  it('lets the upstream echo the caller, the raw path, the query, the headers and the body for a valid Bearer token', async () => {
    const { tokens } = await signedInTokens();
    const body = JSON.stringify({ hello: 'world' });

    const response = await fetch(`${upstream.url}/api/items/a%2Fb/%C3%A9t%C3%A9;v=1?x=1&x=2&y=%20z`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', 'x-custom': 'kept' },
      body,
    });

    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(await response.json()).toEqual({
      method: 'POST',
      path: '/api/items/a%2Fb/%C3%A9t%C3%A9;v=1',
      query: { x: ['1', '2'], y: ' z' },
      headers: expect.objectContaining({ 'x-custom': 'kept' }),
      sub: 'alice',
      name: 'Alice Example',
      audience: 'urn:bff-demo:api',
      bodyBytes: Buffer.byteLength(body),
      bodySha256: createHash('sha256').update(body).digest('hex'),
    });
    expect(upstream.received.at(-1)).toMatchObject({ method: 'POST', url: '/api/items/a%2Fb/%C3%A9t%C3%A9;v=1?x=1&x=2&y=%20z', sub: 'alice', bodyBytes: Buffer.byteLength(body) });
    expect(upstream.received.at(-1)?.headers.authorization).toBe(`Bearer ${tokens.access_token}`);
  });

  it('never echoes the Authorization or Cookie header back, since its answer reaches the browser', async () => {
    const { tokens } = await signedInTokens();
    const response = await fetch(`${upstream.url}/api/me`, { headers: { authorization: `Bearer ${tokens.access_token}`, cookie: 'a=b' } });
    const echoed = JSON.stringify(await response.json());
    expect(echoed).not.toContain(tokens.access_token);
    expect(echoed).not.toContain('a=b');
  });

  it('lets the upstream answer 401 invalid_token without a token and with a tampered one, and record both', async () => {
    const { tokens } = await signedInTokens();
    const [header, payload, signature] = tokens.access_token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(tokens.access_token), sub: 'mallory' })).toString('base64url');

    for (const authorization of [undefined, `Bearer ${header}.${forged}.${signature}`, `Bearer ${header}.${payload}`]) {
      const before = upstream.received.length;
      const response = await fetch(`${upstream.url}/api/me`, { headers: authorization === undefined ? {} : { authorization } });

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect(await response.json()).toEqual({ error: 'invalid_token' });
      expect(upstream.received).toHaveLength(before + 1);
      expect(upstream.received.at(-1)).toMatchObject({ method: 'GET', url: '/api/me', sub: undefined });
    }
  });

  it('issues a new access token on the refresh grant, rotates the refresh token and refuses the used one', async () => {
    const { tokens } = await signedInTokens();

    const refreshed = await tokenRequest(op, metadata, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    const next = tokenSet(refreshed.body);
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    expect(next.access_token).not.toBe(tokens.access_token);
    expect(decodeJwt(next.access_token)).toMatchObject({ sub: 'alice', aud: op.audience });
    expect(decodeProtectedHeader(next.access_token).typ).toBe('at+jwt');
    const api = await fetch(`${upstream.url}/api/after-refresh`, { headers: { authorization: `Bearer ${next.access_token}` } });
    expect(api.status).toBe(200);

    const replayed = await tokenRequest(op, metadata, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(replayed.status).toBe(400);
    expect(replayed.body).toMatchObject({ error: 'invalid_grant' });
  });

  it('exits with status 0 on SIGTERM', async () => {
    const another = await startOp({ gatewayUrl: 'http://127.0.0.1:9' });
    await another.stop();

    expect(another.child.process.exitCode).toBe(0);
  });
});

describe('BrowserClient cookies on loopback', () => {
  let server: Server | undefined;
  let port: number;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.setHeader('set-cookie', ['__Host-probe=1; Path=/; Secure; HttpOnly; SameSite=Lax', 'plain=2; Path=/']);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ cookie: req.headers.cookie ?? null }));
    });
    port = Number(new URL(await listenOn(server)).port);
  });

  afterAll(() => closeServer(server));

  it.each(['127.0.0.1', 'localhost'])('stores a Secure __Host- cookie set over http://%s and sends it back', async (host) => {
    const browser = new BrowserClient();
    const url = `http://${host}:${port}/`;

    await (await browser.request(url)).text();
    const second = await browser.request(url);

    expect(await second.json()).toEqual({ cookie: '__Host-probe=1; plain=2' });
    expect(await browser.cookies(url)).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: '__Host-probe', value: '1', secure: true, httpOnly: true, sameSite: 'lax', path: '/' })]),
    );
  });

  it('refuses a Secure cookie from a plain-http origin that is not loopback, as browsers do', async () => {
    const browser = new BrowserClient();

    await browser.jar.setCookie('__Host-probe=1; Path=/; Secure', 'http://gateway.example/', { ignoreError: true });
    await browser.jar.setCookie('plain=2; Path=/', 'http://gateway.example/');

    expect((await browser.cookies('http://gateway.example/')).map((cookie) => cookie.name)).toEqual(['plain']);
  });
});

describe('BrowserClient.signIn and provider logout against a stand-in relying party', () => {
  /** Plays the gateway's part just enough to exercise the helpers: login, callback, a page, back-channel logout. */
  interface StandIn {
    url: string;
    server: Server;
    logoutTokens: string[];
    idTokens: Map<string, string>;
  }

  let op: RunningOp;
  let metadata: ProviderMetadata;
  let rp: StandIn | undefined;

  function startStandIn(port: number): Promise<StandIn> {
    const url = `http://127.0.0.1:${port}`;
    const pending = new Map<string, { verifier: string; returnTo: string }>();
    const sessions = new Map<string, string>();
    const idTokens = new Map<string, string>();
    const logoutTokens: string[] = [];

    async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const requestUrl = new URL(req.url ?? '/', url);
      if (requestUrl.pathname === '/auth/login') {
        const request = authorizationRequest(metadata, op.clientId, `${url}/auth/callback`);
        pending.set(request.state, { verifier: request.verifier, returnTo: requestUrl.searchParams.get('returnTo') ?? '/' });
        res.writeHead(302, { location: request.url }).end();
      } else if (requestUrl.pathname === '/auth/callback') {
        const transaction = pending.get(requestUrl.searchParams.get('state') ?? '');
        const error = requestUrl.searchParams.get('error');
        if (transaction === undefined || error !== null) {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: error ?? 'unknown_state' }));
          return;
        }
        const { status, body } = await tokenRequest(
          op,
          metadata,
          { grant_type: 'authorization_code', code: requestUrl.searchParams.get('code') ?? '', redirect_uri: `${url}/auth/callback`, code_verifier: transaction.verifier },
          'client_secret_post',
        );
        if (status !== 200) throw new Error(`token endpoint answered ${status}`);
        const tokens = tokenSet(body);
        const sid = randomBytes(16).toString('base64url');
        sessions.set(sid, stringField(decodeJwt(tokens.id_token), 'sub'));
        idTokens.set(sid, tokens.id_token);
        res.writeHead(303, { location: transaction.returnTo, 'set-cookie': `__Host-rp-session=${sid}; Path=/; Secure; HttpOnly; SameSite=Lax` }).end();
      } else if (requestUrl.pathname === '/auth/backchannel-logout' && req.method === 'POST') {
        logoutTokens.push(new URLSearchParams(await readText(req)).get('logout_token') ?? '');
        res.writeHead(200).end();
      } else {
        const sid = /(?:^|; )__Host-rp-session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: requestUrl.pathname, sub: sessions.get(sid ?? '') ?? null }));
      }
    }

    const server = createServer((req, res) => {
      handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
    });
    return listenOn(server, port).then(() => ({ url, server, logoutTokens, idTokens }));
  }

  function standIn(): StandIn {
    if (rp === undefined) throw new Error('stand-in relying party not started');
    return rp;
  }

  beforeAll(async () => {
    const port = await freePort();
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}`, tokenEndpointAuthMethod: 'client_secret_post', clientId: 'stand-in', clientSecret: 'stand-in-secret' });
    metadata = await discover(op.issuer);
    rp = await startStandIn(port);
  });

  afterAll(async () => {
    await closeServer(rp?.server);
    await op?.stop();
  });

  it('walks the login and consent pages and lands on returnTo with the relying party\'s Secure cookie', async () => {
    const browser = new BrowserClient();
    const { url } = standIn();

    const { visited, final } = await browser.signIn(url, { login: 'carol', returnTo: '/orders?page=2' });

    expect(final.status).toBe(200);
    expect(await final.json()).toEqual({ path: '/orders', sub: 'carol' });
    expect(visited[0]).toBe(`${url}/auth/login?returnTo=%2Forders%3Fpage%3D2`);
    expect(new Set(visited.filter((hop) => new URL(hop).pathname.startsWith('/interaction/'))).size).toBe(2);
    expect(visited.filter((hop) => hop.startsWith(`${url}/auth/callback?`))).toHaveLength(1);
    expect(visited.at(-1)).toBe(`${url}/orders?page=2`);
    expect(await browser.cookies(url)).toEqual(expect.arrayContaining([expect.objectContaining({ name: '__Host-rp-session', secure: true, httpOnly: true })]));
  });

  it('skips the provider pages on a second sign-in while the provider session lasts', async () => {
    const browser = new BrowserClient();
    const { url } = standIn();
    await browser.signIn(url, { login: 'dave' });

    const { visited, final } = await browser.signIn(url);

    expect(await final.json()).toEqual({ path: '/', sub: 'dave' });
    expect(visited.some((hop) => new URL(hop).pathname.startsWith('/interaction/'))).toBe(false);
  });

  it('returns access_denied to the callback when the user cancels at the provider', async () => {
    const browser = new BrowserClient();
    const { response } = await browser.navigate(`${standIn().url}/auth/login`);

    const { response: callback, visited } = await browser.abortProviderInteraction(response);

    expect(visited.at(-1)).toMatch(/\/auth\/callback\?error=access_denied/);
    expect(await callback.json()).toEqual({ error: 'access_denied' });
  });

  it('confirms the provider logout, which ends the provider session and posts a logout token to the back-channel URI', async () => {
    const browser = new BrowserClient();
    const { url, idTokens, logoutTokens } = standIn();
    await browser.signIn(url, { login: 'erin' });
    const sid = (await browser.cookies(url)).find((cookie) => cookie.name === '__Host-rp-session')?.value ?? '';
    const idToken = idTokens.get(sid) ?? '';
    const logoutTokensBefore = logoutTokens.length;
    const endSession = new URL(metadata.end_session_endpoint);
    endSession.search = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: `${url}/`, state: 'bye' }).toString();

    const { response: page } = await browser.navigate(endSession.href);
    expect(page.status).toBe(200);
    const { response, visited } = await browser.confirmProviderLogout(page);

    expect(visited.at(-1)).toBe(`${url}/?state=bye`);
    expect(response.status).toBe(200);
    expect(logoutTokens).toHaveLength(logoutTokensBefore + 1);
    const { payload } = await jwtVerify(logoutTokens.at(-1) ?? '', createRemoteJWKSet(new URL(metadata.jwks_uri)), { issuer: op.issuer, audience: op.clientId });
    expect(payload).toMatchObject({ sub: 'erin', sid: decodeJwt(idToken)['sid'], events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });

    const again = await browser.signIn(url, { login: 'erin' });
    expect(again.visited.some((hop) => new URL(hop).pathname.startsWith('/interaction/'))).toBe(true);
  });
});
