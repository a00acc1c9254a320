import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { CLOCK, type Clock } from '../common/clock.js';
import { BadRequestError, GatewayError } from '../common/gateway-error.js';
import { mapError } from '../common/problem.js';
import { CONFIG } from '../config/config.module.js';
import type { Config } from '../config/config.js';
import { Metrics } from '../metrics/metrics.js';
import { IdTokenValidator } from '../oidc/id-token.validator.js';
import { IdTokenInvalidError, ProviderUnavailableError, TokenRequestRejectedError } from '../oidc/oidc.errors.js';
import { ProviderMetadata, type DiscoveryDocument } from '../oidc/provider-metadata.js';
import { TokenClient } from '../oidc/token-client.js';
import {
  LoginCodeRejectedError,
  LoginDeniedError,
  LoginFailedError,
  LoginIssuerMismatchError,
  LoginRequiredError,
  LoginStateMismatchError,
} from './auth.errors.js';
import { LoginAttempt, type LoginResult } from './login-attempt.js';
import { OIDC_STRATEGY, OidcStrategy, type PassportRequest } from './oidc.strategy.js';
import { runPassport } from './passport-bridge.js';
import { safeReturnTo } from './return-to.js';
import { sidHash } from '../session/session-cookie.js';
import type { SessionRecord } from '../session/session-store.js';

export type Prompt = 'none' | 'login' | 'consent' | 'select_account';
const PROMPTS: ReadonlySet<string> = new Set<Prompt>(['none', 'login', 'consent', 'select_account']);
/** OIDC Core §3.1.2.6: errors a `prompt=none` request ends with when the user must interact. */
const INTERACTION_ERRORS = new Set(['login_required', 'consent_required', 'interaction_required', 'account_selection_required']);

/** How a callback ended, for metrics: the error code is the one the client sees. */
export type LoginOutcome = { readonly outcome: 'success' } | { readonly outcome: 'failure'; readonly code: string };

export interface LoginOptions {
  readonly returnTo: unknown;
  readonly prompt: unknown;
  readonly loginHint: unknown;
}

/** Only string query values; a repeated parameter (an array) is treated as absent. */
export function stringQuery(request: FastifyRequest): Record<string, string | undefined> {
  const query: Record<string, string | undefined> = {};
  if (typeof request.query !== 'object' || request.query === null) return query;
  for (const [name, value] of Object.entries(request.query)) if (typeof value === 'string') query[name] = value;
  return query;
}

/** Runs the authorization code flow through the passport strategy, built once discovery has loaded. */
@Injectable()
export class LoginFlowService {
  private readonly log = new Logger(LoginFlowService.name);
  private strategyFor: DiscoveryDocument | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly provider: ProviderMetadata,
    private readonly tokens: TokenClient,
    private readonly idTokens: IdTokenValidator,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly metrics: Metrics,
  ) {}

  /** The provider's authorization URL for a new login. 503 until discovery has loaded. */
  async start(request: FastifyRequest, options: LoginOptions): Promise<string> {
    this.ensureStrategy();
    const prompt = options.prompt;
    if (prompt !== undefined && (typeof prompt !== 'string' || !PROMPTS.has(prompt))) throw new BadRequestError('prompt must be one of none, login, consent, select_account.');
    const loginHint = options.loginHint;
    if (loginHint !== undefined && (typeof loginHint !== 'string' || loginHint.length > 256)) throw new BadRequestError('login_hint must be a string of at most 256 characters.');
    const attempt = new LoginAttempt();
    attempt.returnTo = safeReturnTo(options.returnTo);
    const outcome = await runPassport(OIDC_STRATEGY, this.passportRequest(request, {}, attempt), {
      ...(prompt === undefined ? {} : { prompt }),
      ...(loginHint === undefined ? {} : { loginHint }),
    });
    if (outcome.kind === 'redirect') return outcome.url;
    throw outcome.kind === 'error' ? this.translate(outcome.error) : new Error(`login start ended with ${outcome.kind}`);
  }

  /** Completes the callback: state, code exchange, ID token. Throws a typed error for every failure. */
  async complete(request: FastifyRequest): Promise<LoginResult> {
    try {
      const result = await this.completeCallback(request);
      this.metrics.countLogin({ outcome: 'success' });
      return result;
    } catch (error) {
      this.metrics.countLogin({ outcome: 'failure', code: mapError(error).code });
      throw error;
    }
  }

  private async completeCallback(request: FastifyRequest): Promise<LoginResult> {
    this.ensureStrategy();
    const query = stringQuery(request);
    // RFC 9207 §2.4: an authorization response naming another issuer is a mix-up attempt, and one
    // without `iss` from a provider that promises to send it must be refused too
    const issPromised = this.provider.get().document.authorization_response_iss_parameter_supported === true;
    if (query['iss'] === undefined ? issPromised : query['iss'] !== this.config.oidc.issuer) throw new LoginIssuerMismatchError();
    const providerError = query['error'];
    if (providerError !== undefined) {
      const code = /^[\w.-]{1,64}$/.test(providerError) ? providerError : 'invalid_error_code';
      if (code === 'access_denied') throw new LoginDeniedError();
      if (INTERACTION_ERRORS.has(code)) throw new LoginRequiredError(code);
      throw new LoginFailedError(code);
    }
    if (query['state'] === undefined) throw new LoginStateMismatchError('The sign-in response carries no state.');
    if (query['code'] === undefined) throw new BadRequestError('The sign-in response carries no authorization code.');

    const attempt = new LoginAttempt();
    const outcome = await runPassport(OIDC_STRATEGY, this.passportRequest(request, query, attempt), {});
    switch (outcome.kind) {
      case 'success':
        if (attempt.result === undefined) throw new Error('passport succeeded without a login result');
        return attempt.result;
      case 'fail':
        if (attempt.stateMismatch) throw new LoginStateMismatchError();
        throw new IdTokenInvalidError(failureMessage(outcome.info));
      case 'error':
        throw this.translate(attempt.error ?? outcome.error);
      case 'redirect':
        throw new LoginStateMismatchError();
    }
  }

  /**
   * Signing in again replaces the browser's session; the grant behind the old one is revoked
   * (RFC 7009) as at logout, unless the new login came from the same provider session: providers
   * reuse that session's grant (oidc-provider, Keycloak's client session), and revoking a refresh
   * token revokes its grant, which would end the new session too. Awaited, bounded by the provider
   * timeout; a failure is logged and the login completes anyway.
   */
  async revokeReplaced(replaced: SessionRecord, current: SessionRecord): Promise<void> {
    const refreshToken = replaced.tokens.refreshToken;
    if (refreshToken === undefined) return;
    if (replaced.providerSid !== undefined && replaced.providerSid === current.providerSid && replaced.sub === current.sub) return;
    await this.tokens.revoke(refreshToken, 'refresh_token').catch((error: unknown) => {
      this.log.warn(`refresh token revocation failed for replaced session ${sidHash(replaced.id)}: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private passportRequest(request: FastifyRequest, query: Record<string, string | undefined>, attempt: LoginAttempt): PassportRequest {
    return { query, session: request.session, attempt };
  }

  private translate(error: unknown): GatewayError {
    if (error instanceof TokenRequestRejectedError) return new LoginCodeRejectedError(error.oauthError);
    if (error instanceof GatewayError) return error;
    return new ProviderUnavailableError(undefined, error);
  }

  /** (Re)builds the strategy when discovery has loaded or changed; registering it replaces the old one. */
  private ensureStrategy(): void {
    const { document } = this.provider.get();
    if (this.strategyFor === document) return;
    new OidcStrategy(document, { config: this.config, tokens: this.tokens, idTokens: this.idTokens, clock: this.clock });
    this.strategyFor = document;
  }
}

function failureMessage(info: unknown): string {
  if (typeof info === 'object' && info !== null && 'message' in info && typeof info.message === 'string') return info.message;
  return 'The ID token was rejected.';
}
