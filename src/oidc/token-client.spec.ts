import { systemClock } from '../common/clock.js';
import { loadConfig } from '../config/config.js';
import { Tracing } from '../tracing/tracing.js';
import { testEnvironment } from '../../test/support/test-env.js';
import type { ClientAuthentication } from './client-auth.js';
import { ClientAuthenticationFailedError, ProviderUnavailableError } from './oidc.errors.js';
import type { DiscoveryDocument, LoadedProvider } from './provider-metadata.js';
import { TokenClient } from './token-client.js';

const config = loadConfig(testEnvironment());
const document = { issuer: 'https://op.example', revocation_endpoint: 'https://op.example/revoke' } as const;
const provider: Pick<LoadedProvider, 'document'> = { document: document as unknown as DiscoveryDocument };

/** A TokenClient whose every provider request gets `answer`. */
function clientAnswering(answer: () => Response): TokenClient {
  const auth: Pick<ClientAuthentication, 'post'> = { post: () => Promise.resolve(answer()) };
  return new TokenClient(config, { get: () => provider as LoadedProvider }, systemClock, new Tracing(config), auth as ClientAuthentication);
}

describe('TokenClient.revoke (RFC 7009) answers by the one outcome table', () => {
  it('resolves true on 200, whatever the body', async () => {
    await expect(clientAnswering(() => new Response('', { status: 200 })).revoke('rt', 'refresh_token')).resolves.toBe(true);
  });

  it('names a refused client (401 invalid_client) as client authentication, not as a provider outage', async () => {
    const refused = clientAnswering(() => Response.json({ error: 'invalid_client' }, { status: 401 })).revoke('rt', 'refresh_token');
    await expect(refused).rejects.toBeInstanceOf(ClientAuthenticationFailedError);
  });

  it('keeps 5xx and 429 a provider outage', async () => {
    for (const status of [500, 503, 429]) {
      await expect(clientAnswering(() => new Response('busy', { status })).revoke('rt', 'refresh_token')).rejects.toBeInstanceOf(ProviderUnavailableError);
    }
  });
});
