import { Global, Module } from '@nestjs/common';
import { systemClock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ReadinessService } from '../health/readiness.service.js';
import { OidcModule } from '../oidc/oidc.module.js';
import { MemorySessionStore } from './memory-session-store.js';
import { SessionService } from './session.service.js';
import { SESSION_STORE, type SessionStore } from './session-store.js';
import { TokenRefresher } from './token-refresher.js';

function createStore(config: Config, readiness: ReadinessService): SessionStore {
  const store = new MemorySessionStore(config.session.maxEntries, systemClock);
  readiness.register('session_store', async () => {
    await store.ping();
    return true;
  });
  return store;
}

@Global()
@Module({
  imports: [OidcModule],
  providers: [
    { provide: SESSION_STORE, useFactory: createStore, inject: [CONFIG, ReadinessService] },
    SessionService,
    TokenRefresher,
  ],
  exports: [SESSION_STORE, SessionService, TokenRefresher],
})
export class SessionModule {}
