import type { Config } from '../config/config.js';

/** A URL as it may be printed: user and password removed (REDIS_URL and upstream URLs may carry them). */
export function displayUrl(url: string): string {
  const parsed = URL.parse(url);
  if (parsed === null) return '(unparsable URL)';
  const hadCredentials = parsed.username !== '' || parsed.password !== '';
  parsed.username = '';
  parsed.password = '';
  return hadCredentials ? `${parsed.href} (credentials hidden)` : parsed.href;
}

function setOrNot(value: string | undefined): string {
  return value === undefined || value === '' ? 'not set' : 'set';
}

function spaSource(config: Config): string {
  if (config.spa.upstreamUrl !== undefined) return `proxied to ${displayUrl(config.spa.upstreamUrl)}`;
  if (config.spa.dir !== undefined) return `files from ${config.spa.dir}`;
  return 'the bundled sample SPA';
}

function redisTarget(connection: Config['redis']['connection']): string {
  if (connection === undefined) return '(not configured)';
  const list = (nodes: readonly { host: string; port: number }[]): string => nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(', ');
  if ('clusterNodes' in connection) return `cluster ${list(connection.clusterNodes)}`;
  if ('sentinels' in connection) return `primary "${connection.sentinelName}" via sentinels ${list(connection.sentinels)}`;
  return displayUrl(connection.url);
}

function storeLine(config: Config): string {
  const { session, redis } = config;
  const timing = `idle ${session.idleTimeoutS} s, absolute ${session.absoluteTimeoutS} s, refresh ${session.refreshSkewS} s before expiry`;
  if (session.store === 'memory') return `memory (up to ${session.maxEntries} sessions, this process only); ${timing}`;
  return `redis ${redisTarget(redis.connection)} (key prefix ${redis.keyPrefix}, REDIS_PASSWORD ${setOrNot(redis.password)}); ${timing}`;
}

/** Key ids and algorithms, never key material; a secret only as "set". */
function clientAuthLine(auth: Config['oidc']['clientAuth']): string {
  if (auth.method !== 'private_key_jwt') return `${auth.method}, client secret set`;
  return `private_key_jwt, aud ${auth.assertionAudience}, keys ${auth.keys.map((k) => `${k.kid} (${k.alg})`).join(', ')}`;
}

/** Only what differs from the defaults, so a plain setup's summary stays short. */
function providerExtras({ oidc }: Config): string {
  const tenants = oidc.allowedTenants.length === 0 ? '' : `; tenants ${oidc.allowedTenants.join(', ')}`;
  const endSession = oidc.endSessionUrl === undefined ? '' : `; end session at ${displayUrl(oidc.endSessionUrl)} (${oidc.endSessionRedirectParam})`;
  const profile = oidc.profile === 'none' ? '' : `; profile ${oidc.profile}`;
  const par = oidc.par === 'auto' ? '' : `; PAR ${oidc.par}`;
  return `${tenants}${endSession}${profile}${par}${oidc.dpop ? '; DPoP' : ''}`;
}

function loginExtras({ oidc }: Config): string {
  const forwarded = oidc.loginParamsAllowed.length === 0 ? '' : `; forwarded from /auth/login: ${oidc.loginParamsAllowed.join(', ')}`;
  const stepUp = oidc.acrValuesAllowed.length === 0 ? '' : `; step-up to ${oidc.acrValuesAllowed.join(', ')}`;
  return `${forwarded}${stepUp}${oidc.userinfo ? '; userinfo claims merged' : ''}`;
}

/** A route's policy as a deploy log shows it: only what differs from the defaults. */
function routePolicy(route: Config['proxy']['routes'][number]): string[] {
  return [
    ...(route.stripPrefix ? ['prefix stripped'] : []),
    ...(route.token === 'user' ? [] : [`token ${route.token}${route.anonymous ? ', anonymous' : ''}`]),
    ...(route.exchange ? ['token exchange'] : []),
    ...(route.audience === undefined ? [] : [`audience ${route.audience}`]),
    ...(route.resource.length === 0 ? [] : [`resource ${route.resource.join(' ')}`]),
    ...(route.scope === undefined ? [] : [`scope ${route.scope}`]),
    ...(route.methods === undefined ? [] : [`methods ${route.methods.join(' ')}`]),
  ];
}

/**
 * What the gateway will run with, one line per area, for a deploy log. Never a secret: secrets
 * appear as "set", URLs lose their credentials, and extra authorization parameters show names only.
 */
export function summarizeConfig(config: Config): string[] {
  const { server, oidc, proxy, session, ops, log } = config;
  const extraParams = Object.keys(oidc.extraAuthParams);
  const routes = proxy.routes.map((r) => `${r.prefix} -> ${displayUrl(r.target)}${routePolicy(r).length === 0 ? '' : ` (${routePolicy(r).join(', ')})`}`).join(', ');
  const rows: Array<[string, string]> = [
    ['gateway', `listens on ${server.host}:${server.port}, public URL ${server.publicUrl}`],
    ['cookie', `${session.cookie.name} (${session.cookie.secure ? 'Secure, ' : 'NOT Secure, '}HttpOnly, SameSite=Lax), ${session.secrets.length} session secret(s)`],
    ['provider', `${displayUrl(oidc.issuer)}, client ${oidc.clientId} (${clientAuthLine(oidc.clientAuth)})${providerExtras(config)}`],
    [
      'login',
      `scopes openid ${oidc.scopes.join(' ')}; ${oidc.loginResources.length === 0 ? '' : `resources ${oidc.loginResources.join(' ')}; `}extra parameters: ${extraParams.length === 0 ? 'none' : extraParams.join(', ')}${loginExtras(config)}`,
    ],
    ['api', `${routes}; timeout ${proxy.timeoutS} s, body limit ${proxy.maxBodyBytes === undefined ? 'none' : `${proxy.maxBodyBytes} bytes`}, CSRF header ${proxy.csrfHeader}`],
    ['sessions', storeLine(config)],
    ['spa', spaSource(config)],
    ['metrics', ops.metricsPort === undefined ? '/metrics on the main port' : `/metrics on port ${ops.metricsPort} only`],
    [
      'ops',
      `login rate limit ${ops.authRateLimitPerMinute === 0 ? 'off' : `${ops.authRateLimitPerMinute}/min per address`}; trusted proxies: ${ops.trustProxy.length === 0 ? 'none' : ops.trustProxy.join(', ')}; shutdown grace ${ops.shutdownGraceS} s`,
    ],
    ['logs', `${log.level}, ${log.format}`],
  ];
  return [...rows.map(([area, text]) => `  ${area.padEnd(10)} ${text}`), ...config.warnings.map((warning) => `  ${'warning'.padEnd(10)} ${warning}`)];
}
