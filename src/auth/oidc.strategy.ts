import { Strategy, type AuthenticateOptions, type StateStore } from 'passport-openidconnect';
import type { Config } from '../config/config.js';
import type { DiscoveryDocument } from '../oidc/provider-metadata.js';
import type { AuthorizationRequest } from './authorization-request.js';

/**
 * passport-openidconnect, used for what it does: the authorization request (response_type,
 * client_id, redirect_uri, scope, prompt, login_hint, state, the endpoint's own query kept).
 * The callback does not go through it: it checks no signature, knows no PKCE and sends the client
 * secret only in the body, so the gateway's own steps (login-callback.ts) verify the response.
 *
 * One instance per authorization request: passport's actions (redirect, error, fail, success,
 * pass) settle that request's promise, so nothing per-request is ever set on a shared object.
 */
class AuthorizationRedirect extends Strategy {
  constructor(
    document: DiscoveryDocument,
    config: Config,
    private readonly settle: { resolve(url: string): void; reject(error: Error): void },
  ) {
    const { oidc } = config;
    super(
      {
        issuer: oidc.issuer,
        authorizationURL: document.authorization_endpoint,
        tokenURL: document.token_endpoint,
        clientID: oidc.clientId,
        // absolute: a relative callbackURL makes the strategy read req.connection, which Fastify lacks
        callbackURL: oidc.redirectUri,
        scope: [...oidc.scopes],
        // the nonce is ours (256 bits, stored with the transaction); the strategy's has 120
        nonce: false,
        skipUserProfile: true,
        store: PREPARED_STATE,
      },
      refuseVerify,
    );
  }

  override authorizationParams(options: AuthenticateOptions): Record<string, string | readonly string[]> {
    return { ...options.params };
  }

  redirect(url: string): void {
    this.settle.resolve(url);
  }

  error(error: Error): void {
    this.settle.reject(error);
  }

  fail(): void {
    this.settle.reject(new Error('the strategy refused to start a login'));
  }

  success(): void {
    this.settle.reject(new Error('the strategy completed a login without a callback'));
  }

  pass(): void {
    this.settle.reject(new Error('the strategy passed on a login'));
  }
}

/** The provider URL the browser is sent to for this authorization request. */
export function authorizationUrl(document: DiscoveryDocument, config: Config, request: AuthorizationRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const strategy = new AuthorizationRedirect(document, config, { resolve, reject });
    const { prompt, loginHint, params, transaction } = request;
    try {
      strategy.authenticate({ query: {} }, { state: transaction.state, params, ...(prompt === undefined ? {} : { prompt }), ...(loginHint === undefined ? {} : { loginHint }) });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/**
 * The strategy's state store. The transaction is already in the cookie (storeTransaction) when the
 * strategy runs, so storing only hands its state back; verifying is the callback steps' job.
 */
const PREPARED_STATE: StateStore = {
  store(_req, _ctx, appState, _meta, callback) {
    if (typeof appState === 'string') callback(null, appState);
    else callback(new Error('authorization request started without a stored transaction'));
  },
  verify(_req, _state, callback) {
    callback(new Error('callbacks are verified by login-callback.ts, not by the strategy'));
  },
};

function refuseVerify(): void {
  throw new Error('callbacks are verified by login-callback.ts, not by the strategy');
}
