import { ProviderUnavailableError } from './oidc.errors.js';

/**
 * GET a JSON document from the provider. Network errors, time-outs, non-2xx and non-JSON answers
 * all mean "the provider is unavailable" (503), never a 500.
 */
export async function fetchJson(url: string, timeoutS: number): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutS * 1000), redirect: 'error' });
  } catch (error) {
    throw new ProviderUnavailableError(`The identity provider did not answer at ${url}.`, error);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new ProviderUnavailableError(`The identity provider answered ${response.status} at ${url}.`);
  }
  try {
    return await response.json();
  } catch (error) {
    throw new ProviderUnavailableError(`The identity provider sent malformed JSON at ${url}.`, error);
  }
}
