/**
 * `npm run demo`: builds the gateway, then starts the demo OpenID provider, two sample APIs with
 * different audiences and the gateway (`node dist/main.js`) wired to each other, and prints where
 * to sign in. `/api/orders` goes to the orders API with a token for its own audience (a route with
 * an RFC 8707 `resource`), everything else under `/api` to the main API. Ctrl-C (or SIGTERM) stops
 * them all.
 *
 * Environment (all optional): PORT (3000, the gateway), DEMO_PROVIDER_PORT (4000), DEMO_API_PORT (4001),
 * DEMO_ORDERS_API_PORT (4002),
 * HOST (127.0.0.1 for the gateway here), LOG_FORMAT (pretty), DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
 * DEMO_API_AUDIENCE, DEMO_ACCESS_TOKEN_TTL_S, DEMO_TOKEN_ENDPOINT_AUTH_METHOD (see demo/provider.ts);
 * any other gateway variable (SESSION_STORE, REDIS_URL, ...) is passed through.
 *
 * Self-contained on purpose: the demo does not import from test/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STOP_GRACE_MS = 10_000;
const GATEWAY_START_TIMEOUT_MS = 30_000;

interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Resolves with the first stdout line matching `pattern`; rejects if the service exits first. */
  waitForLine(pattern: RegExp): Promise<RegExpMatchArray>;
}

/** Starts a child in its own process group (so stopping it stops its children) and prefixes its output. */
function startService(name: string, args: string[], env: NodeJS.ProcessEnv): Service {
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const exited = once(child, 'exit').then(() => undefined);
  const waiters = new Set<{ pattern: RegExp; resolve: (match: RegExpMatchArray) => void }>();
  const prefix = `[${name}] `;
  if (child.stdout !== null) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      process.stdout.write(`${prefix}${line}\n`);
      for (const waiter of waiters) {
        const match = line.match(waiter.pattern);
        if (match !== null) {
          waiters.delete(waiter);
          waiter.resolve(match);
        }
      }
    });
  }
  if (child.stderr !== null) createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`${prefix}${line}\n`));
  return {
    name,
    child,
    exited,
    waitForLine: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.add({ pattern, resolve });
        void exited.then(() => reject(new Error(`${name} exited (code ${child.exitCode ?? child.signalCode}) before it was ready`)));
      }),
  };
}

async function stopService(service: Service): Promise<void> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const kill = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch (error) {
      // ESRCH: the group is already gone, which is what we want.
      if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
    }
  };
  kill('SIGTERM');
  const timeout = setTimeout(() => kill('SIGKILL'), STOP_GRACE_MS);
  await service.exited;
  clearTimeout(timeout);
}

/** The gateway logs rather than announcing itself: it is up once /healthz answers. */
async function waitForHealth(url: string, gateway: Service): Promise<void> {
  const deadline = Date.now() + GATEWAY_START_TIMEOUT_MS;
  let gatewayExited = false;
  void gateway.exited.then(() => (gatewayExited = true));
  while (Date.now() < deadline) {
    if (gatewayExited) throw new Error(`gateway exited (code ${gateway.child.exitCode ?? gateway.child.signalCode}) before it was ready`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ok) return;
    await delay(200);
  }
  throw new Error(`gateway did not answer ${url} within ${GATEWAY_START_TIMEOUT_MS / 1000} s`);
}

const services: Service[] = [];
let stopping = false;

async function stopAll(exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(services.map(stopService));
  process.exit(exitCode);
}

/** A service that dies on its own takes the demo down with it, rather than leaving half a demo. */
function track(service: Service): Service {
  services.push(service);
  void service.exited.then(() => {
    if (stopping) return;
    process.stderr.write(`[demo] ${service.name} exited (code ${service.child.exitCode ?? service.child.signalCode}); stopping the demo\n`);
    void stopAll(1);
  });
  return service;
}

async function main(): Promise<void> {
  const env = process.env;
  const gatewayPort = env['PORT'] ?? '3000';
  const gatewayHost = env['HOST'] ?? '127.0.0.1';
  const publicUrl = `http://localhost:${gatewayPort}`;
  const clientId = env['DEMO_CLIENT_ID'] ?? 'bff-demo';
  const clientSecret = env['DEMO_CLIENT_SECRET'] ?? 'bff-demo-secret';
  const audience = env['DEMO_API_AUDIENCE'] ?? 'urn:bff-demo:api';
  const ordersAudience = 'urn:bff-demo:orders';
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stdout.write('\n[demo] stopping\n');
      void stopAll(0);
    });
  }
  const provider = track(
    startService('provider', ['--import', 'tsx', 'demo/provider.ts'], {
      DEMO_PROVIDER_PORT: env['DEMO_PROVIDER_PORT'] ?? '4000',
      DEMO_GATEWAY_URL: publicUrl,
      DEMO_CLIENT_ID: clientId,
      DEMO_CLIENT_SECRET: clientSecret,
      DEMO_API_AUDIENCE: audience,
      // two resource servers, each with JWT access tokens for its own audience
      DEMO_RESOURCES: `${audience}=api,${ordersAudience}=orders.read`,
    }),
  );
  const [, issuer = ''] = await provider.waitForLine(/^\{"event":"listening","issuer":"([^"]+)"\}$/);

  const api = track(
    startService('api', ['--import', 'tsx', 'demo/sample-api.ts'], {
      DEMO_API_PORT: env['DEMO_API_PORT'] ?? '4001',
      DEMO_ISSUER: issuer,
      DEMO_API_AUDIENCE: audience,
    }),
  );
  const [, apiUrl = ''] = await api.waitForLine(/^\{"event":"listening","url":"([^"]+)"\}$/);
  const ordersApi = track(
    startService('orders-api', ['--import', 'tsx', 'demo/sample-api.ts'], {
      DEMO_API_PORT: env['DEMO_ORDERS_API_PORT'] ?? '4002',
      DEMO_ISSUER: issuer,
      DEMO_API_AUDIENCE: ordersAudience,
    }),
  );
  const [, ordersUrl = ''] = await ordersApi.waitForLine(/^\{"event":"listening","url":"([^"]+)"\}$/);

  const gateway = track(
    startService('gateway', ['dist/main.js'], {
      PORT: gatewayPort,
      HOST: gatewayHost,
      PUBLIC_URL: publicUrl,
      OIDC_ISSUER: issuer,
      OIDC_CLIENT_ID: clientId,
      OIDC_CLIENT_SECRET: clientSecret,
      OIDC_TOKEN_ENDPOINT_AUTH_METHOD: env['DEMO_TOKEN_ENDPOINT_AUTH_METHOD'] ?? 'client_secret_basic',
      // A fresh secret each run: sessions of an earlier run cannot be opened (and the memory store lost them anyway).
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      // each API gets a token for its own audience (the route policy's `resource`; login asks for both)
      PROXY_ROUTES: JSON.stringify([
        { prefix: '/api/orders', target: ordersUrl, resource: ordersAudience, scope: 'orders.read' },
        { prefix: '/api', target: apiUrl, resource: audience, scope: 'api' },
      ]),
      // step-up: the levels the demo provider can assert (the sample API's /api/transfers asks for the second)
      OIDC_ACR_VALUES_ALLOWED: 'urn:bff-demo:pwd,urn:bff-demo:mfa',
      LOG_FORMAT: env['LOG_FORMAT'] ?? 'pretty',
    }),
  );
  const probeHost = gatewayHost === '0.0.0.0' || gatewayHost === '::' ? '127.0.0.1' : gatewayHost.includes(':') ? `[${gatewayHost}]` : gatewayHost;
  await waitForHealth(`http://${probeHost}:${gatewayPort}/healthz`, gateway);

  process.stdout.write(
    [
      '',
      '  bff-gateway demo is running',
      '',
      `  Open        ${publicUrl}`,
      '  Sign in as  alice, with any password (the provider\'s development login page accepts any',
      '              login and any non-empty password; another login signs in as a user of that name)',
      `  Provider    ${issuer}   (login and consent pages, issuer)`,
      `  Sample API  ${apiUrl}   (reached through ${publicUrl}/api/*, audience ${audience})`,
      `  Orders API  ${ordersUrl}   (reached through ${publicUrl}/api/orders/*, audience ${ordersAudience})`,
      '',
      '  Ctrl-C stops everything.',
      '',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`[demo] ${error instanceof Error ? error.message : String(error)}\n`);
  void stopAll(1);
});
