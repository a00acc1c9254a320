import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { CLOCK, type Clock } from '../common/clock.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { ReadinessService } from '../health/readiness.service.js';
import { acceptedIssuers, type AcceptedIssuers } from './issuer.js';
import { JwksCache } from './jwks-cache.js';
import { ProviderUnavailableError } from './oidc.errors.js';
import { fetchJson } from './provider-http.js';

/** An optional field with an odd value (a string for an array, "" for a URL) counts as absent, as if omitted. */
const optionalUrl = z.url().optional().catch(undefined);
/**
 * An endpoint the browser is sent to (a Location header): kept as its WHATWG serialisation, which
 * percent-encodes what a provider may publish raw (UTF-8 in a path or query) and Node would refuse
 * in a header, or send as Latin-1 bytes. The same URL, so the provider sees no difference.
 */
const browserUrl = z.url().transform((value) => new URL(value).href);
const optionalFlag = z.boolean().optional().catch(undefined);

const DiscoveryDocumentSchema = z.object({
  issuer: z.string(),
  authorization_endpoint: browserUrl,
  token_endpoint: z.url(),
  jwks_uri: z.url(),
  end_session_endpoint: browserUrl.optional().catch(undefined),
  revocation_endpoint: optionalUrl,
  userinfo_endpoint: optionalUrl,
  code_challenge_methods_supported: z.array(z.string()).optional().catch(undefined),
  grant_types_supported: z.array(z.string()).optional().catch(undefined),
  backchannel_logout_supported: optionalFlag,
  backchannel_logout_session_supported: optionalFlag,
  frontchannel_logout_supported: optionalFlag,
  frontchannel_logout_session_supported: optionalFlag,
  authorization_response_iss_parameter_supported: optionalFlag,
  pushed_authorization_request_endpoint: optionalUrl,
  require_pushed_authorization_requests: optionalFlag,
});
export type DiscoveryDocument = z.infer<typeof DiscoveryDocumentSchema>;

export interface LoadedProvider {
  readonly document: DiscoveryDocument;
  readonly jwks: JwksCache;
  /** The issuers ID tokens, logout tokens and authorization responses may name. */
  readonly issuers: AcceptedIssuers;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

/**
 * Loads the provider's discovery document and JWKS in the background at start-up, retrying with
 * back-off, so /healthz answers while the provider is down and /readyz says why it is not ready.
 */
@Injectable()
export class ProviderMetadata implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger(ProviderMetadata.name);
  private current: LoadedProvider | undefined;
  private readonly stop = new AbortController();
  private readonly waiters: Array<(provider: LoadedProvider) => void> = [];

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    readiness: ReadinessService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    readiness.register('oidc_discovery', () => this.current !== undefined);
  }

  onApplicationBootstrap(): void {
    void this.loadWithRetry();
  }

  onApplicationShutdown(): void {
    this.stop.abort();
  }

  /** The loaded metadata; 503 provider_unavailable until discovery has succeeded. */
  get(): LoadedProvider {
    if (this.current === undefined) throw new ProviderUnavailableError('The gateway has not yet loaded the identity provider\'s configuration; try again shortly.');
    return this.current;
  }

  get isLoaded(): boolean {
    return this.current !== undefined;
  }

  /** Resolves once discovery has loaded (for start-up checks and tests). */
  whenLoaded(): Promise<LoadedProvider> {
    if (this.current !== undefined) return Promise.resolve(this.current);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** One attempt: discovery document, then the JWKS. Throws ProviderUnavailableError. */
  async load(): Promise<LoadedProvider> {
    const { issuer, httpTimeoutS } = this.config.oidc;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const parsed = DiscoveryDocumentSchema.safeParse(await fetchJson(url, httpTimeoutS));
    if (!parsed.success) throw new ProviderUnavailableError(`The discovery document at ${url} is malformed: ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
    const document = parsed.data;
    const issuers = acceptedIssuers(document.issuer, issuer, this.config.oidc.allowedTenants);
    if (typeof issuers === 'string') throw new ProviderUnavailableError(issuers);
    if (this.config.oidc.userinfo && document.userinfo_endpoint === undefined) {
      throw new ProviderUnavailableError('OIDC_USERINFO=true, but the discovery document advertises no userinfo_endpoint.');
    }
    // RFC 9126 §5: PAR needs its endpoint; missing, no login could start, so the gateway is not ready
    if (document.pushed_authorization_request_endpoint === undefined && (this.config.oidc.par === 'always' || document.require_pushed_authorization_requests === true)) {
      const why = this.config.oidc.par === 'always' ? `OIDC_PAR=always${this.config.oidc.profile === 'fapi2' ? ' (OIDC_PROFILE=fapi2)' : ''}` : 'The discovery document requires pushed authorization requests';
      throw new ProviderUnavailableError(`${why}, but the discovery document advertises no pushed_authorization_request_endpoint.`);
    }
    const jwks = new JwksCache(document.jwks_uri, httpTimeoutS, this.clock);
    await jwks.refresh();
    return { document, jwks, issuers };
  }

  private async loadWithRetry(): Promise<void> {
    let wait = FIRST_RETRY_MS;
    for (let attempt = 1; !this.stop.signal.aborted; attempt++) {
      try {
        const provider = await this.load();
        this.current = provider;
        this.log.log(`discovery loaded from ${this.config.oidc.issuer}`);
        for (const resolve of this.waiters.splice(0)) resolve(provider);
        return;
      } catch (error) {
        this.log.warn(`discovery attempt ${attempt} failed (${error instanceof Error ? error.message : String(error)}); retrying in ${wait} ms`);
      }
      try {
        await delay(wait, undefined, { signal: this.stop.signal });
      } catch {
        return; // shutting down
      }
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    }
  }
}
