import { IncomingMessage, type IncomingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { systemClock } from '../common/clock.js';
import { mapError } from '../common/problem.js';
import { loadConfig } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { Tracing } from '../tracing/tracing.js';
import { MemorySessionStore } from '../session/memory-session-store.js';
import { registerSessionCookie, sessionKey, type SessionCookie } from '../session/session-cookie.js';
import { SessionExpiredError } from '../session/session.errors.js';
import { SessionService } from '../session/session.service.js';
import type { SessionRecord } from '../session/session-store.js';
import type { RouteTokenSpec } from '../session/token-refresher.js';
import type { TokenResponse } from '../oidc/token-client.js';
import { sessionRecord } from '../../test/support/session-record.js';
import { testEnvironment } from '../../test/support/test-env.js';
import { ApiPipeline, classifyApiRequest, requireSession, type ApiExchange } from './api-pipeline.js';
import type { ApiRequestKind } from './api-request-origin.js';
import { ProxyService, type Upstream } from './proxy.service.js';
import { RouteTokens, unannouncedGrants } from './route-token.js';

const ORIGIN = 'https://app.example';
const config = loadConfig(
  testEnvironment({
    PUBLIC_URL: ORIGIN,
    UPSTREAM_URL: undefined,
    PROXY_ROUTES: JSON.stringify([{ prefix: '/api/orders', target: 'http://127.0.0.1:9' }]),
    API_MAX_BODY_MB: '1',
  }),
);

/** A store that counts its reads: one /api call reads its session once. */
class CountingStore extends MemorySessionStore {
  reads = 0;

  override get(id: string): Promise<SessionRecord | undefined> {
    this.reads += 1;
    return super.get(id);
  }
}

/** The token step's collaborator: hands out a renewed access token, or fails as told. */
class FakeRefresher {
  calls = 0;
  failure: Error | undefined;

  fresh(record: SessionRecord): Promise<SessionRecord> {
    this.calls += 1;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve({ ...record, tokens: { ...record.tokens, accessToken: 'fresh-access-token' } });
  }

  routeToken(_record: SessionRecord, route: RouteTokenSpec): Promise<string> {
    this.calls += 1;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve(`route-token-for-${route.key}`);
  }
}

/** The client-credentials grant, counted. */
class FakeTokenClient {
  calls = 0;

  clientCredentials(): Promise<TokenResponse> {
    this.calls += 1;
    return Promise.resolve({ access_token: 'client-token', token_type: 'Bearer', expires_in: 300 });
  }
}

function incoming(method: string, url: string, headers: IncomingHttpHeaders): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  req.method = method;
  req.url = url;
  req.headers = headers;
  return req;
}

/** An exchange that records how the pipeline ended it. */
class RecordingExchange implements ApiExchange {
  readonly requestId = 'req-1';
  readonly debugged: object[] = [];
  readonly log = { debug: (fields: object) => void this.debugged.push(fields), warn: () => undefined };
  forwarded: { upstream: string; path: string; session: string | undefined; authorization: string | undefined; cookie: string | undefined } | undefined;
  refused: string | undefined;
  left = false;

  constructor(
    readonly kind: ApiRequestKind,
    readonly req: IncomingMessage,
    private readonly cookie: SessionCookie | undefined,
  ) {}

  sessionCookie(): SessionCookie | undefined {
    return this.cookie;
  }

  clientLeft(): boolean {
    return this.left;
  }

  forward(upstream: Upstream, upstreamPath: string, session: SessionRecord | undefined): void {
    this.forwarded = { upstream: upstream.name, path: upstreamPath, session: session?.id, authorization: this.req.headers.authorization, cookie: this.req.headers.cookie };
  }

  refuse(error: unknown): void {
    this.refused = mapError(error).code;
  }
}

/** What each kind sends to pass the origin step. */
const FROM_APP: Record<ApiRequestKind, IncomingHttpHeaders> = { http: { 'x-csrf': '1' }, websocket: { origin: ORIGIN } };
const KINDS: readonly ApiRequestKind[] = ['http', 'websocket'];

describe('the /api pipeline', () => {
  let app: FastifyInstance;
  let store: CountingStore;
  let sessions: SessionService;
  let refresher: FakeRefresher;
  let proxy: ProxyService;
  let pipeline: ApiPipeline;

  beforeAll(async () => {
    app = Fastify();
    await registerSessionCookie(app, config);
    await app.ready();
    proxy = new ProxyService(config, new Metrics(), new Tracing(config));
  });
  afterAll(async () => {
    proxy.onApplicationShutdown();
    await app.close();
  });
  beforeEach(async () => {
    store = new CountingStore(100, systemClock);
    sessions = new SessionService(config, store, systemClock);
    refresher = new FakeRefresher();
    pipeline = new ApiPipeline(config, sessions, new RouteTokens(config, refresher, new FakeTokenClient(), systemClock), proxy);
    const now = systemClock.now();
    await store.create(sessionRecord({ id: sessionKey('live-sid'), createdAt: now, idleExpiresAt: now + 1_800_000, absoluteExpiresAt: now + 28_800_000 }));
  });
  afterEach(async () => {
    await store.close();
  });

  function cookie(sid: string | undefined): SessionCookie {
    return app.createSecureSession(sid === undefined ? {} : { sid });
  }

  async function run(kind: ApiRequestKind, method: string, url: string, headers: IncomingHttpHeaders, sessionCookie: SessionCookie | undefined): Promise<RecordingExchange> {
    const exchange = new RecordingExchange(kind, incoming(method, url, { cookie: 'sealed', ...headers }), sessionCookie);
    await pipeline.run(exchange);
    return exchange;
  }

  describe.each(KINDS)('for a %s request', (kind) => {
    it('forwards to the route with the fresh access token and without the cookie, after one store read', async () => {
      const exchange = await run(kind, 'GET', '/api/orders/1?x=1', FROM_APP[kind], cookie('live-sid'));
      expect(exchange.refused).toBeUndefined();
      expect(exchange.forwarded).toEqual({ upstream: '/api/orders', path: '/api/orders/1?x=1', session: sessionKey('live-sid'), authorization: 'Bearer fresh-access-token', cookie: undefined });
      expect(store.reads).toBe(1);
    });

    it.each([
      ['TRACE (it would echo the cookie)', 'TRACE', '/api/orders/1', {}, 'method_not_allowed'],
      ['a path no route serves', 'GET', '/api/users/1', {}, 'api_route_not_found'],
      ['a path that leaves its route', 'GET', '/api/orders/../users', {}, 'invalid_upstream_path'],
      ['a declared body over the limit', 'POST', '/api/orders', { 'content-length': String(2 * 1024 * 1024) }, 'payload_too_large'],
    ])('refuses %s, before it looks at origin or session', async (_what, method, url, headers, code) => {
      const exchange = await run(kind, method, url, { origin: 'https://evil.example', ...headers }, undefined);
      expect(exchange.refused).toBe(code);
      expect(store.reads).toBe(0);
    });

    it('refuses a cross-site request at the origin step, before any store read', async () => {
      const exchange = await run(kind, 'GET', '/api/orders/1', { origin: 'https://evil.example' }, cookie('live-sid'));
      expect(exchange.refused).toBe(kind === 'http' ? 'csrf_header_missing' : 'cross_origin_request');
      expect(exchange.forwarded).toBeUndefined();
      expect(store.reads).toBe(0);
    });

    it.each([
      ['no session cookie', (): SessionCookie | undefined => undefined],
      ['a cookie without a session id', (): SessionCookie | undefined => cookie(undefined)],
      ['a cookie with an empty session id', (): SessionCookie | undefined => cookie('')],
    ])('answers 401 session_required to %s without reading the store', async (_what, sessionCookie) => {
      const exchange = await run(kind, 'GET', '/api/orders/1', FROM_APP[kind], sessionCookie());
      expect(exchange.refused).toBe('session_required');
      expect(store.reads).toBe(0);
      expect(refresher.calls).toBe(0);
    });

    it('answers 401 session_required to a cookie naming no live session, and drops the id from it', async () => {
      const stale = cookie('ended-sid');
      const exchange = await run(kind, 'GET', '/api/orders/1', FROM_APP[kind], stale);
      expect(exchange.refused).toBe('session_required');
      expect(stale.get('sid')).toBeUndefined();
      expect(exchange.debugged).toEqual([{ event: 'session_unknown' }]);
    });

    it('refuses with the token step\'s error when the session cannot be renewed', async () => {
      refresher.failure = new SessionExpiredError();
      const exchange = await run(kind, 'GET', '/api/orders/1', FROM_APP[kind], cookie('live-sid'));
      expect(exchange.refused).toBe('session_expired');
      expect(exchange.forwarded).toBeUndefined();
    });

    it('stops without an answer or a token refresh when the client left while its session was read', async () => {
      const exchange = new RecordingExchange(kind, incoming('GET', '/api/orders/1', FROM_APP[kind]), cookie('live-sid'));
      exchange.left = true;
      await pipeline.run(exchange);
      expect(store.reads).toBe(1);
      expect([exchange.forwarded, exchange.refused, refresher.calls]).toEqual([undefined, undefined, 0]);
    });
  });
});

describe('classifyApiRequest', () => {
  const classify = (method: string, url: string, headers: IncomingHttpHeaders = {}): string => {
    try {
      const match = classifyApiRequest({ method, url, headers }, config.proxy);
      return `${match.route.prefix} ${match.upstreamPath}`;
    } catch (error) {
      return mapError(error).code;
    }
  };

  it('matches on the normalised path and forwards the raw one', () => {
    expect(classify('GET', '/api/orders//1?q=%2F')).toBe('/api/orders /api/orders//1?q=%2F');
  });

  it('lets a declared body up to the limit through', () => {
    expect(classify('PUT', '/api/orders/1', { 'content-length': String(1024 * 1024) })).toBe('/api/orders /api/orders/1');
    expect(classify('PUT', '/api/orders/1', { 'content-length': String(1024 * 1024 + 1) })).toBe('payload_too_large');
  });

  it('refuses TRACE whatever the path', () => {
    expect(classify('TRACE', '/api/nowhere')).toBe('method_not_allowed');
  });
});

describe('requireSession', () => {
  it('returns the live session a cookie names, after one store read', async () => {
    const store = new CountingStore(10, systemClock);
    const now = systemClock.now();
    const record = sessionRecord({ id: sessionKey('sid-1'), createdAt: now, idleExpiresAt: now + 1_800_000, absoluteExpiresAt: now + 28_800_000 });
    await store.create(record);
    const app = Fastify();
    await registerSessionCookie(app, config);
    await app.ready();
    try {
      const found = await requireSession(new SessionService(config, store, systemClock), app.createSecureSession({ sid: 'sid-1' }), { debug: () => undefined });
      expect(found.id).toBe(record.id);
      expect(store.reads).toBe(1);
    } finally {
      await store.close();
      await app.close();
    }
  });
});

describe('the /api pipeline under route policies', () => {
  const policyConfig = loadConfig(
    testEnvironment({
      PUBLIC_URL: ORIGIN,
      UPSTREAM_URL: undefined,
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/public', target: 'http://127.0.0.1:9', token: 'none', anonymous: true },
        { prefix: '/api/signed-in', target: 'http://127.0.0.1:9', token: 'none' },
        { prefix: '/api/maybe', target: 'http://127.0.0.1:9', token: 'user-or-none' },
        { prefix: '/api/service', target: 'http://127.0.0.1:9', token: 'client', scope: 'jobs' },
        { prefix: '/api/read-only', target: 'http://127.0.0.1:9', methods: ['GET', 'HEAD'] },
        { prefix: '/api/billing', target: 'http://127.0.0.1:9', resource: 'https://billing.example' },
      ]),
    }),
  );
  let app: FastifyInstance;
  let store: CountingStore;
  let refresher: FakeRefresher;
  let tokenClient: FakeTokenClient;
  let proxy: ProxyService;
  let pipeline: ApiPipeline;

  beforeAll(async () => {
    app = Fastify();
    await registerSessionCookie(app, policyConfig);
    await app.ready();
    proxy = new ProxyService(policyConfig, new Metrics(), new Tracing(policyConfig));
  });
  afterAll(async () => {
    proxy.onApplicationShutdown();
    await app.close();
  });
  beforeEach(async () => {
    store = new CountingStore(100, systemClock);
    refresher = new FakeRefresher();
    tokenClient = new FakeTokenClient();
    pipeline = new ApiPipeline(policyConfig, new SessionService(policyConfig, store, systemClock), new RouteTokens(policyConfig, refresher, tokenClient, systemClock), proxy);
    const now = systemClock.now();
    await store.create(sessionRecord({ id: sessionKey('live-sid'), createdAt: now, idleExpiresAt: now + 1_800_000, absoluteExpiresAt: now + 28_800_000 }));
    store.reads = 0;
  });
  afterEach(async () => {
    await store.close();
  });

  async function run(method: string, url: string, sid: string | undefined): Promise<RecordingExchange> {
    const exchange = new RecordingExchange('http', incoming(method, url, { 'x-csrf': '1', authorization: 'Bearer from-the-browser' }), sid === undefined ? undefined : app.createSecureSession({ sid }));
    await pipeline.run(exchange);
    return exchange;
  }

  it('forwards an anonymous route without a session, without reading the store, and without any Authorization', async () => {
    const exchange = await run('GET', '/api/public/x', undefined);
    expect(exchange.refused).toBeUndefined();
    expect(exchange.forwarded).toMatchObject({ upstream: '/api/public', session: undefined, authorization: undefined });
    expect(store.reads).toBe(0);
  });

  it('requires a session on a token-none route that is not anonymous, and sends no token on it', async () => {
    expect((await run('GET', '/api/signed-in/x', undefined)).refused).toBe('session_required');
    const signedIn = await run('GET', '/api/signed-in/x', 'live-sid');
    expect(signedIn.forwarded).toMatchObject({ session: sessionKey('live-sid'), authorization: undefined });
    expect(refresher.calls).toBe(0);
  });

  it('forwards a user-or-none route anonymously when signed out and with the user\'s token when signed in', async () => {
    expect((await run('GET', '/api/maybe/x', undefined)).forwarded).toMatchObject({ session: undefined, authorization: undefined });
    expect((await run('GET', '/api/maybe/x', 'ended-sid')).forwarded).toMatchObject({ session: undefined, authorization: undefined });
    expect((await run('GET', '/api/maybe/x', 'live-sid')).forwarded).toMatchObject({ session: sessionKey('live-sid'), authorization: 'Bearer fresh-access-token' });
  });

  it('gives a signed-in user-or-none caller whose token cannot be renewed the refresher\'s error, never an anonymous forward', async () => {
    refresher.failure = new SessionExpiredError();
    const exchange = await run('GET', '/api/maybe/x', 'live-sid');
    expect(exchange.refused).toBe('session_expired');
    expect(exchange.forwarded).toBeUndefined();
  });

  it('sends the gateway\'s client token on a client route, to signed-in callers only, obtained once', async () => {
    expect((await run('GET', '/api/service/x', undefined)).refused).toBe('session_required');
    expect(tokenClient.calls).toBe(0);
    const [first, second] = await Promise.all([run('GET', '/api/service/x', 'live-sid'), run('POST', '/api/service/y', 'live-sid')]);
    expect(first.forwarded?.authorization).toBe('Bearer client-token');
    expect(second.forwarded?.authorization).toBe('Bearer client-token');
    expect(tokenClient.calls).toBe(1);
  });

  it('answers 405 method_not_allowed to a method the route does not list, before reading the store', async () => {
    const exchange = await run('DELETE', '/api/read-only/x', 'live-sid');
    expect(exchange.refused).toBe('method_not_allowed');
    expect(exchange.forwarded).toBeUndefined();
    expect(store.reads).toBe(0);
    expect((await run('HEAD', '/api/read-only/x', 'live-sid')).forwarded).toBeDefined();
  });

  it('sends the route\'s own token on a route with a resource', async () => {
    expect((await run('GET', '/api/billing/x', 'live-sid')).forwarded?.authorization).toBe('Bearer route-token-for-/api/billing');
  });
});

describe('unannouncedGrants', () => {
  const routes = loadConfig(
    testEnvironment({
      UPSTREAM_URL: undefined,
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/jobs', target: 'http://127.0.0.1:9', token: 'client' },
        { prefix: '/api/reports', target: 'http://127.0.0.1:9', exchange: true, audience: 'https://reports.example' },
        { prefix: '/api', target: 'http://127.0.0.1:9', resource: 'https://api.example' },
      ]),
    }),
  ).proxy.routes;

  it('names each grant a route needs that discovery does not list, with its routes', () => {
    expect(unannouncedGrants(routes, ['authorization_code', 'refresh_token'])).toEqual([
      { grant: 'urn:ietf:params:oauth:grant-type:token-exchange', routes: ['/api/reports'] },
      { grant: 'client_credentials', routes: ['/api/jobs'] },
    ]);
    expect(unannouncedGrants(routes, ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'])).toEqual([]);
  });

  it('says nothing when discovery lists no grants at all (the member is optional)', () => {
    expect(unannouncedGrants(routes, undefined)).toEqual([]);
  });
});
