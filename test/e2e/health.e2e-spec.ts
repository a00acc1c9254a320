import { startGateway, type RunningGateway } from '../support/gateway.js';

describe('health and errors (no provider reachable)', () => {
  let gateway: RunningGateway;
  beforeAll(async () => {
    gateway = await startGateway();
  });
  afterAll(async () => {
    await gateway.close();
  });

  it('answers /healthz 200 while the provider is unreachable', async () => {
    const res = await fetch(`${gateway.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz 503 naming the provider discovery as missing', async () => {
    const res = await fetch(`${gateway.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; missing: string[] };
    expect(body.status).toBe('not_ready');
    expect(body.missing).toContain('oidc_discovery');
  });

  it('answers an unknown route with a 404 problem+json carrying the request id', async () => {
    const res = await fetch(`${gateway.url}/no/such/route`, { headers: { accept: 'application/json', 'x-request-id': 'trace-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('x-request-id')).toBe('trace-123');
    expect(await res.json()).toEqual({ type: '/problems/not_found', title: 'Not found', status: 404, code: 'not_found', instance: 'trace-123' });
  });

  it('replaces a malformed inbound request id with a fresh one', async () => {
    const res = await fetch(`${gateway.url}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a browser navigation to an unknown route with an HTML page of the same status', async () => {
    const res = await fetch(`${gateway.url}/auth/nowhere`, { headers: { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('<h1>Not found</h1>');
  });

  it('logs one JSON line per request with the request id, method, status and duration', async () => {
    await fetch(`${gateway.url}/healthz`, { headers: { 'x-request-id': 'log-line-check' } });
    const lines = gateway.logLines().filter((line) => line['reqId'] === 'log-line-check');
    expect(lines).toEqual([expect.objectContaining({ event: 'request', method: 'GET', url: '/healthz', status: 200, durationMs: expect.any(Number) })]);
  });
});
