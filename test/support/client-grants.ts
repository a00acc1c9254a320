import type { DpopKey } from '../../src/oidc/dpop.js';

/** How a test authenticates as the gateway's client: an id and secret (Basic), or form parameters (a client assertion). */
export type ClientCredentials = { readonly clientId: string; readonly secret: string } | { readonly form: Readonly<Record<string, string>> };

/** RFC 6749 §2.3.1: the id and secret are form-urlencoded before Base64. */
function basicAuthorization(clientId: string, secret: string): string {
  const formEncoded = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2);
  return `Basic ${Buffer.from(`${formEncoded(clientId)}:${formEncoded(secret)}`).toString('base64')}`;
}

/**
 * A refresh_token grant the test sends to the provider as the client itself, to see whether a grant
 * the gateway held still lives (200) or was revoked or rotated away (400 invalid_grant). With `dpop`,
 * the request carries a proof of that key, as a provider that binds tokens asks.
 */
export async function refreshGrantAsClient(tokenEndpoint: string, refreshToken: string | undefined, client: ClientCredentials, dpop?: DpopKey): Promise<Response> {
  const basic = 'secret' in client ? { authorization: basicAuthorization(client.clientId, client.secret) } : {};
  const proof = dpop === undefined ? {} : { dpop: dpop.proof({ htm: 'POST', htu: tokenEndpoint }, Date.now()) };
  return fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic, ...proof },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken ?? '', ...('form' in client ? client.form : {}) }),
  });
}
