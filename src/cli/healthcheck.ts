/**
 * The image's HEALTHCHECK: `node dist/cli/healthcheck.js` exits 0 when the gateway in this container
 * answers /healthz with 200, 1 otherwise. The slim Node image has no curl or wget, and this keeps the
 * probe on the same PORT/HOST variables the gateway reads.
 */
const TIMEOUT_MS = 3_000;

/** The address to probe: a wildcard bind is reachable on loopback. */
function probeUrl(env: NodeJS.ProcessEnv): string {
  const port = env['PORT'] !== undefined && env['PORT'] !== '' ? env['PORT'] : '3000';
  const host = env['HOST'] ?? '';
  const target = host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${target}:${port}/healthz`;
}

try {
  const response = await fetch(probeUrl(process.env), { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
  await response.body?.cancel();
  process.exitCode = response.status === 200 ? 0 : 1;
  if (response.status !== 200) process.stderr.write(`healthcheck: /healthz answered ${response.status}\n`);
} catch (error) {
  process.stderr.write(`healthcheck: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
