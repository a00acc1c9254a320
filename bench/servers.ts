import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

export interface BenchServer {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** True once the process has exited without stop() having been called: a crash. */
  crashed(): boolean;
  /** The end of what the process wrote (for error messages). */
  logTail(): string;
  /** SIGTERM (so --cpu-prof can write its profile), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  readonly port: number;
  /** Polled until it answers 200. */
  readonly readyPath: string;
  /** stdout and stderr go here rather than through a pipe, so this process does not spend CPU reading logs. */
  readonly logPath: string;
}

/** Process groups started here and not yet exited, for killGroups() on Ctrl-C. */
const live = new Set<number>();

/** SIGKILLs every server still running: they run detached, so a Ctrl-C on the runner does not reach them. */
export function killGroups(extra: readonly (number | undefined)[] = []): void {
  for (const pid of [...live, ...extra]) if (pid !== undefined) signalGroup(pid, 'SIGKILL');
}

/** Starts `node <args>` in its own process group and waits until `readyPath` answers 200. */
export async function startServer(options: StartOptions): Promise<BenchServer> {
  const log = openSync(options.logPath, 'w');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...options.args], { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...options.env } });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.name} did not start`);
  let stopping = false;
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  live.add(pid);
  void exit.then(() => {
    exited = true;
    live.delete(pid);
  });
  const url = `http://127.0.0.1:${options.port}`;
  const server: BenchServer = {
    name: options.name,
    url,
    pid,
    crashed: () => exited && !stopping,
    logTail: () => readFileSync(options.logPath, 'utf8').slice(-4000),
    async stop(graceMs = 5_000) {
      stopping = true;
      if (exited) return;
      signalGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`${options.name} exited during start-up:\n${server.logTail()}`);
    const status = await fetch(`${url}${options.readyPath}`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return server;
    if (Date.now() > deadline) {
      await server.stop(0);
      throw new Error(`${options.name} not ready within 30 s:\n${server.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone: its exit event has fired or is about to
  }
}

/**
 * utime + stime of every live process in the group `pgid` (all their threads), in clock ticks, from
 * /proc/<pid>/stat. A server started here leads its own group: a cluster's workers are counted with it.
 */
export function groupCpuTicks(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // the command name (field 2) may contain spaces and parentheses: count fields after its closing one
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 5 (pgrp), 14 (utime) and 15 (stime) of proc(5), counted from field 3 (state) here
    if (Number(fields[2]) === pgid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks;
}
