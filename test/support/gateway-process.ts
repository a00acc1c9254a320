import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testEnvironment } from './test-env.js';
import { freePort } from './ports.js';
import { spawnChild, type Child } from './processes.js';
import { eventually } from './wait.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface GatewayProcess {
  readonly url: string;
  readonly child: Child;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs the built gateway (`node dist/main.js`, as `npm start` and the image do) as its own process:
 * for exit codes, signals, restarts and memory measured apart from Jest. `npm test` builds first.
 */
export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = env['PORT'] ?? String(await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child = spawnChild(process.execPath, [MAIN], {
    ...testEnvironment({ PUBLIC_URL: url, HOST: '127.0.0.1' }),
    PORT: port,
    LOG_LEVEL: 'info',
    ...env,
  });
  // poll rather than wait for the "started" log line: tests may run it with LOG_LEVEL=warn
  await eventually(
    async () => {
      if (child.process.exitCode !== null) throw new Error(`gateway exited with ${child.process.exitCode}:\n${child.output()}`);
      return (await fetch(`${url}/healthz`)).ok ? true : undefined;
    },
    20_000,
    `gateway process at ${url} serving /healthz`,
  ).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${child.output()}`);
  });
  return { url, child, stop: (signal) => child.stop(signal) };
}

/** Runs `node dist/main.js` to completion (for start-up failures) and returns its exit code and output. */
export async function runGatewayToExit(env: Record<string, string | undefined>, args: readonly string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}
