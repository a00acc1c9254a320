import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LoginOutcome } from '../auth/login-flow.service.js';
import { requestClassOf } from '../common/request-class.js';
import type { UpstreamSockets } from '../proxy/proxy.service.js';
import type { SessionStore } from '../session/session-store.js';
import type { RefreshOutcome } from '../session/token-refresher.js';

/** `2xx` ... `5xx`: one series per class keeps the label set small, whatever the upstream answers. */
export function statusClassOf(status: number): string {
  return `${statusClassDigit(status)}xx`;
}

function statusClassDigit(status: number): number {
  return Math.min(Math.max(Math.floor(status / 100), 1), 5);
}

/**
 * Every metric the gateway exports, in one registry per gateway instance (tests run several in one
 * process; the global registry would mix them). Names: `bff_` prefix, snake_case, unit suffix.
 *
 * Injected into the services that count (login, refresh, proxy) and depending on nothing itself:
 * the gauges read state that other modules own (the session store, the upstream pools), and those
 * modules hand it over (watch*) when they are built, instead of Metrics injecting them. So the
 * session module can inject Metrics into its TokenRefresher without a module cycle, and the metrics
 * module knows nothing about where sessions or connections live.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  /** Labelled children by group, then by status class digit: no label object or key string per request. */
  private readonly durationByLabels = new Map<string, Array<{ observe(value: number): void } | undefined>>();
  private readonly httpDuration = new Histogram({
    name: 'bff_http_request_duration_seconds',
    help: 'Time from request to the end of the response, by route group (auth, api, spa, ops) and status class.',
    labelNames: ['group', 'status_class'] as const,
    // Sign-in redirects take milliseconds, code exchanges and proxied calls up to the upstream timeout.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly logins = new Counter({
    name: 'bff_logins_total',
    help: 'Completed sign-in callbacks by outcome (success, failure) and failure code (none on success).',
    labelNames: ['outcome', 'code'] as const,
    registers: [this.registry],
  });

  private readonly tokenRefreshes = new Counter({
    name: 'bff_token_refresh_total',
    help: 'Access token refresh attempts by result (refreshed, expired, provider_unavailable, client_authentication_failed, token_response_invalid, token_type_invalid, store_unavailable).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  private readonly upstreamErrors = new Counter({
    name: 'bff_upstream_errors_total',
    help: 'Proxied requests that failed before the upstream answered, by kind (unavailable, timeout).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** Handed over by the proxy module: its connection counts per upstream, read at scrape time. */
  private upstreamSockets: () => readonly UpstreamSockets[] = () => [];

  constructor() {
    const sockets = (): readonly UpstreamSockets[] => this.upstreamSockets();
    new Gauge({
      name: 'bff_upstream_sockets',
      help: 'Connections of each upstream\'s pool (route = the PROXY_ROUTES prefix, or spa for the dev server) by state: active (carrying a request, a stream or a handshake; an established WebSocket leaves the pool), free (idle keep-alive), queued (requests waiting for a connection: the pool is full).',
      labelNames: ['route', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { upstream, active, free, queued } of sockets()) {
          this.set({ route: upstream, state: 'active' }, active);
          this.set({ route: upstream, state: 'free' }, free);
          this.set({ route: upstream, state: 'queued' }, queued);
        }
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** Exports `bff_active_sessions` from the session module's store, read at scrape time. */
  watchActiveSessions(store: Pick<SessionStore, 'size'>): void {
    // Only stores that can count cheaply (memory) report it; a gauge stuck at 0 for Redis would mislead.
    if (store.size() === undefined) return;
    new Gauge({
      name: 'bff_active_sessions',
      help: 'Sessions held by this process (memory session store only).',
      registers: [this.registry],
      collect() {
        this.set(store.size() ?? 0);
      },
    });
  }

  observeRequest(url: string, status: number, durationMs: number): void {
    // by path, not by matched route: unmatched requests (404s, scanners) must be counted too
    const group = requestClassOf(url);
    const digit = statusClassDigit(status);
    // a labelled child per (group, class): prom-client would otherwise hash the label object per request
    let byClass = this.durationByLabels.get(group);
    if (byClass === undefined) {
      byClass = [];
      this.durationByLabels.set(group, byClass);
    }
    let child = byClass[digit];
    if (child === undefined) {
      child = this.httpDuration.labels({ group, status_class: `${digit}xx` });
      byClass[digit] = child;
    }
    child.observe(durationMs / 1000);
  }

  countLogin(result: LoginOutcome): void {
    this.logins.inc({ outcome: result.outcome, code: result.outcome === 'success' ? 'none' : result.code });
  }

  countTokenRefresh(result: RefreshOutcome): void {
    this.tokenRefreshes.inc({ result });
  }

  countUpstreamError(kind: 'unavailable' | 'timeout'): void {
    this.upstreamErrors.inc({ kind });
  }

  /** Exports `bff_upstream_sockets` from the proxy module's pools, read at scrape time. */
  watchUpstreamSockets(counts: () => readonly UpstreamSockets[]): void {
    this.upstreamSockets = counts;
  }

  /** The Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
