import type { Environment } from '../../src/config/config.js';

export const TEST_SESSION_SECRET = 'test-session-secret-0123456789abcdef';

/** A complete, valid environment; tests override what they exercise. */
export function testEnvironment(overrides: Environment = {}): Environment {
  return {
    OIDC_ISSUER: 'http://127.0.0.1:9/unreachable',
    OIDC_CLIENT_ID: 'bff-test',
    OIDC_CLIENT_SECRET: 'bff-test-secret',
    SESSION_SECRET: TEST_SESSION_SECRET,
    UPSTREAM_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'debug',
    OIDC_DISCOVERY_TIMEOUT_S: '2',
    ...overrides,
  };
}

/** The client a gateway uses at a test provider (oidc-provider's op.ts and the rogue provider alike). */
export interface TestClient {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/** A replica on port `port` sharing the Redis at `redisUrl`, in front of `upstreamUrl`, at `op`. */
export function redisReplicaEnvironment(port: string, op: TestClient, upstreamUrl: string, redisUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: port,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    OIDC_ISSUER: op.issuer,
    OIDC_CLIENT_ID: op.clientId,
    OIDC_CLIENT_SECRET: op.clientSecret,
    UPSTREAM_URL: upstreamUrl,
    SESSION_STORE: 'redis',
    REDIS_URL: redisUrl,
    ...extra,
  };
}
