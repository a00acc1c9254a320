import { Injectable } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';

/** The body of /healthz: the process serves requests. */
export const LIVENESS = { status: 'ok' } as const;

export type ReadinessBody = { readonly status: 'ready' } | { readonly status: 'not_ready'; readonly missing: readonly string[] };

/** A part of the gateway that must be up before logins can be served. Resolves true when ready. */
export type ReadinessCheck = () => boolean | Promise<boolean>;

const CHECK_TIMEOUT_MS = 2000;

/**
 * Parts register their own check (OIDC discovery, session store); /readyz reports the ones that fail.
 * A frozen dependency must not freeze /readyz, so each check has a deadline.
 */
@Injectable()
export class ReadinessService {
  private readonly checks = new Map<string, ReadinessCheck>();
  private shuttingDown = false;

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** /readyz's answer, the same on the main port and on METRICS_PORT. */
  async report(): Promise<{ readonly httpStatus: 200 | 503; readonly body: ReadinessBody }> {
    const missing = await this.missing();
    return missing.length === 0 ? { httpStatus: 200, body: { status: 'ready' } } : { httpStatus: 503, body: { status: 'not_ready', missing } };
  }

  async missing(): Promise<string[]> {
    if (this.shuttingDown) return ['shutting_down'];
    const results = await Promise.all(
      [...this.checks].map(async ([name, check]) => ((await withDeadline(check)) ? undefined : name)),
    );
    return results.filter((name): name is string => name !== undefined);
  }
}

async function withDeadline(check: ReadinessCheck): Promise<boolean> {
  const abort = new AbortController();
  try {
    return await Promise.race([
      Promise.resolve().then(check).catch(() => false),
      delay(CHECK_TIMEOUT_MS, false, { signal: abort.signal }).catch(() => false),
    ]);
  } finally {
    abort.abort();
  }
}
