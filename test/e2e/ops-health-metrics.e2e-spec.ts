import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { startGateway, type RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { startStack, type Stack } from '../support/stack.js';
import { eventually, waitUntilReady } from '../support/wait.js';

/** One sample of the Prometheus text exposition, by metric name and exact label set; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = (match[2] ?? '').split(/,(?=[a-zA-Z_]\w*=")/).filter((pair) => pair !== '').sort().join(',');
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

describe('health, readiness and metrics with a provider, an upstream and a signed-in user', () => {
  let stack: Stack;
  let hanging: Server;
  const metricsText = (): Promise<string> => scrape(`${stack.gateway.url}/metrics`);
  const count = async (name: string, labels: Record<string, string>): Promise<number> => sample(await metricsText(), name, labels) ?? 0;

  beforeAll(async () => {
    // an upstream that accepts and never answers, for the timeout kind of upstream error
    hanging = createServer(() => undefined);
    hanging.listen(0, '127.0.0.1');
    await once(hanging, 'listening');
    const hangingAddress = hanging.address();
    if (hangingAddress === null || typeof hangingAddress === 'string') throw new Error('no address');
    const deadPort = await freePort();
    stack = await startStack(
      (upstreamUrl) => ({
        PROXY_ROUTES: JSON.stringify([
          { prefix: '/api/dead', target: `http://127.0.0.1:${deadPort}` },
          { prefix: '/api/hangs', target: `http://127.0.0.1:${hangingAddress.port}` },
          { prefix: '/api', target: upstreamUrl },
        ]),
        UPSTREAM_TIMEOUT_S: '1',
        // tokens live 5 s and are refreshed 30 s before expiry: every API call refreshes
        TOKEN_REFRESH_SKEW_S: '30',
      }),
      { accessTokenTtlS: 5 },
    );
  });
  afterAll(async () => {
    await stack.stop();
    hanging.closeAllConnections();
    hanging.close();
  });

  it('answers /healthz 200 and /readyz 200 without a session cookie or the CSRF header', async () => {
    const health = await fetch(`${stack.gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${stack.gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect(ready.headers.get('cache-control')).toBe('no-store');
  });

  it('serves /metrics as Prometheus text without a session cookie or the CSRF header, with Node process metrics', async () => {
    const res = await fetch(`${stack.gateway.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(sample(text, name)).toBeGreaterThanOrEqual(0);
    }
    expect(text).toContain('# TYPE bff_http_request_duration_seconds histogram');
  });

  it('counts a successful login with code none and shows the session in bff_active_sessions', async () => {
    const before = await metricsText();
    await stack.signedIn();
    const after = await metricsText();
    expect(sample(after, 'bff_logins_total', { outcome: 'success', code: 'none' })).toBe((sample(before, 'bff_logins_total', { outcome: 'success', code: 'none' }) ?? 0) + 1);
    expect(sample(after, 'bff_active_sessions')).toBe((sample(before, 'bff_active_sessions') ?? 0) + 1);
  });

  it('counts a failed login under its problem code', async () => {
    const labels = { outcome: 'failure', code: 'login_state_mismatch' };
    const before = await count('bff_logins_total', labels);
    const query = new URLSearchParams({ state: 'forged', code: 'forged', iss: stack.op.issuer });
    const res = await fetch(`${stack.gateway.url}/auth/callback?${query.toString()}`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(await count('bff_logins_total', labels)).toBe(before + 1);
  });

  it('counts a token refresh by result', async () => {
    const browser = await stack.signedIn();
    const before = await count('bff_token_refresh_total', { result: 'refreshed' });
    expect((await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    expect(await count('bff_token_refresh_total', { result: 'refreshed' })).toBe(before + 1);
  });

  it('counts upstream errors by kind: unavailable (502) and timeout (504)', async () => {
    const browser = await stack.signedIn();
    const before = { unavailable: await count('bff_upstream_errors_total', { kind: 'unavailable' }), timeout: await count('bff_upstream_errors_total', { kind: 'timeout' }) };
    expect((await browser.request(`${stack.gateway.url}/api/dead/x`, { headers: { 'x-csrf': '1' } })).status).toBe(502);
    expect((await browser.request(`${stack.gateway.url}/api/hangs/x`, { headers: { 'x-csrf': '1' } })).status).toBe(504);
    expect(await count('bff_upstream_errors_total', { kind: 'unavailable' })).toBe(before.unavailable + 1);
    expect(await count('bff_upstream_errors_total', { kind: 'timeout' })).toBe(before.timeout + 1);
  });

  it('records request durations by route group and status class, proxied API calls included', async () => {
    const browser = await stack.signedIn();
    const histogram = 'bff_http_request_duration_seconds_count';
    const cases: Array<[string, () => Promise<Response>, Record<string, string>]> = [
      ['auth', () => browser.request(`${stack.gateway.url}/auth/me`), { group: 'auth', status_class: '2xx' }],
      ['auth 401', () => fetch(`${stack.gateway.url}/auth/me`), { group: 'auth', status_class: '4xx' }],
      ['api', () => browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1' } }), { group: 'api', status_class: '2xx' }],
      ['api 403', () => browser.request(`${stack.gateway.url}/api/whoami`), { group: 'api', status_class: '4xx' }],
      ['spa', () => fetch(`${stack.gateway.url}/`, { headers: { accept: 'text/html' } }), { group: 'spa', status_class: '2xx' }],
      ['ops', () => fetch(`${stack.gateway.url}/healthz`), { group: 'ops', status_class: '2xx' }],
    ];
    for (const [what, call, labels] of cases) {
      const before = await count(histogram, labels);
      const res = await call();
      await res.body?.cancel();
      // the sample is recorded when the response has ended, which the client may see first
      await eventually(async () => ((await count(histogram, labels)) > before ? true : undefined), 5_000, `a ${what} sample`);
    }
  });
});

describe('/metrics on METRICS_PORT', () => {
  let gateway: RunningGateway;
  let metricsPort: number;
  beforeAll(async () => {
    metricsPort = await freePort();
    gateway = await startGateway({ METRICS_PORT: String(metricsPort), HOST: '127.0.0.1' });
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('serves the metrics on their own port and not on the public one', async () => {
    const text = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(text).toContain('# TYPE bff_logins_total counter');
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect((await fetch(`${gateway.url}/metrics`, { headers: { accept: 'application/json' } })).status).toBe(404);
    // the probes are served there too (outside the public port's connection caps); nothing else is
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/auth/me`)).status).toBe(404);
  });
});

describe('/readyz and the session store', () => {
  let redis: RunningRedis;
  let stack: Stack;
  beforeAll(async () => {
    redis = await startRedis();
    stack = await startStack({ SESSION_STORE: 'redis', REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await stack.stop();
    await redis.close();
  });

  it('answers 503 naming session_store while Redis is down, and 200 once it is back', async () => {
    await redis.stop();
    const down = await eventually(async () => {
      const res = await fetch(`${stack.gateway.url}/readyz`);
      return res.status === 503 ? res : undefined;
    });
    expect(await down.json()).toEqual({ status: 'not_ready', missing: ['session_store'] });
    expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
    await redis.restart();
    await waitUntilReady(stack.gateway.url);
  });
});
