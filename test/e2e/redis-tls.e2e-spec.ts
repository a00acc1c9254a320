import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { freePort } from '../support/ports.js';
import { spawnChild, waitForLine, type Child } from '../support/processes.js';
import { eventually } from '../support/wait.js';

/** A throw-away CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=bff-test-ca');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.cnf');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

async function missingParts(gateway: GatewayProcess): Promise<string[]> {
  return ((await (await fetch(`${gateway.url}/readyz`)).json()) as { missing: string[] }).missing;
}

describe('Redis over TLS (rediss://)', () => {
  let dir: string;
  let redis: Child;
  let url: string;
  let ca: string;
  const gateways: GatewayProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bff-redis-tls-'));
    const certs = makeCertificates(dir);
    ca = certs.ca;
    const port = await freePort();
    // TLS only: the plain port is off, so a working connection proves the TLS path
    redis = spawnChild('redis-server', [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no',
    ]);
    await waitForLine(redis, /Ready to accept connections/);
    url = `rediss://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects to a TLS-only Redis whose certificate the process trusts', async () => {
    const gateway = await startGatewayProcess({ SESSION_STORE: 'redis', REDIS_URL: url, NODE_EXTRA_CA_CERTS: ca });
    gateways.push(gateway);
    // the provider is deliberately unreachable: readiness then names only what is really missing
    const missing = await eventually(async () => {
      const parts = await missingParts(gateway);
      return parts.includes('session_store') ? undefined : parts;
    }, 15_000, 'session store ready over TLS');
    expect(missing).toEqual(['oidc_discovery']);
  });

  it('refuses a Redis certificate it cannot verify (TLS is not downgraded to trust-anything)', async () => {
    const gateway = await startGatewayProcess({ SESSION_STORE: 'redis', REDIS_URL: url });
    gateways.push(gateway);
    expect(await missingParts(gateway)).toEqual(expect.arrayContaining(['oidc_discovery', 'session_store']));
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });
});
