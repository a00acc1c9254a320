import type { Environment } from '../../src/config/config.js';
import { BrowserClient } from './browser.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { startOp, type OpOptions, type RunningOp } from './op.js';
import { freePort } from './ports.js';
import { startUpstream, type RunningUpstream } from './upstream.js';
import { waitUntilReady } from './wait.js';

export interface Stack {
  readonly op: RunningOp;
  readonly upstream: RunningUpstream;
  readonly gateway: RunningGateway;
  /** A fresh browser (empty cookie jar). */
  browser(): BrowserClient;
  /** A browser signed in as `login` through the real provider, with its /auth/me logoutUrl. */
  signedIn(login?: string): Promise<BrowserClient>;
  stop(): Promise<void>;
}

/**
 * The real provider (its own process), a real upstream that verifies the Bearer token, and the real
 * gateway in this process, wired together on free loopback ports. `gatewayHost` is the host of the
 * gateway's PUBLIC_URL: `localhost` puts it on another site than pages served from 127.0.0.1.
 * `opOptions` may depend on the gateway's URL (a client registered with its /auth/jwks.json).
 */
export async function startStack(
  env: Environment | ((upstreamUrl: string) => Environment) = {},
  opOptions: Partial<OpOptions> | ((gatewayUrl: string) => Partial<OpOptions>) = {},
  gatewayHost: 'localhost' | '127.0.0.1' = '127.0.0.1',
): Promise<Stack> {
  const port = await freePort();
  const gatewayUrl = `http://${gatewayHost}:${port}`;
  const op = await startOp({ gatewayUrl, ...(typeof opOptions === 'function' ? opOptions(gatewayUrl) : opOptions) });
  const upstream = await startUpstream(op);
  const gateway = await startGateway({
    PORT: String(port),
    PUBLIC_URL: gatewayUrl,
    OIDC_ISSUER: op.issuer,
    OIDC_CLIENT_ID: op.clientId,
    OIDC_CLIENT_SECRET: op.clientSecret,
    UPSTREAM_URL: upstream.url,
    ...(typeof env === 'function' ? env(upstream.url) : env),
  });
  await waitUntilReady(gateway.url);
  return {
    op,
    upstream,
    gateway,
    browser: () => new BrowserClient(),
    async signedIn(login = 'alice') {
      const browser = new BrowserClient();
      await browser.signIn(gateway.url, { login });
      return browser;
    },
    async stop() {
      await gateway.close();
      await upstream.close();
      await op.stop();
    },
  };
}
