import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface Child {
  readonly process: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Kills the child's whole process group and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns a child in its own process group, so a failed test never leaves a grandchild holding
 * Jest (and CI) open: stop() kills the group.
 */
export function spawnChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(command, [...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit').then(() => undefined);
  return {
    process: child,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone: exit has fired or is about to
        }
        await exited;
      }
    },
  };
}

/** Resolves with the first stdout line that matches, or rejects when the child exits or the deadline passes. */
export async function waitForLine(child: Child, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const output = child.process.stdout;
  if (output === null) throw new Error('child has no stdout');
  const stdout = output;
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stdout });
    const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${child.output()}`)), timeoutMs);
    const onExit = (): void => finish(new Error(`child exited before printing ${pattern}; output:\n${child.output()}`));
    function finish(error: Error | undefined, match?: RegExpMatchArray): void {
      clearTimeout(timer);
      lines.close();
      // readline pauses its input on close; a paused pipe fills up and blocks a chatty child
      stdout.resume();
      child.process.off('exit', onExit);
      if (error === undefined && match !== undefined) resolve(match);
      else reject(error ?? new Error('unreachable'));
    }
    lines.on('line', (line) => {
      const match = line.match(pattern);
      if (match !== null) finish(undefined, match);
    });
    child.process.once('exit', onExit);
  });
}
