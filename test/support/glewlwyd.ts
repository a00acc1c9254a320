import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CHROMIUM_PATH } from './chromium.js';
import { freePort } from './ports.js';
import { spawnChild, type Child } from './processes.js';
import { eventually } from './wait.js';
import { describeWhenInstalled } from './requirements.js';

/**
 * glewlwyd 2.7.5 (Debian's package), an OpenID-certified provider nobody here wrote, run as its own
 * process on a free loopback port with a throw-away SQLite database and configured from scratch
 * through its admin REST API. What it does differently from oidc-provider is listed in
 * ../shared/notes/interop-glewlwyd.md and in the README's testing section.
 */
export const GLEWLWYD_PATH = '/usr/bin/glewlwyd';
const SQLITE3_PATH = '/usr/bin/sqlite3';
const DATABASE_SCRIPT = '/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz';
const WEBAPP = '/usr/share/glewlwyd/webapp';
const WEBAPP_CONFIG = '/etc/glewlwyd/config-2.7.json/config.json';
const MODULES = '/usr/lib/glewlwyd';

/** The administrator the database script creates. */
const ADMIN = { username: 'admin', password: 'password' };
/** The OIDC plugin instance's name: it is also the path of its endpoints, `/api/oidc/...`. */
const PLUGIN = 'oidc';
/** The resource indicator the gateway asks for (`OIDC_EXTRA_AUTH_PARAMS=resource=...`): the access tokens' audience. */
export const GLEWLWYD_API_RESOURCE = 'https://api.example.test/';
const SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;

const run = promisify(execFile);

/** What the suite needs, with the command that installs it (npm run test:all runs them). */
const REQUIREMENTS = [
  { path: GLEWLWYD_PATH, install: 'apt-get install -y --no-install-recommends glewlwyd sqlite3' },
  { path: DATABASE_SCRIPT, install: 'apt-get install -y --no-install-recommends glewlwyd sqlite3' },
  { path: SQLITE3_PATH, install: 'apt-get install -y --no-install-recommends glewlwyd sqlite3' },
  { path: CHROMIUM_PATH, install: 'apt-get install -y chromium' },
];

function missing(): string | undefined {
  const absent = REQUIREMENTS.filter((requirement) => !existsSync(requirement.path));
  if (absent.length === 0) return undefined;
  const commands = [...new Set(absent.map((requirement) => requirement.install))];
  return `${absent.map((requirement) => requirement.path).join(', ')} not found: ${commands.join(' && ')} (npm run test:all does this)`;
}

/** `describe` when glewlwyd, sqlite3 and Chromium are installed (see describeWhenInstalled for what happens otherwise). */
export function describeWithGlewlwyd(name: string, body: () => void): void {
  describeWhenInstalled(name, missing(), body);
}

export interface GlewlwydUser {
  readonly username: string;
  readonly password: string;
  readonly name: string;
  readonly email: string;
}

export interface GlewlwydOptions {
  /** The gateway's PUBLIC_URL: the client's redirect, post-logout and back-channel logout URIs hang off it. */
  readonly gatewayUrl: string;
  /** Seconds; glewlwyd's own default is 3600, and it issues nothing below 60 that the gateway would keep. */
  readonly accessTokenDurationS?: number;
  /** `always`: every refresh returns a new refresh token and disables the old one (rotation). */
  readonly refreshTokenOneUse?: 'never' | 'always';
}

export interface RunningGlewlwyd {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** `{url}/api/oidc`, as the plugin's `iss`. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly user: GlewlwydUser;
  /** Its configuration, log and database folder. */
  readonly dir: string;
  /** A token endpoint request with the client's credentials (client_secret_basic). */
  tokenRequest(form: Record<string, string>): Promise<Response>;
  /** RFC 7662 introspection with the client's credentials (its own tokens only); presenting a token here does not use it up. */
  introspect(token: string, hint: 'access_token' | 'refresh_token'): Promise<Response>;
  /** RFC 7009 revocation with the client's credentials, as an administrator or a password change ends a grant. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<Response>;
  /** Ends a provider session the way glewlwyd's end-session page does: back-channel logout tokens go out. */
  deleteSession(sid: string): Promise<Response>;
  /** What glewlwyd wrote to its log so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function config(options: { port: number; url: string; dir: string }): string {
  const mimeTypes = Object.entries({
    '.html': 'text/html',
    '.css': 'text/css',
    '.js': 'application/javascript',
    '.json': 'application/json',
    '.png': 'image/png',
    '.svg': 'image/svg+xml',
    '.ico': 'image/x-icon',
    '.ttf': 'font/ttf',
    '.woff': 'font/woff',
    '.woff2': 'font/woff2',
    '.map': 'application/octet-stream',
  })
    .map(([extension, type]) => `  { extension = "${extension}"\n    mime_type = "${type}" }`)
    .join(',\n');
  // `use_secure_connection` stays out entirely: 2.7.5 exits with "certificate is not valid" whenever
  // the key is present, even set to false.
  return `port=${options.port}
bind_address="127.0.0.1"
external_url="${options.url}"
login_url="login.html"
static_files_path="${join(options.dir, 'webapp')}"
api_prefix="api"
allow_origin="*"
log_mode="console"
log_level="INFO"
cookie_secure=0
cookie_same_site="empty"
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=false
login_api_enabled=true
add_x_frame_option_header_deny=true
max_post_size=1048576
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="${MODULES}/user"
client_module_path="${MODULES}/client"
user_auth_scheme_module_path="${MODULES}/scheme"
plugin_module_path="${MODULES}/plugin"
hash_algorithm="SHA512"
database = {
  type = "sqlite3"
  path = "${join(options.dir, 'glewlwyd.db')}"
}
static_files_mime_types = (
${mimeTypes}
)
`;
}

/** A cookie-session client of glewlwyd's admin REST API. */
class AdminApi {
  private cookie = '';

  constructor(private readonly url: string) {}

  async signIn(): Promise<void> {
    const response = await fetch(`${this.url}/api/auth/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
    if (!response.ok) throw new Error(`glewlwyd admin sign-in answered ${response.status}`);
    this.cookie = response.headers
      .getSetCookie()
      .map((line) => line.split(';')[0] ?? '')
      .join('; ');
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.url}/api${path}`, {
      method,
      headers: { cookie: this.cookie, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`glewlwyd admin ${method} ${path} answered ${response.status}: ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function configure(admin: AdminApi, options: { issuer: string; gatewayUrl: string; clientId: string; clientSecret: string; user: GlewlwydUser; accessTokenDurationS: number; refreshTokenOneUse: string }): Promise<void> {
  await admin.signIn();

  // The OIDC plugin reads `post_logout_redirect_uris` (an array), but the database client backend only
  // stores the properties its data format lists and silently drops the others.
  const clientModule = await admin.call('GET', '/mod/client/database');
  const parameters = isRecord(clientModule) ? clientModule['parameters'] : undefined;
  const dataFormat = isRecord(parameters) ? parameters['data-format'] : undefined;
  if (!isRecord(clientModule) || !isRecord(parameters) || !isRecord(dataFormat)) throw new Error('glewlwyd client module "database" has no data-format');
  await admin.call('PUT', '/mod/client/database', {
    ...clientModule,
    parameters: { ...parameters, 'data-format': { ...dataFormat, post_logout_redirect_uris: { multiple: true, read: true, write: true } } },
  });
  await admin.call('PUT', '/mod/client/database/reset');

  for (const scope of SCOPES.filter((name) => name !== 'openid')) {
    await admin.call('POST', '/scope/', { name: scope, display_name: scope, description: `${scope} claims`, password_required: false, scheme: {} });
  }
  await admin.call('POST', '/user/', { ...options.user, scope: [...SCOPES], enabled: true });

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await admin.call('POST', '/mod/plugin/', {
    module: 'oidc',
    name: PLUGIN,
    display_name: 'OpenID Connect',
    parameters: {
      iss: options.issuer,
      'jwt-type': 'rsa',
      'jwt-key-size': '256',
      key: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
      cert: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'jwks-show': true,
      'access-token-duration': options.accessTokenDurationS,
      'refresh-token-duration': 3600,
      'refresh-token-rolling': false,
      'refresh-token-one-use': options.refreshTokenOneUse,
      'client-refresh-token-one-use-parameter': '',
      'code-duration': 600,
      'allow-non-oidc': false,
      'auth-type-code-enabled': true,
      'auth-type-token-enabled': false,
      'auth-type-id-token-enabled': false,
      'auth-type-none-enabled': false,
      'auth-type-password-enabled': false,
      'auth-type-client-enabled': false,
      'auth-type-device-enabled': false,
      'auth-type-refresh-enabled': true,
      'allowed-scope': [...SCOPES],
      'subject-type': 'public',
      'secret-type': 'pairwise',
      'name-claim': 'on-demand',
      'name-claim-scope': ['profile'],
      'email-claim': 'on-demand',
      'email-claim-scope': ['email'],
      'scope-claim': 'no',
      claims: [],
      'pkce-allowed': true,
      'pkce-method-plain-allowed': false,
      'introspection-revocation-allowed': true,
      'introspection-revocation-allow-target-client': true,
      'introspection-revocation-auth-scope': [],
      'session-management-allowed': true,
      'session-cookie-name': 'GLEWLWYD2_OIDC_SID',
      'session-cookie-expiration': 3600,
      'front-channel-logout-allowed': true,
      'back-channel-logout-allowed': true,
      'oauth-as-iss-id': true,
      'request-parameter-allow': false,
      // RFC 8707: the access token's `aud` is the API the gateway asks for (without it, the scope list)
      'resource-allowed': true,
      'resource-scope': { openid: [GLEWLWYD_API_RESOURCE] },
      'resource-client-property': '',
      'resource-scope-and-client-property': false,
    },
  });

  const gateway = options.gatewayUrl.replace(/\/+$/, '');
  await admin.call('POST', '/client/', {
    client_id: options.clientId,
    name: 'bff-gateway',
    enabled: true,
    confidential: true,
    client_secret: options.clientSecret,
    redirect_uri: [`${gateway}/auth/callback`],
    post_logout_redirect_uris: [`${gateway}/`],
    authorization_type: ['code', 'refresh_token'],
    token_endpoint_auth_method: ['client_secret_basic'],
    backchannel_logout_uri: `${gateway}/auth/backchannel-logout`,
    backchannel_logout_session_required: 'true',
    scope: [],
  });
}

/** Starts glewlwyd on a free loopback port, configured for one confidential client (the gateway) and one user. */
export async function startGlewlwyd(options: GlewlwydOptions): Promise<RunningGlewlwyd> {
  const dir = await mkdtemp(join(tmpdir(), 'bff-glewlwyd-'));
  let child: Child | undefined;
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const database = join(dir, 'glewlwyd.db');
    // the schema and the admin user, as Debian's README does it: zcat init.sqlite3.sql.gz | sqlite3 FILE
    await run('sh', ['-c', `zcat "$1" | "$2" "$3"`, 'sh', DATABASE_SCRIPT, SQLITE3_PATH, database]);
    // The package's webapp/config.json is a symlink to a folder; the login page wants the file inside it.
    await cp(WEBAPP, join(dir, 'webapp'), { recursive: true, dereference: true });
    await rm(join(dir, 'webapp', 'config.json'), { recursive: true, force: true });
    await copyFile(WEBAPP_CONFIG, join(dir, 'webapp', 'config.json'));
    const configFile = join(dir, 'glewlwyd.conf');
    await writeFile(configFile, config({ port, url, dir }));

    const started = spawnChild(GLEWLWYD_PATH, [`--config-file=${configFile}`]);
    child = started;
    await eventually(
      async () => {
        if (started.process.exitCode !== null) throw new Error('exited');
        return (await fetch(`${url}/api/auth/scheme/`)).status < 500 ? true : undefined;
      },
      15_000,
      `glewlwyd serving ${url}`,
    ).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${started.output()}`);
    });

    const issuer = `${url}/api/${PLUGIN}`;
    const clientId = 'bff-gateway';
    const clientSecret = 'glewlwyd-client-secret-0123456789';
    const user: GlewlwydUser = { username: 'alice', password: 'alice-password-1', name: 'Alice Glewlwyd', email: 'alice@example.test' };
    const admin = new AdminApi(url);
    await configure(admin, {
      issuer,
      gatewayUrl: options.gatewayUrl,
      clientId,
      clientSecret,
      user,
      accessTokenDurationS: options.accessTokenDurationS ?? 60,
      refreshTokenOneUse: options.refreshTokenOneUse ?? 'always',
    }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${started.output()}`);
    });
    const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
    const clientPost = (endpoint: string, form: Record<string, string>): Promise<Response> =>
      fetch(`${issuer}/${endpoint}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() });
    return {
      url,
      issuer,
      clientId,
      clientSecret,
      user,
      dir,
      tokenRequest: (form) => clientPost('token', form),
      introspect: (token, hint) => clientPost('introspect', { token, token_type_hint: hint }),
      revoke: (token, hint) => clientPost('revoke', { token, token_type_hint: hint }),
      deleteSession: (sid) => fetch(`${issuer}/session/${encodeURIComponent(sid)}`, { method: 'DELETE' }),
      output: () => started.output(),
      async stop() {
        await started.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await child?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
