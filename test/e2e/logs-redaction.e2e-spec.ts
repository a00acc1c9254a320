import { BrowserClient } from '../support/browser.js';
import { sessionOf, sessionIdInCookie } from '../support/gateway-state.js';
import { freePort } from '../support/ports.js';
import { spawnChild, waitForLine, type Child } from '../support/processes.js';
import { startStack, type Stack } from '../support/stack.js';
import { testEnvironment } from '../support/test-env.js';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const INBOUND_BEARER = 'inbound-bearer-token-that-the-gateway-strips';

function bearerOf(headers: Record<string, string | string[] | undefined>): string {
  const value = headers['authorization'];
  if (typeof value !== 'string' || !value.startsWith('Bearer ')) throw new Error('the upstream received no Bearer token');
  return value.slice('Bearer '.length);
}

/** A secret and the parts of it that would betray a partial leak (a JWT's signature, a base64 credential). */
function forms(secret: string): string[] {
  const parts = secret.split('.');
  const signature = parts.length === 3 ? parts[2] : undefined;
  return [secret, encodeURIComponent(secret), ...(signature === undefined || signature === '' ? [] : [signature])];
}

describe('logs of a full login, API call, refresh and logout', () => {
  let stack: Stack;
  /** Every secret value the flow handled, by what it is. */
  const secrets = new Map<string, string>();
  const remember = (what: string, value: string | undefined): void => {
    if (value === undefined || value === '') throw new Error(`no value for ${what}`);
    secrets.set(`${what} #${secrets.size}`, value);
  };

  beforeAll(async () => {
    // tokens live 5 s and are refreshed 30 s before expiry: every API call refreshes them
    stack = await startStack({ LOG_LEVEL: 'trace', TOKEN_REFRESH_SKEW_S: '30' }, { accessTokenTtlS: 5 });
    const { gateway, op, upstream } = stack;
    remember('client secret', op.clientSecret);
    remember('client credentials (Basic)', Buffer.from(`${op.clientId}:${op.clientSecret}`).toString('base64'));
    remember('session secret', gateway.config.session.secrets[0]);
    remember('inbound Authorization header', INBOUND_BEARER);

    const browser = new BrowserClient();
    const { visited } = await browser.signIn(gateway.url);
    const callback = new URL(visited.find((url) => url.startsWith(`${gateway.url}/auth/callback?`)) ?? '');
    remember('authorization code', callback.searchParams.get('code') ?? undefined);
    remember('state', callback.searchParams.get('state') ?? undefined);

    const rememberSession = async (): Promise<void> => {
      const { record } = await sessionOf(gateway.app, browser, gateway.url);
      remember('access token', record.tokens.accessToken);
      remember('refresh token', record.tokens.refreshToken);
      remember('ID token', record.tokens.idToken);
      remember('logout value', record.logoutValue);
      for (const cookie of await browser.cookies(gateway.url)) remember(`cookie ${cookie.name}`, cookie.value);
      const sealed = (await browser.cookies(gateway.url)).find((cookie) => cookie.name === '__Host-bff-session')?.value ?? '';
      const sid = await sessionIdInCookie(gateway.app, sealed);
      remember('session id', typeof sid === 'string' ? sid : undefined);
    };
    await rememberSession();

    for (let call = 0; call < 2; call++) {
      const res = await browser.request(`${gateway.url}/api/whoami?call=${call}`, { headers: { 'x-csrf': '1', authorization: `Bearer ${INBOUND_BEARER}` } });
      expect(res.status).toBe(200);
      remember('forwarded access token', bearerOf(upstream.received.at(-1)?.headers ?? {}));
      await rememberSession();
    }

    const me = (await (await browser.request(`${gateway.url}/auth/me`)).json()) as { logoutUrl: string };
    const logout = await browser.request(`${gateway.url}${me.logoutUrl}`);
    expect(logout.status).toBe(302);
    remember('id_token_hint', new URL(logout.headers.get('location') ?? '').searchParams.get('id_token_hint') ?? undefined);
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('refreshed the tokens during the flow, so refresh is covered', () => {
    const forwarded = [...secrets].filter(([what]) => what.startsWith('forwarded access token')).map(([, value]) => value);
    expect(new Set(forwarded).size).toBe(2);
    const refreshTokens = [...secrets].filter(([what]) => what.startsWith('refresh token')).map(([, value]) => value);
    expect(new Set(refreshTokens).size).toBe(3);
  });

  it('logged every step at trace level, one request line each', () => {
    const requests = stack.gateway.logLines().filter((line) => line['event'] === 'request');
    const urls = requests.map((line) => String(line['url']));
    expect(urls).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\/auth\/login$/),
        expect.stringMatching(/^\/auth\/callback\?code=%5BREDACTED%5D&state=%5BREDACTED%5D/),
        '/api/whoami?call=0',
        '/api/whoami?call=1',
        expect.stringMatching(/^\/auth\/logout\?sid=%5BREDACTED%5D$/),
      ]),
    );
    expect(stack.gateway.logLines().some((line) => line['level'] === 10)).toBe(true);
  });

  it('contains no token, code, state, cookie, session id, client secret or Authorization header anywhere', () => {
    const log = stack.gateway.logText();
    expect(secrets.size).toBeGreaterThanOrEqual(20);
    const leaked = [...secrets].filter(([, value]) => forms(value).some((form) => log.includes(form))).map(([what]) => what);
    expect(leaked).toEqual([]);
    // nothing JWT-shaped at all, whichever token it would have been
    expect(log).not.toMatch(/eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/);
  });
});

describe('request ids', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it.each([
    ['keeps a well-formed inbound X-Request-Id', 'trace-abc.DEF_123-x', true],
    ['keeps one of exactly 128 characters', 'a'.repeat(128), true],
    ['replaces one of 129 characters', 'a'.repeat(129), false],
    ['replaces one with characters outside [A-Za-z0-9._-]', 'trace id/with spaces', false],
  ])('%s, echoes it and passes it upstream', async (_what, inbound, kept) => {
    const browser = await stack.signedIn();
    const res = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1', 'x-request-id': inbound } });
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id') ?? '';
    if (kept) expect(id).toBe(inbound);
    else expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(stack.upstream.received.at(-1)?.headers['x-request-id']).toBe(id);
  });

  it('writes exactly one line per request with the request id, method, route, status and duration', async () => {
    const browser = await stack.signedIn();
    await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1', 'x-request-id': 'one-line-api' } });
    await fetch(`${stack.gateway.url}/auth/me`, { headers: { accept: 'application/json', 'x-request-id': 'one-line-auth' } });
    const lineOf = (id: string): Array<Record<string, unknown>> => stack.gateway.logLines().filter((line) => line['reqId'] === id && line['event'] === 'request');
    expect(lineOf('one-line-api')).toEqual([expect.objectContaining({ method: 'GET', route: '/api/*', status: 200, durationMs: expect.any(Number) })]);
    expect(lineOf('one-line-auth')).toEqual([expect.objectContaining({ method: 'GET', route: '/auth/me', status: 401, durationMs: expect.any(Number) })]);
  });
});

describe('LOG_FORMAT (node dist/main.js)', () => {
  const children: Child[] = [];
  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop()));
  });

  async function start(format: 'json' | 'pretty'): Promise<Child> {
    const port = String(await freePort());
    const child = spawnChild(process.execPath, [MAIN], { ...testEnvironment({ HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}` }), PORT: port, LOG_LEVEL: 'info', LOG_FORMAT: format });
    children.push(child);
    await waitForLine(child, /bff-gateway started/);
    return child;
  }

  it('writes one JSON object per line by default', async () => {
    const child = await start('json');
    const lines = child
      .output()
      .split('\n')
      .filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('writes human-readable lines with LOG_FORMAT=pretty', async () => {
    const child = await start('pretty');
    const started = child
      .output()
      .split('\n')
      .find((line) => line.includes('bff-gateway started'));
    // eslint-disable-next-line no-control-regex -- colour escapes are what pretty output adds
    expect(started?.replace(/\u001b\[[\d;]*m/g, '')).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO.*: bff-gateway started/);
  });
});
