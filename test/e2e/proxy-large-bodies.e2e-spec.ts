import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { BrowserClient } from '../support/browser.js';
import { startBehaviourUpstream, type TestUpstream } from '../support/fault-upstreams.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startOp, type RunningOp } from '../support/op.js';
import { freePort } from '../support/ports.js';
import { cookieHeader } from '../support/raw-http.js';
import { startStack, type Stack } from '../support/stack.js';
import { waitUntilReady } from '../support/wait.js';

const MB = 1024 * 1024;

/** Peak resident set size of a process (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kb) * 1024;
}

/** Streams `bytes` of a repeating pattern as the request body, never holding it in memory. */
function upload(url: string, headers: Record<string, string>, bytes: number, chunked = false): Promise<{ status: number; body: string; sentSha256: string }> {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(64 * 1024, 'bff-');
  let remaining = bytes;
  const body = new Readable({
    read() {
      if (remaining === 0) {
        this.push(null);
        return;
      }
      const part = remaining >= chunk.length ? chunk : chunk.subarray(0, remaining);
      remaining -= part.length;
      hash.update(part);
      this.push(part);
    },
  });
  return new Promise((resolve, reject) => {
    const framing = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(bytes) };
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream', ...framing } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, sentSha256: hash.digest('hex') }));
    });
    // a gateway that refuses the body early may close the socket while it is still being sent
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    body.pipe(req);
  });
}

/** Downloads and hashes the body as it streams. */
function download(url: string, headers: Record<string, string>): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }));
    })
      .on('error', reject)
      .end();
  });
}

function expectedDownloadSha(bytes: number): string {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(64 * 1024, 7);
  for (let left = bytes; left > 0; left -= chunk.length) hash.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
  return hash.digest('hex');
}

describe('large bodies stream through the gateway process', () => {
  let op: RunningOp;
  let upstream: TestUpstream;
  let gateway: GatewayProcess;
  let headers: Record<string, string>;

  beforeAll(async () => {
    const port = String(await freePort());
    op = await startOp({ gatewayUrl: `http://127.0.0.1:${port}` });
    upstream = await startBehaviourUpstream();
    gateway = await startGatewayProcess({ PORT: port, OIDC_ISSUER: op.issuer, OIDC_CLIENT_ID: op.clientId, OIDC_CLIENT_SECRET: op.clientSecret, UPSTREAM_URL: upstream.url, LOG_LEVEL: 'warn' });
    await waitUntilReady(gateway.url);
    const browser = new BrowserClient();
    await browser.signIn(gateway.url);
    headers = { cookie: await cookieHeader(browser, gateway.url), 'x-csrf': '1' };
  });
  afterAll(async () => {
    await gateway.stop();
    await upstream.close();
    await op.stop();
  });

  /** Sends `bytes` up and down through the gateway and checks both arrived byte for byte. */
  async function roundTrip(bytes: number): Promise<void> {
    const up = await upload(`${gateway.url}/api/upload`, headers, bytes);
    expect(up.status).toBe(200);
    const seen = JSON.parse(up.body) as { bodyBytes: number; bodySha256: string };
    expect(seen.bodyBytes).toBe(bytes);
    expect(seen.bodySha256).toBe(up.sentSha256);
    const down = await download(`${gateway.url}/api/download?bytes=${bytes}`, headers);
    expect(down.status).toBe(200);
    expect(down.bytes).toBe(bytes);
    expect(down.sha256).toBe(expectedDownloadSha(bytes));
  }

  it('passes 100 MB and then 300 MB up and down byte for byte, its peak RSS not growing with the size of the body', async () => {
    const pid = gateway.child.process.pid ?? 0;
    await roundTrip(1 * MB);
    const peakAfterSmall = peakRss(pid);
    await roundTrip(100 * MB);
    const peakAfter100 = peakRss(pid);
    await roundTrip(300 * MB);
    const peakAfter300 = peakRss(pid);
    const growth100 = peakAfter100 - peakAfterSmall;
    const growth300 = peakAfter300 - peakAfterSmall;
    // the figures are part of the issue's evidence
    console.log(`gateway peak RSS: ${(peakAfterSmall / MB).toFixed(1)} MB after 1 MB, +${(growth100 / MB).toFixed(1)} MB after 100 MB, +${(growth300 / MB).toFixed(1)} MB after 300 MB up and down`);
    // Streaming, not buffering: a buffering proxy grows by the body's size (at least +200 MB between
    // the two transfers); a streaming one stays near where the runtime's heap sizing put it after the
    // first (Node 24's larger young generation and lazier collection of external buffers account for
    // tens of MB on the first large transfer and up to ~35 MB of noise after it on a busy machine,
    // so the bound sits halfway between that noise and what buffering costs).
    expect(growth100).toBeLessThan(80 * MB);
    expect(peakAfter300 - peakAfter100).toBeLessThan(100 * MB);
    // 800 MB through three processes on a shared 2-core machine: a budget, not a speed assertion
  }, 240_000);
});

describe('API_MAX_BODY_MB', () => {
  let stack: Stack;
  let headers: Record<string, string>;
  beforeAll(async () => {
    stack = await startStack({ API_MAX_BODY_MB: '1' });
    headers = { cookie: await cookieHeader(await stack.signedIn(), stack.gateway.url), 'x-csrf': '1' };
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('answers 413 to a declared body over the limit and forwards nothing', async () => {
    const before = stack.upstream.received.length;
    const res = await upload(`${stack.gateway.url}/api/upload`, headers, 2 * MB);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    expect(stack.upstream.received.length).toBe(before);
  });

  it('answers 413 to a chunked body that grows over the limit while streaming', async () => {
    const res = await upload(`${stack.gateway.url}/api/upload`, headers, 3 * MB, true);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    expect((await fetch(`${stack.gateway.url}/healthz`)).status).toBe(200);
  });

  it('passes a body under the limit', async () => {
    expect((await upload(`${stack.gateway.url}/api/upload`, headers, MB / 2)).status).toBe(200);
  });
});
