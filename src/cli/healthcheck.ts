import { loadServerAddress } from '../config/config.js';

/**
 * The image's HEALTHCHECK: `node dist/cli/healthcheck.js` exits 0 when the gateway in this container
 * answers /healthz with 200, 1 otherwise. The slim Node image has no curl or wget. The address comes from
 * the same schema entries (and defaults) the gateway binds with, and only those: a probe must not fail
 * on variables it does not need.
 */
const TIMEOUT_MS = 3_000;

/** The address to probe: a wildcard bind is reachable on loopback. */
function probeUrl({ port, host }: { readonly port: number; readonly host: string }): string {
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${target}:${port}/healthz`;
}

try {
  const response = await fetch(probeUrl(loadServerAddress(process.env)), { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  await response.body?.cancel();
  process.exitCode = response.status === 200 ? 0 : 1;
  if (response.status !== 200) process.stderr.write(`healthcheck: /healthz answered ${response.status}\n`);
} catch (error) {
  process.stderr.write(`healthcheck: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
