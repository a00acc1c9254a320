import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../common/clock.js';
import { GatewayError } from '../common/gateway-error.js';
import type { Config } from '../config/config.js';
import { ReadinessService } from '../health/readiness.service.js';
import { ProviderMetadata, type LoadedProvider } from '../oidc/provider-metadata.js';
import { ClientAuthentication } from '../oidc/client-auth.js';
import { DpopKey } from '../oidc/dpop.js';
import { TokenClient } from '../oidc/token-client.js';
import { Tracing } from '../tracing/tracing.js';
import { routeTarget, unannouncedGrants } from '../proxy/route-token.js';
import { newSessionId, sessionKey } from '../session/session-cookie.js';
import { createSessionStore } from '../session/session.module.js';
import type { SessionRecord, SessionStore } from '../session/session-store.js';
import { displayUrl, summarizeConfig } from './config-summary.js';

/** What the provider announces about the logout channels (Back-Channel Logout §2.1, Front-Channel Logout §3). */
const LOGOUT_METADATA = ['backchannel_logout_supported', 'backchannel_logout_session_supported', 'frontchannel_logout_supported', 'frontchannel_logout_session_supported'] as const;

/** A store that does not answer within this is as good as down for a deploy check. */
const STORE_CHECK_TIMEOUT_MS = 10_000;

interface CheckOutcome {
  readonly ok: boolean;
  readonly lines: readonly string[];
}

/** What went wrong, for an operator: the gateway's own explanation, then its causes down to the socket error. */
function messageOf(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    const text = current instanceof GatewayError ? (current.detail ?? current.title) : current.message;
    if (text !== '' && !parts.includes(text)) parts.push(text);
  }
  const [first = 'unknown error', ...causes] = parts;
  return causes.length === 0 ? first : `${first} (${causes.join(': ')})`;
}

async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  const abort = new AbortController();
  try {
    return await Promise.race([
      work,
      delay(ms, undefined, { signal: abort.signal }).then(() => {
        throw new Error(`${what} did not answer within ${ms / 1000} s`);
      }),
    ]);
  } finally {
    abort.abort();
  }
}

async function checkProvider(provider: ProviderMetadata, config: Config): Promise<CheckOutcome & { readonly loaded?: LoadedProvider }> {
  const discoveryUrl = `${displayUrl(config.oidc.issuer).replace(/\/+$/, '')}/.well-known/openid-configuration`;
  try {
    const loaded = await provider.load();
    const { document } = loaded;
    const optional = (['end_session_endpoint', 'revocation_endpoint'] as const).filter((name) => document[name] !== undefined).map((name) => name.replace('_endpoint', ''));
    const pkce = document.code_challenge_methods_supported;
    const logout = LOGOUT_METADATA.map((name) => `${name}=${String(document[name] ?? 'absent')}`).join(', ');
    return {
      ok: true,
      loaded,
      lines: [
        `discovery document and JWKS loaded (${discoveryUrl})`,
        `endpoints: authorization, token, jwks${optional.map((name) => `, ${name}`).join('')}`,
        `logout announced: ${logout}`,
        ...(pkce !== undefined && !pkce.includes('S256') ? ['warning: the provider does not announce PKCE S256'] : []),
        ...(config.oidc.frontchannelLogout && document.frontchannel_logout_session_supported !== true
          ? ['warning: OIDC_FRONTCHANNEL_LOGOUT=true, but the provider does not announce frontchannel_logout_session_supported: without iss and sid its requests end nothing']
          : []),
        ...unannouncedGrants(config.proxy.routes, document.grant_types_supported).map(
          ({ grant, routes }) => `warning: grant_types_supported does not list ${grant}, which ${routes.join(', ')} need (only a warning: providers omit grants they support)`,
        ),
      ],
    };
  } catch (error) {
    return { ok: false, lines: [`cannot load discovery and JWKS: ${messageOf(error)}`] };
  }
}

/** Each `client` route's token, obtained once as the gateway would: proves the grant, the client's rights and the route's target. */
async function checkClientRoutes(config: Config, loaded: LoadedProvider | undefined): Promise<CheckOutcome | undefined> {
  const routes = config.proxy.routes.filter((route) => route.token === 'client');
  if (routes.length === 0) return undefined;
  if (loaded === undefined) return { ok: false, lines: ['not checked: the provider\'s discovery did not load'] };
  const provider = { get: () => loaded };
  const tokens = new TokenClient(config, provider, systemClock, new Tracing(config), new ClientAuthentication(config, provider, systemClock));
  // as the gateway asks: with OIDC_DPOP, a proof of a key of its own (a provider binding tokens refuses a request without)
  const dpop = config.oidc.dpop ? DpopKey.generate() : undefined;
  const lines: string[] = [];
  let ok = true;
  for (const route of routes) {
    try {
      const answer = await tokens.clientCredentials(routeTarget(route), dpop);
      lines.push(`${route.prefix}: client-credentials token obtained${answer.expires_in === undefined ? '' : ` (expires in ${answer.expires_in} s)`}`);
    } catch (error) {
      ok = false;
      lines.push(`${route.prefix}: ${messageOf(error)}`);
    }
  }
  return { ok, lines };
}

/** A write, a read and a delete of a throw-away session: proves connectivity, permissions and serialisation. */
async function checkStore(store: SessionStore, config: Config): Promise<CheckOutcome> {
  const now = systemClock.now();
  const sub = 'bff-gateway-check-config';
  const probe: SessionRecord = {
    // an id as a login makes one (with the store's slot tag on Redis Cluster), named for operators
    id: `check-config-${sessionKey(newSessionId(store.sessionTag(sub)))}`,
    sub,
    providerSid: undefined,
    claims: {},
    tokens: { accessToken: 'probe', accessTokenExpiresAt: now + 60_000, refreshToken: undefined, idToken: 'probe', scope: undefined },
    logoutValue: 'probe',
    createdAt: now,
    absoluteExpiresAt: now + 60_000,
    idleExpiresAt: now + 60_000,
    version: 0,
  };
  const name = `${config.session.store} store`;
  try {
    await withDeadline(
      (async () => {
        await store.create(probe);
        const read = await store.get(probe.id);
        if (read === undefined || read.sub !== probe.sub || read.tokens.accessToken !== probe.tokens.accessToken) throw new Error('a session written could not be read back');
        await store.delete(probe.id);
        if ((await store.get(probe.id)) !== undefined) throw new Error('a deleted session could still be read');
      })(),
      STORE_CHECK_TIMEOUT_MS,
      `the ${name}`,
    );
    return { ok: true, lines: [`${name}: write, read and delete of a probe session succeeded`] };
  } catch (error) {
    return { ok: false, lines: [`${name}: ${messageOf(error)}`] };
  }
}

/** The store exactly as the gateway builds it (the SESSION_STORE factory), closed afterwards. */
async function withStore(config: Config, check: (store: SessionStore) => Promise<CheckOutcome>): Promise<CheckOutcome> {
  let store: SessionStore;
  try {
    store = await createSessionStore(config, systemClock);
  } catch (error) {
    return { ok: false, lines: [`${config.session.store} store cannot be created: ${messageOf(error)}`] };
  }
  try {
    return await check(store);
  } finally {
    await store.close();
  }
}

function report(name: string, outcome: CheckOutcome): string[] {
  const [first = '', ...rest] = outcome.lines;
  return [`  ${outcome.ok ? 'ok  ' : 'FAIL'}  ${name.padEnd(14)} ${first}`, ...rest.map((line) => `        ${' '.repeat(14)} ${line}`)];
}

/**
 * `node dist/main.js --check-config`: the configuration is already valid (loadConfig passed); this
 * reaches the provider and the session store the way the gateway would and prints a one-screen
 * summary without secrets. Returns the exit code: 0 when everything answered, 1 otherwise.
 */
export async function checkConfig(config: Config, write: (text: string) => void): Promise<number> {
  // a ProviderMetadata of its own: one attempt with the error message, not the gateway's background retries
  const provider = await checkProvider(new ProviderMetadata(config, new ReadinessService(), systemClock), config);
  const clientRoutes = await checkClientRoutes(config, provider.loaded);
  const outcomes: Array<[string, CheckOutcome]> = [
    ['configuration', { ok: true, lines: ['every variable is valid'] }],
    ['provider', provider],
    ...(clientRoutes === undefined ? [] : [['client routes', clientRoutes] as [string, CheckOutcome]]),
    ['session store', await withStore(config, (store) => checkStore(store, config))],
  ];
  const failed = outcomes.filter(([, outcome]) => !outcome.ok).length;
  const lines = [
    'bff-gateway configuration check',
    '',
    ...summarizeConfig(config),
    '',
    ...outcomes.flatMap(([name, outcome]) => report(name, outcome)),
    '',
    failed === 0 ? 'result: ok, ready to deploy' : `result: ${failed} check(s) failed`,
  ];
  write(`${lines.join('\n')}\n`);
  return failed === 0 ? 0 : 1;
}
