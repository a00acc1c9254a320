import { generateKeyPairSync } from 'node:crypto';
import { loadConfig, type Environment } from '../config/config.js';
import { displayUrl, summarizeConfig } from './config-summary.js';

const CLIENT_SECRET = 'summary-client-secret';
const SESSION_SECRET = 'summary-session-secret-0123456789abcdef';
const REDIS_PASSWORD = 'summary-redis-password';

const environment: Environment = {
  OIDC_ISSUER: 'https://op.example.com',
  OIDC_CLIENT_ID: 'gateway',
  OIDC_CLIENT_SECRET: CLIENT_SECRET,
  OIDC_EXTRA_AUTH_PARAMS: 'audience=https://api.example.com&resource_secretish=hidden-value',
  SESSION_SECRET: `${SESSION_SECRET},${SESSION_SECRET}-previous`,
  SESSION_STORE: 'redis',
  REDIS_URL: `redis://default:${REDIS_PASSWORD}@redis.internal:6379/0`,
  PUBLIC_URL: 'https://app.example.com',
  PROXY_ROUTES: '[{"prefix":"/api/orders","target":"https://svc:svc-password@orders.internal","stripPrefix":true},{"prefix":"/api","target":"http://api.internal:8080"}]',
  TRUST_PROXY: '10.0.0.0/8',
  METRICS_PORT: '9464',
};

describe('summarizeConfig', () => {
  const text = summarizeConfig(loadConfig(environment)).join('\n');

  it('names no secret: client secret, session secrets and passwords show as "set" or are hidden', () => {
    for (const secret of [CLIENT_SECRET, SESSION_SECRET, REDIS_PASSWORD, 'svc-password', 'hidden-value']) expect(text).not.toContain(secret);
    expect(text).toContain('client secret set');
    expect(text).toContain('2 session secret(s)');
  });

  it('shows where the gateway will connect, with credentials removed from URLs', () => {
    expect(text).toContain('redis redis://redis.internal:6379/0 (credentials hidden)');
    expect(text).toContain('/api/orders -> https://orders.internal/ (credentials hidden) (prefix stripped), /api -> http://api.internal:8080/');
    expect(text).toContain('extra parameters: audience, resource_secretish');
    expect(text).toContain('/metrics on port 9464 only');
    expect(text).toContain('trusted proxies: 10.0.0.0/8');
  });

  it('names the sentinels and the primary, or the cluster nodes, instead of a URL', () => {
    const { REDIS_URL: _url, ...withoutUrl } = environment;
    const sentinel = summarizeConfig(loadConfig({ ...withoutUrl, REDIS_SENTINELS: 's-1:26379,[::1]:26380', REDIS_SENTINEL_NAME: 'sessions' })).join('\n');
    const cluster = summarizeConfig(loadConfig({ ...withoutUrl, REDIS_CLUSTER_NODES: 'n-1:7000,n-2:7001' })).join('\n');
    expect(sentinel).toContain('redis primary "sessions" via sentinels s-1:26379, [::1]:26380 (key prefix bff:, REDIS_PASSWORD not set)');
    expect(cluster).toContain('redis cluster n-1:7000, n-2:7001 (key prefix bff:');
  });

  it('names the provider settings that differ from the defaults (Auth0, Entra ID, Keycloak, Google)', () => {
    const tuned = summarizeConfig(
      loadConfig({
        ...environment,
        OIDC_END_SESSION_URL: 'https://t.auth0.com/v2/logout',
        OIDC_END_SESSION_REDIRECT_PARAM: 'returnTo',
        OIDC_ALLOWED_TENANTS: 'tenant-a',
        OIDC_LOGIN_PARAMS_ALLOWED: 'kc_idp_hint',
        OIDC_ACR_VALUES_ALLOWED: 'gold,silver',
        OIDC_USERINFO: 'true',
      }),
    ).join('\n');
    expect(tuned).toContain('; tenants tenant-a; end session at https://t.auth0.com/v2/logout (returnTo)');
    expect(tuned).toContain('; forwarded from /auth/login: kc_idp_hint; step-up to gold, silver; userinfo claims merged');
    expect(text).not.toMatch(/tenants|end session at|forwarded from|step-up|userinfo/);
  });

  it('shows private_key_jwt by key id and algorithm, and the profile, never key material', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const config = loadConfig({ ...environment, OIDC_CLIENT_SECRET: undefined, OIDC_PROFILE: 'fapi2', OIDC_CLIENT_PRIVATE_KEY: pem, OIDC_CLIENT_KEY_ID: 'bff-2026' });
    const summary = summarizeConfig(config).join('\n');
    expect(summary).toContain('(private_key_jwt, aud issuer, keys bff-2026 (EdDSA)); profile fapi2; PAR always; DPoP');
    expect(summary).not.toContain(pem.split('\n')[1] ?? 'unreachable');
  });

  it('fits on one screen', () => {
    expect(text.split('\n').length).toBeLessThanOrEqual(14);
  });
});

describe('displayUrl', () => {
  it('leaves a URL without credentials as it is', () => {
    expect(displayUrl('https://op.example.com/realms/x')).toBe('https://op.example.com/realms/x');
  });
});
