import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.js';
import { spawnChild, waitForLine, type Child } from './processes.js';

export interface RedisStartOptions {
  /** AOF persistence (`--appendonly yes`), for tests that crash and restart Redis. Default false. */
  readonly appendonly?: boolean;
  /** Data directory; default a fresh temporary one, removed by close(). */
  readonly dir?: string;
  /** `--requirepass`, for tests of authentication. */
  readonly requirePass?: string;
}

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>` (no credentials, even with requirePass). */
  readonly url: string;
  readonly port: number;
  /** The current redis-server process (a new one after restart()). */
  readonly child: Child;
  /** SIGSTOP: the port stays open and connections stay up, but nothing answers. */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  /** Stops the server (SIGTERM by default; SIGKILL simulates a crash) and keeps its data directory. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the server again on the same port and directory (stopping it first if it runs). */
  restart(): Promise<void>;
  /** Stops the server and removes the data directory it created. For afterAll. */
  close(): Promise<void>;
}

const READY_LINE = /Ready to accept connections/;

/**
 * A private redis-server on a free loopback port, in its own process group. TEST_REDIS_URL
 * points the tests at an existing Redis instead (then only url and port are usable).
 */
export async function startRedis(options: RedisStartOptions = {}): Promise<RunningRedis> {
  const external = process.env['TEST_REDIS_URL'];
  if (external !== undefined && external !== '') {
    if (Object.keys(options).length > 0) throw new Error(`startRedis(${JSON.stringify(Object.keys(options))}) needs a redis-server spawned by the tests; unset TEST_REDIS_URL to run this test`);
    return externalRedis(external);
  }

  const command = findOnPath('redis-server');
  if (command === undefined) {
    throw new Error("redis-server not found: install it with 'apt-get install -y redis-server' (npm run test:all does this)");
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'bff-redis-')));
  const args = (port: number): string[] => {
    const list = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly === true ? 'yes' : 'no', '--dir', dir];
    if (options.requirePass !== undefined) list.push('--requirepass', options.requirePass);
    return list;
  };

  const started = await spawnOnFreePort(command, args);
  const port = started.port;
  let child = started.child;
  let frozen = false;

  const signal = (name: NodeJS.Signals): void => {
    const pid = child.process.pid;
    if (pid === undefined) throw new Error('redis-server has no pid');
    process.kill(-pid, name);
  };
  const running = (): boolean => child.process.exitCode === null && child.process.signalCode === null;
  const stop = async (name: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    // a stopped process acts on SIGTERM only once it runs again
    if (frozen && running()) signal('SIGCONT');
    frozen = false;
    await child.stop(name);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get child() {
      return child;
    },
    freeze() {
      signal('SIGSTOP');
      frozen = true;
    },
    thaw() {
      signal('SIGCONT');
      frozen = false;
    },
    stop,
    async restart() {
      if (running()) await stop();
      child = spawnChild(command, args(port));
      await waitUntilReady(child);
    },
    async close() {
      await stop('SIGKILL');
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilReady(child: Child): Promise<void> {
  await waitForLine(child, READY_LINE);
  // waitForLine's readline pauses stdout when it closes; a paused pipe would fill up and block Redis' logging
  child.process.stdout?.resume();
}

/** freePort() can lose a race with another process; retry a few times on "address in use". */
async function spawnOnFreePort(command: string, args: (port: number) => string[]): Promise<{ child: Child; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawnChild(command, args(port));
    try {
      await waitUntilReady(child);
      return { child, port };
    } catch (error) {
      await child.stop();
      if (attempt >= 3 || !child.output().includes('Address already in use')) throw error;
    }
  }
}

function externalRedis(url: string): RunningRedis {
  const port = Number(new URL(url).port || 6379);
  const unsupported = (what: string): Error => new Error(`${what} needs a redis-server spawned by the tests; unset TEST_REDIS_URL to run this test`);
  return {
    url,
    port,
    get child(): Child {
      throw unsupported('child');
    },
    freeze() {
      throw unsupported('freeze()');
    },
    thaw() {
      throw unsupported('thaw()');
    },
    stop() {
      return Promise.reject(unsupported('stop()'));
    },
    restart() {
      return Promise.reject(unsupported('restart()'));
    },
    // someone else's Redis: leave it running
    close: () => Promise.resolve(),
  };
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this PATH entry; try the next
    }
  }
  return undefined;
}
