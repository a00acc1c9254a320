import Fastify, { type FastifyInstance } from 'fastify';
import { loadConfig } from '../config/config.js';
import { testEnvironment } from '../../test/support/test-env.js';
import { createHash } from 'node:crypto';
import { decodeSessionCookie, newSessionId, readSessionId, registerSessionCookie, sessionKey, splitSessionKey } from './session-cookie.js';

const config = loadConfig(testEnvironment({ PUBLIC_URL: 'http://127.0.0.1:3000' }));
const NAME = config.session.cookie.name;

/** The gateway's cookie plugin on a Fastify instance that never listens. */
async function cookieApp(secrets = config.session.secrets): Promise<FastifyInstance> {
  const app = Fastify();
  await registerSessionCookie(app, { ...config, session: { ...config.session, secrets } });
  await app.ready();
  return app;
}

describe('decodeSessionCookie', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await cookieApp();
  });
  afterAll(async () => {
    await app.close();
  });

  function sealed(data: Record<string, unknown>): string {
    return app.encodeSecureSession(app.createSecureSession(data));
  }

  /** The session id a handshake with this Cookie header carries, by the one validity rule. */
  function sidOf(cookieHeader: string | undefined): string | undefined {
    const decoded = decodeSessionCookie(app, cookieHeader, NAME);
    return decoded === undefined ? undefined : readSessionId(decoded);
  }

  it('reads the sid of the session cookie among other cookies, URL-encoded as the plugin writes it', () => {
    expect(sidOf(`theme=dark; ${NAME}=${encodeURIComponent(sealed({ sid: 'abc' }))}; other=1`)).toBe('abc');
  });

  it('ignores a cookie of the same value under another name', () => {
    expect(sidOf(`other-session=${encodeURIComponent(sealed({ sid: 'abc' }))}`)).toBeUndefined();
  });

  it.each([
    ['no Cookie header', undefined],
    ['no session cookie', 'theme=dark'],
    ['a malformed cookie', `${NAME}=garbage`],
    ['a tampered cookie', `${NAME}=${encodeURIComponent(`AAAA${'A'.repeat(40)};${'A'.repeat(32)}`)}`],
  ])('reads no sid from %s', (_what, header) => {
    expect(sidOf(header)).toBeUndefined();
  });

  it('reads no sid from a cookie sealed for real with another secret', async () => {
    const other = await cookieApp(['another-session-secret-0123456789abcdef']);
    try {
      const foreign = other.encodeSecureSession(other.createSecureSession({ sid: 'abc' }));
      expect(sidOf(`${NAME}=${encodeURIComponent(foreign)}`)).toBeUndefined();
      // the same cookie opens where its secret is known: the refusal above is the key's doing
      expect(decodeSessionCookie(other, `${NAME}=${encodeURIComponent(foreign)}`, NAME)?.get('sid')).toBe('abc');
    } finally {
      await other.close();
    }
  });

  it.each([
    ['an empty sid', { sid: '' }],
    ['a sid that is not a string', { sid: 42 }],
    ['only a login transaction', { login: { state: 'x' } }],
  ])('holds to the one validity rule: %s is no session id', (_what, data) => {
    expect(sidOf(`${NAME}=${encodeURIComponent(sealed(data))}`)).toBeUndefined();
  });
});

describe('session ids and store keys', () => {
  const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex');
  const TAG = 'ab'.repeat(32);

  it('keys an untagged id by its SHA-256 alone', () => {
    const sid = newSessionId(undefined);
    expect(sid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessionKey(sid)).toBe(sha256(sid));
    expect(splitSessionKey(sessionKey(sid))).toBeUndefined();
  });

  it("keeps a store's tag after the hash of the random part, where the store finds it", () => {
    const sid = newSessionId(TAG);
    const [random = ''] = sid.split('.');
    expect(sid).toBe(`${random}.${TAG}`);
    expect(sessionKey(sid)).toBe(`${sha256(random)}.${TAG}`);
    expect(splitSessionKey(sessionKey(sid))).toEqual({ hash: sha256(random), tag: TAG });
  });

  it.each([['no tag after the dot', 'abc.'], ['a tag that is not lower-case hex', 'abc.XYZ'], ['two dots', 'a.b.cd']])('reads no tag from a key with %s', (_what, key) => {
    expect(splitSessionKey(key)).toBeUndefined();
  });
});
