import { Cluster, Redis, type RedisOptions } from 'ioredis';

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
}

/** How the store reaches Redis: one server (or a primary behind one address), Sentinel, or Cluster. */
export type RedisConnection =
  | { /** `redis://` or `rediss://` (TLS); may carry a username, password and database number. */ readonly url: string }
  | { readonly sentinels: readonly RedisNodeAddress[]; /** The primary's name at the sentinels. */ readonly sentinelName: string }
  | { /** Seed nodes; ioredis discovers the rest and follows slot moves. */ readonly clusterNodes: readonly RedisNodeAddress[] };

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** Overrides any password in a URL; the data nodes' password for Sentinel and Cluster. */
  readonly password: string | undefined;
  readonly commandTimeoutMs: number;
}

const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 2000;

// Never give up: the process must serve again when Redis returns, however long it was gone.
const reconnectDelay = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt - 1, 10), MAX_RECONNECT_DELAY_MS);

/** True for a client that spreads keys over a Redis Cluster (its scripts must keep to one hash slot). */
export function isCluster(connection: RedisConnection): connection is Extract<RedisConnection, { clusterNodes: unknown }> {
  return 'clusterNodes' in connection;
}

/**
 * The ioredis client for `connection`, with the store's failure policy: each command is bounded by
 * `commandTimeoutMs`, reconnects go on forever with capped back-off, and a command that failed is
 * never sent again behind the caller's back.
 */
export function createRedisClient(connection: RedisConnection, options: RedisClientOptions): RedisClient {
  const common = {
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // ioredis arms this timer even for a socket that already closed (Redis down), and the timer
    // holds the process open: keep a shutdown during an outage from waiting for it.
    disconnectTimeout: 200,
    maxRetriesPerRequest: 0,
    // A command the caller already saw fail must not run later behind its back.
    autoResendUnfulfilledCommands: false,
  } satisfies RedisOptions;

  if ('clusterNodes' in connection) {
    return new Cluster(
      connection.clusterNodes.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: { ...common, ...(options.password === undefined ? {} : { password: options.password }) },
        clusterRetryStrategy: reconnectDelay,
        // The cluster's own queue has no deadline (commandTimeout starts only once a node has the
        // command): while the cluster is unreachable, fail at once instead of queueing callers.
        enableOfflineQueue: false,
      },
    );
  }

  const standalone = {
    ...common,
    retryStrategy: reconnectDelay,
    // A short offline queue bridges a reconnect blip (or a Sentinel failover); commandTimeout bounds
    // the wait, and flushing on every failed reconnect attempt keeps callers from queueing behind an outage.
    enableOfflineQueue: true,
  } satisfies RedisOptions;

  if ('sentinels' in connection) {
    return new Redis({
      ...standalone,
      ...(options.password === undefined ? {} : { password: options.password }),
      sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
      name: connection.sentinelName,
      role: 'master',
      // ask the sentinels again at once when they announce a new primary (+switch-master)
      failoverDetector: true,
      sentinelRetryStrategy: reconnectDelay,
      sentinelCommandTimeout: options.commandTimeoutMs,
    });
  }

  const { url, credentials } = splitCredentials(connection.url, options.password);
  return new Redis(url, { ...standalone, ...credentials });
}

/**
 * ioredis lets a URL's credentials win over the options object; REDIS_PASSWORD must win instead,
 * so the credentials leave the URL and travel as options. The scheme stays, so `rediss://` still
 * turns on TLS in ioredis.
 */
function splitCredentials(url: string, password: string | undefined): { url: string; credentials: Pick<RedisOptions, 'username' | 'password'> } {
  const parsed = new URL(url);
  const username = decodeUserInfo(parsed.username);
  const urlPassword = decodeUserInfo(parsed.password);
  parsed.username = '';
  parsed.password = '';
  const credentials: Pick<RedisOptions, 'username' | 'password'> = {};
  if (username !== '') credentials.username = username;
  const effective = password ?? (urlPassword === '' ? undefined : urlPassword);
  if (effective !== undefined) credentials.password = effective;
  return { url: parsed.toString(), credentials };
}

function decodeUserInfo(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // a literal '%' that is not an escape: the password is what was written
  }
}
