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
