import { spawn } from 'node:child_process';

export interface WrkResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses outside 2xx/3xx: a proxy answering 401 or 502 fast is not a measurement. */
  readonly non2xx: number;
  readonly socketErrors: number;
  /** Response bytes (status line, headers, body) per request, from wrk's "MB read". */
  readonly bytesPerResponse: number;
}

export interface WrkOptions {
  readonly url: string;
  readonly headers: readonly string[];
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
}

/** wrk's binary units (1 KB = 1024 B). */
const BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(value: string, unit: string): number {
  const factor = UNIT_MS[unit];
  if (factor === undefined) throw new Error(`unknown wrk latency unit "${unit}"`);
  return Number(value) * factor;
}

/** Parses `wrk --latency` output: requests/s, the 50% and 99% lines, request and error counts. */
export function parseWrk(output: string): WrkResult {
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(output);
    if (match?.[1] === undefined || match[2] === undefined) throw new Error(`no ${p}% line in wrk output:\n${output}`);
    return durationMs(match[1], match[2]);
  };
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output)?.[1];
  const summary = /^\s*(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read/m.exec(output);
  const requests = summary?.[1];
  if (rps === undefined || requests === undefined) throw new Error(`no request count in wrk output:\n${output}`);
  const bytes = Number(summary?.[2] ?? 0) * (BYTES[summary?.[3] ?? 'B'] ?? 1);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? '0';
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = errors === null ? 0 : errors.slice(1).reduce((sum, n) => sum + Number(n), 0);
  return {
    requests: Number(requests),
    requestsPerSecond: Number(rps),
    p50Ms: percentile('50'),
    p99Ms: percentile('99'),
    non2xx: Number(non2xx),
    socketErrors,
    bytesPerResponse: Math.round(bytes / Number(requests)),
  };
}

/** Runs wrk to completion and parses what it printed; a non-zero exit is an error. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${options.durationS}s`, '--latency'];
  for (const header of options.headers) args.push('-H', header);
  args.push(options.url);
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${output}`);
  return parseWrk(output);
}

/** `wrk -v` prints its version and exits 1. */
export async function wrkVersion(): Promise<string> {
  const child = spawn('wrk', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  return /wrk \S+/.exec(output)?.[0] ?? 'wrk (unknown version)';
}
