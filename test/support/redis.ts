import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { spawnChild, waitForLine, type Child } from './processes.js';
import { eventually } from './wait.js';

export interface RedisStartOptions {
  /** AOF persistence (`--appendonly yes`), for tests that crash and restart Redis. Default false. */
  readonly appendonly?: boolean;
  /** Data directory; default a fresh temporary one, removed by close(). */
  readonly dir?: string;
  /** `--requirepass`, for tests of authentication. */
  readonly requirePass?: string;
  /** `--replicaof 127.0.0.1 <port>`: a replica of the Redis on that port. */
  readonly replicaOf?: number;
  /** `--cluster-enabled yes` on a cluster bus port of its own (startRedisCluster joins the nodes). */
  readonly cluster?: boolean;
}

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>` (no credentials, even with requirePass). */
  readonly url: string;
  readonly port: number;
  /** The cluster bus port of a node started with `cluster: true`. */
  readonly clusterBusPort: number | undefined;
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

  const command = redisServer();
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'bff-redis-')));
  const clusterBusPort = options.cluster === true ? await freePort() : undefined;
  const args = (port: number): string[] => {
    const list = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly === true ? 'yes' : 'no', '--dir', dir];
    if (options.requirePass !== undefined) list.push('--requirepass', options.requirePass);
    if (options.replicaOf !== undefined) list.push('--replicaof', '127.0.0.1', String(options.replicaOf));
    if (clusterBusPort !== undefined) list.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(clusterBusPort), '--cluster-node-timeout', '2000');
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
    clusterBusPort,
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

async function waitUntilReady(child: Child, ready = READY_LINE): Promise<void> {
  await waitForLine(child, ready);
  // waitForLine's readline pauses stdout when it closes; a paused pipe would fill up and block Redis' logging
  child.process.stdout?.resume();
}

/** freePort() can lose a race with another process; retry a few times on "address in use". */
async function spawnOnFreePort(command: string, args: (port: number) => string[], ready = READY_LINE): Promise<{ child: Child; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawnChild(command, args(port));
    try {
      await waitUntilReady(child, ready);
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
    clusterBusPort: undefined,
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

function redisServer(): string {
  const command = findOnPath('redis-server');
  if (command === undefined) throw new Error("redis-server not found: install it with 'apt-get install -y redis-server' (npm run test:all does this)");
  return command;
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

/** Several private Redis processes started together; close() stops them all. */
export interface RedisGroup {
  close(): Promise<void>;
}

/** `host:port,host:port`: the form REDIS_CLUSTER_NODES and REDIS_SENTINELS take. */
export function addressList(nodes: readonly { readonly port: number }[]): string {
  return nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
}

async function closeAll(group: readonly { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(group.map((member) => member.close()));
}

export interface RunningRedisCluster extends RedisGroup {
  /** One master per slot range, no replicas. */
  readonly masters: readonly RunningRedis[];
}

/**
 * A Redis Cluster of `masters` nodes on free loopback ports, its 16384 slots split evenly, ready
 * (cluster_state:ok on every node) when this resolves.
 */
export async function startRedisCluster(masters = 3): Promise<RunningRedisCluster> {
  const nodes: RunningRedis[] = [];
  const clients: Redis[] = [];
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis({ cluster: true }));
    for (const node of nodes) clients.push(new Redis(node.port, '127.0.0.1', { lazyConnect: false }));
    const perNode = Math.ceil(16384 / masters);
    for (const [i, client] of clients.entries()) {
      await client.call('CLUSTER', 'ADDSLOTSRANGE', String(i * perNode), String(Math.min(16383, (i + 1) * perNode - 1)));
    }
    const [first] = clients;
    for (const node of nodes.slice(1)) await first?.call('CLUSTER', 'MEET', '127.0.0.1', String(node.port), String(node.clusterBusPort));
    await eventually(
      async () => {
        const infos = await Promise.all(clients.map((client) => client.call('CLUSTER', 'INFO')));
        return infos.every((info) => typeof info === 'string' && info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}`)) ? true : undefined;
      },
      20_000,
      'the cluster to agree on its slots',
    );
    return { masters: nodes, close: () => closeAll(nodes) };
  } catch (error) {
    await closeAll(nodes);
    throw error;
  } finally {
    for (const client of clients) client.disconnect();
  }
}

export interface RunningSentinels extends RedisGroup {
  readonly primary: RunningRedis;
  readonly replica: RunningRedis;
  readonly sentinels: readonly { readonly port: number; readonly child: Child }[];
  /** The name the sentinels monitor the primary under. */
  readonly name: string;
  /** The address the sentinels currently give for the primary. */
  primaryPort(): Promise<number>;
}

/** How long the sentinels wait before they call an unanswering primary down. */
export const SENTINEL_DOWN_AFTER_MS = 5000;

/**
 * A primary, one replica, and three sentinels (quorum 2) watching them, on free loopback ports;
 * resolves once every sentinel knows the replica and the two other sentinels, so a failover can
 * happen as soon as the primary goes.
 */
export async function startRedisSentinels(name = 'bff-sessions'): Promise<RunningSentinels> {
  const started: { close(): Promise<void> }[] = [];
  try {
    const primary = await startRedis();
    started.push(primary);
    const replica = await startRedis({ replicaOf: primary.port });
    started.push(replica);
    const sentinels: { port: number; child: Child; close(): Promise<void> }[] = [];
    for (let i = 0; i < 3; i++) {
      const sentinel = await startSentinel(name, primary.port);
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    const ask = async (port: number, ...args: string[]): Promise<unknown> => {
      const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0 });
      try {
        return await client.call('SENTINEL', ...args);
      } finally {
        client.disconnect();
      }
    };
    await eventually(
      async () => {
        for (const sentinel of sentinels) {
          const replicas = await ask(sentinel.port, 'REPLICAS', name);
          const peers = await ask(sentinel.port, 'SENTINELS', name);
          if (!Array.isArray(replicas) || replicas.length !== 1 || !Array.isArray(peers) || peers.length !== 2) return undefined;
        }
        return true;
      },
      20_000,
      'the sentinels to know the replica and each other',
    );
    return {
      primary,
      replica,
      sentinels,
      name,
      async primaryPort() {
        const [sentinel] = sentinels;
        const address = sentinel === undefined ? undefined : await ask(sentinel.port, 'GET-MASTER-ADDR-BY-NAME', name);
        if (!Array.isArray(address) || typeof address[1] !== 'string') throw new Error('the sentinels name no primary');
        return Number(address[1]);
      },
      close: () => closeAll(started),
    };
  } catch (error) {
    await closeAll(started);
    throw error;
  }
}

async function startSentinel(name: string, primaryPort: number): Promise<{ port: number; child: Child; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-sentinel-'));
  // a sentinel rewrites its configuration file: it needs one of its own, writable
  const conf = join(dir, 'sentinel.conf');
  await writeFile(
    conf,
    [
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const { child, port } = await spawnOnFreePort(redisServer(), (p) => [conf, '--sentinel', '--port', String(p)], /\+monitor master/);
  return {
    port,
    child,
    async close() {
      await child.stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
