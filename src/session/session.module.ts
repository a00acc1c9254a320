import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ReadinessService } from '../health/readiness.service.js';
import { Metrics } from '../metrics/metrics.js';
import { OidcModule } from '../oidc/oidc.module.js';
import { RefreshBackoff } from './refresh-backoff.js';
import { MemorySessionStore } from './memory-session-store.js';
import { RedisSessionStore } from './redis-session-store.js';
import { SessionService } from './session.service.js';
import { SESSION_STORE, type SessionStore } from './session-store.js';
import { TokenRefresher } from './token-refresher.js';
import { tracedStore } from '../tracing/traced-store.js';
import { Tracing } from '../tracing/tracing.js';

/** The configured store. Redis being down at start-up is not fatal: it reconnects, /readyz says 503 meanwhile. */
export async function createSessionStore(config: Config, clock: Clock): Promise<SessionStore> {
  if (config.session.store === 'memory') return new MemorySessionStore(config.session.maxEntries, clock);
  const { connection, password, keyPrefix } = config.redis;
  if (connection === undefined) throw new Error('REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required for the redis store (config validation guarantees it)');
  return RedisSessionStore.open({ ...connection, password, keyPrefix, secrets: config.session.secrets }, clock);
}

async function storeProvider(config: Config, readiness: ReadinessService, clock: Clock, metrics: Metrics, tracing: Tracing): Promise<SessionStore> {
  const store = tracedStore(await createSessionStore(config, clock), tracing, config.session.store);
  metrics.watchActiveSessions(store);
  readiness.register('session_store', async () => {
    await store.ping();
    return true;
  });
  return store;
}

@Global()
@Module({
  imports: [OidcModule],
  providers: [{ provide: SESSION_STORE, useFactory: storeProvider, inject: [CONFIG, ReadinessService, CLOCK, Metrics, Tracing] }, SessionService, TokenRefresher, RefreshBackoff],
  exports: [SESSION_STORE, SessionService, TokenRefresher],
})
export class SessionModule implements OnApplicationShutdown {
  constructor(@Inject(SESSION_STORE) private readonly store: SessionStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
