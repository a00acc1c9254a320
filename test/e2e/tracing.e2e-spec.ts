import { cookieHeader } from '../support/raw-http.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startStack, type Stack } from '../support/stack.js';
import { eventually } from '../support/wait.js';

const SERVER = 2;
const CLIENT = 3;
const BROWSER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const BROWSER_PARENT = `00-${BROWSER_TRACE}-b7ad6b7169203331-01`;

/** The spans of one trace, once its request span (the one without a parent) has arrived. */
async function traceOf(receiver: OtlpReceiver, isRoot: (span: ReceivedSpan) => boolean, childNames: readonly string[]): Promise<{ root: ReceivedSpan; spans: ReceivedSpan[] }> {
  return eventually(
    () => {
      const root = receiver.spans.find(isRoot);
      if (root === undefined) return Promise.resolve(undefined);
      const spans = receiver.spans.filter((s) => s.traceId === root.traceId);
      return Promise.resolve(childNames.every((name) => spans.some((s) => s.name === name)) ? { root, spans } : undefined);
    },
    15_000,
    'the trace reached the receiver',
  );
}

function childrenOf(spans: readonly ReceivedSpan[], parent: ReceivedSpan): ReceivedSpan[] {
  return spans.filter((s) => s.parentSpanId === parent.spanId);
}

describe.each([
  { trustIncoming: false, what: 'a browser traceparent linked only' },
  { trustIncoming: true, what: 'TRACING_TRUST_INCOMING=true' },
])('OpenTelemetry traces over OTLP/HTTP ($what)', ({ trustIncoming }) => {
  let receiver: OtlpReceiver;
  let stack: Stack;
  let cookie: string;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    stack = await startStack({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'bff-under-test', TRACING_TRUST_INCOMING: String(trustIncoming), LOG_LEVEL: 'warn' });
    cookie = await cookieHeader(await stack.signedIn('alice'), stack.gateway.url);
  });
  afterAll(async () => {
    await stack.stop();
    await receiver.close();
  });

  it('traces the login callback: the code exchange and the session store under the request span', async () => {
    const { root, spans } = await traceOf(receiver, (s) => s.name === 'GET auth' && s.attributes['http.route'] === '/auth/callback', ['oidc.token', 'session_store.create']);
    expect(root).toMatchObject({ kind: SERVER, parentSpanId: '', service: 'bff-under-test' });
    expect(root.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/auth/callback', 'http.response.status_code': '302' });
    const children = childrenOf(spans, root);
    expect(children.find((s) => s.name === 'oidc.token')?.attributes).toMatchObject({ 'oauth.grant_type': 'authorization_code', 'oauth.outcome': 'success' });
    expect(children.map((s) => s.name)).toContain('session_store.create');
  });

  it('traces an /api call: one store read and the upstream call, whose traceparent the upstream receives', async () => {
    const res = await fetch(`${stack.gateway.url}/api/whoami`, { headers: { cookie, 'x-csrf': '1', traceparent: BROWSER_PARENT, tracestate: 'vendor=browser', baggage: 'user=alice' } });
    expect(res.status).toBe(200);
    const { root, spans } = await traceOf(receiver, (s) => s.name === 'GET api' && s.attributes['url.path'] === '/api/whoami', ['session_store.get', 'upstream /api']);
    if (trustIncoming) {
      expect(root).toMatchObject({ traceId: BROWSER_TRACE, parentSpanId: 'b7ad6b7169203331', links: [] });
    } else {
      expect(root.traceId).not.toBe(BROWSER_TRACE);
      expect(root.parentSpanId).toBe('');
      expect(root.links).toEqual([{ traceId: BROWSER_TRACE, spanId: 'b7ad6b7169203331' }]);
    }
    const upstreamSpan = childrenOf(spans, root).find((s) => s.name === 'upstream /api');
    expect(upstreamSpan).toMatchObject({ kind: CLIENT, attributes: { 'http.response.status_code': '200' } });
    expect(childrenOf(spans, root).filter((s) => s.name.startsWith('session_store.')).map((s) => s.name)).toEqual(['session_store.get']);
    // the upstream sees the gateway's context: the browser's tracestate only as part of a trusted
    // parent (W3C: it travels with its trace), its baggage never
    const seen = stack.upstream.received.filter((r) => r.url === '/api/whoami').at(-1);
    expect(seen?.headers['traceparent']).toBe(`00-${root.traceId}-${upstreamSpan?.spanId ?? ''}-01`);
    expect(seen?.headers['tracestate']).toBe(trustIncoming ? 'vendor=browser' : undefined);
    expect(seen?.headers['baggage']).toBeUndefined();
  });

  it('puts no cookie, token, code or state in any exported span', async () => {
    await traceOf(receiver, (s) => s.name === 'GET api', ['upstream /api']);
    const everything = receiver.raw.join('\n');
    const sealed = decodeURIComponent(cookie.split('=').slice(1).join('='));
    expect(everything).not.toContain(sealed.slice(0, 24));
    const authorization = stack.upstream.received.find((r) => r.headers.authorization !== undefined)?.headers.authorization ?? '';
    expect(authorization.length).toBeGreaterThan(20);
    expect(everything).not.toContain(authorization.slice('Bearer '.length, 'Bearer '.length + 24));
    expect(everything).not.toMatch(/[?&](code|state)=/);
  });
});

describe('tracing off', () => {
  it('sends no traceparent upstream without an OTLP endpoint', async () => {
    const stack = await startStack({ LOG_LEVEL: 'warn' });
    try {
      const browser = await stack.signedIn('alice');
      const res = await browser.request(`${stack.gateway.url}/api/whoami`, { headers: { 'x-csrf': '1', traceparent: BROWSER_PARENT } });
      expect(res.status).toBe(200);
      expect(stack.upstream.received.filter((r) => r.url === '/api/whoami').at(-1)?.headers['traceparent']).toBeUndefined();
    } finally {
      await stack.stop();
    }
  });
});
