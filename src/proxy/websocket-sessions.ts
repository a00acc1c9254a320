import type { Duplex } from 'node:stream';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { sidHash } from '../session/session-cookie.js';
import { SessionService } from '../session/session.service.js';

/** Sessions re-read at once during a check: bounds the burst on the store. */
const CHECK_BATCH = 64;

/**
 * Open /api WebSockets by session store key, so that a socket ends with its session: logout here
 * closes it at once; every SESSION_WEBSOCKET_CHECK_S each session with open sockets is read from the
 * store, and the sockets of one that is gone (logout on another replica, back- or front-channel
 * logout, expiry) are closed. The same read slides the idle timeout, throttled like requests, as an
 * open socket is activity. A store that cannot answer closes nothing: an outage never signs anyone out.
 */
@Injectable()
export class WebSocketSessions implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger(WebSocketSessions.name);
  private readonly bySession = new Map<string, Set<Duplex>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly sessions: SessionService,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.check(), this.config.session.websocketCheckS * 1000);
    // open sockets keep the process alive, not this timer
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Follows an upgraded socket of the session `sessionKey` until it closes. */
  track(socket: Duplex, sessionKey: string): void {
    let sockets = this.bySession.get(sessionKey);
    if (sockets === undefined) {
      sockets = new Set();
      this.bySession.set(sessionKey, sockets);
    }
    const own = sockets;
    own.add(socket);
    // close() destroys with an error (so http-proxy ends the upstream leg): never an uncaught one
    socket.on('error', () => undefined);
    socket.once('close', () => {
      own.delete(socket);
      if (own.size === 0 && this.bySession.get(sessionKey) === own) this.bySession.delete(sessionKey);
    });
  }

  /** Closes the sockets of a session that ended on this replica, without waiting for the next check. */
  close(sessionKey: string): void {
    const sockets = this.bySession.get(sessionKey);
    if (sockets === undefined) return;
    this.log.debug(`closing ${sockets.size} WebSocket(s) of ended session ${sidHash(sessionKey)}`);
    // http-proxy ends the upstream socket on the client socket's 'error'
    for (const socket of sockets) socket.destroy(new Error('session ended'));
  }

  /** Re-reads every session with open sockets now (one check at a time; a caller during one joins it). */
  check(): Promise<void> {
    this.running ??= this.checkAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async checkAll(): Promise<void> {
    const keys = [...this.bySession.keys()];
    for (let i = 0; i < keys.length; i += CHECK_BATCH) {
      await Promise.all(keys.slice(i, i + CHECK_BATCH).map((key) => this.checkOne(key)));
    }
  }

  private async checkOne(sessionKey: string): Promise<void> {
    try {
      if ((await this.sessions.loadByKey(sessionKey, true)) === undefined) this.close(sessionKey);
    } catch (error) {
      this.log.debug(`WebSocket session check skipped for ${sidHash(sessionKey)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
