import { loadConfig } from '../config/config.js';
import type { DiscoveryDocument } from '../oidc/provider-metadata.js';
import { buildAuthorizationRequest } from './authorization-request.js';
import { authorizationUrl } from './oidc.strategy.js';

const ENV = {
  OIDC_ISSUER: 'https://op.example',
  OIDC_CLIENT_ID: 'client',
  OIDC_CLIENT_SECRET: 'secret',
  OIDC_SCOPES: 'openid profile offline_access',
  PUBLIC_URL: 'https://app.example',
  SESSION_SECRET: 'x'.repeat(32),
  UPSTREAM_URL: 'https://api.example',
};
const config = loadConfig(ENV);
const document: DiscoveryDocument = {
  issuer: 'https://op.example',
  authorization_endpoint: 'https://op.example/authorize?tenant=t1',
  token_endpoint: 'https://op.example/token',
  jwks_uri: 'https://op.example/jwks',
};

describe('authorizationUrl (passport-openidconnect\'s authorization request)', () => {
  it('builds the code-flow request with the transaction\'s state and our parameters, keeping the endpoint\'s own query', async () => {
    const request = buildAuthorizationRequest(config.oidc, { prompt: 'consent', login_hint: 'bob' }, 0);
    const url = new URL(await authorizationUrl(document, config, request));
    expect(url.origin + url.pathname).toBe('https://op.example/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: 't1',
      response_type: 'code',
      client_id: 'client',
      redirect_uri: 'https://app.example/auth/callback',
      scope: 'openid profile offline_access',
      state: request.transaction.state,
      prompt: 'consent',
      login_hint: 'bob',
      ...request.params,
    });
  });

  it('settles each request on its own: concurrent requests never see each other\'s state', async () => {
    const requests = Array.from({ length: 5 }, () => buildAuthorizationRequest(config.oidc, {}, 0));
    const urls = await Promise.all(requests.map((request) => authorizationUrl(document, config, request)));
    expect(urls.map((url) => new URL(url).searchParams.get('state'))).toEqual(requests.map((r) => r.transaction.state));
  });

  it('lets a prompt on the request override one in OIDC_EXTRA_AUTH_PARAMS', async () => {
    const withPrompt = loadConfig({ ...ENV, OIDC_EXTRA_AUTH_PARAMS: 'prompt=consent&access_type=offline' });
    const fixed = new URL(await authorizationUrl(document, withPrompt, buildAuthorizationRequest(withPrompt.oidc, {}, 0)));
    expect(fixed.searchParams.get('prompt')).toBe('consent');
    const asked = new URL(await authorizationUrl(document, withPrompt, buildAuthorizationRequest(withPrompt.oidc, { prompt: 'none' }, 0)));
    expect(asked.searchParams.getAll('prompt')).toEqual(['none']);
    expect(asked.searchParams.get('access_type')).toBe('offline');
  });
});
