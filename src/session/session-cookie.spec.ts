import { jest } from '@jest/globals';
import Fastify, { type FastifyInstance } from 'fastify';
import { loadConfig } from '../config/config.js';
import { testEnvironment } from '../../test/support/test-env.js';
import { createHash } from 'node:crypto';
import { newSessionId, readSessionId, registerSessionCookie, SessionCookieCodec, sessionKey, splitSessionKey, writeSessionId } from './session-cookie.js';

const config = loadConfig(testEnvironment({ PUBLIC_URL: 'http://127.0.0.1:3000' }));
const NAME = config.session.cookie.name;

/** The gateway's cookie plugin on a Fastify instance that never listens. */
async function cookieApp(secrets = config.session.secrets): Promise<FastifyInstance> {
  const app = Fastify();
  await registerSessionCookie(app, { ...config, session: { ...config.session, secrets } });
  await app.ready();
  return app;
}

/** The /api scope's decoder, on a Fastify instance that never listens. */
async function codecApp(secrets = config.session.secrets): Promise<{ readonly app: FastifyInstance; readonly codec: SessionCookieCodec }> {
  const app = Fastify();
  let codec: SessionCookieCodec | undefined;
  await app.register(async (scope) => {
    codec = await SessionCookieCodec.register(scope, { ...config, session: { ...config.session, secrets } });
  });
  await app.ready();
  if (codec === undefined) throw new Error('no codec');
  return { app, codec };
}

describe('SessionCookieCodec', () => {
  /** Seals cookies as the auth routes do. */
  let app: FastifyInstance;
  let decoder: { readonly app: FastifyInstance; readonly codec: SessionCookieCodec };
  beforeAll(async () => {
    app = await cookieApp();
    decoder = await codecApp();
  });
  afterAll(async () => {
    await app.close();
    await decoder.app.close();
  });

  function sealed(data: Record<string, unknown>): string {
    return app.encodeSecureSession(app.createSecureSession(data));
  }

  /** The session id a handshake with this Cookie header carries, by the one validity rule. */
  function sidOf(cookieHeader: string | undefined): string | undefined {
    const decoded = decoder.codec.decode(cookieHeader);
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
      expect(other.decodeSecureSession(foreign)?.get('sid')).toBe('abc');
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

  it('reads a cookie it has opened before as a new session object each time: what one request drops, the next still reads', () => {
    const header = `${NAME}=${encodeURIComponent(sealed({ sid: 'again' }))}`;
    const first = decoder.codec.decode(header);
    if (first === undefined) throw new Error('not decoded');
    writeSessionId(first, undefined);
    expect(sidOf(header)).toBe('again');
    expect(readSessionId(first)).toBeUndefined();
  });

  it("stops reading a cookie it has opened before once secure-session's expiry for it has passed", () => {
    const header = `${NAME}=${encodeURIComponent(sealed({ sid: 'ageing' }))}`;
    expect(sidOf(header)).toBe('ageing');
    const now = Date.now();
    const later = jest.spyOn(Date, 'now').mockReturnValue(now + (config.session.absoluteTimeoutS + 1) * 1000);
    try {
      expect(sidOf(header)).toBeUndefined();
    } finally {
      later.mockRestore();
    }
  });

  it('writes no Set-Cookie for a cookie the request left as it was, nor for none', () => {
    const header = `${NAME}=${encodeURIComponent(sealed({ sid: 'kept' }))}`;
    expect(decoder.codec.setCookie(decoder.codec.decode(header))).toBeUndefined();
    expect(decoder.codec.setCookie(undefined)).toBeUndefined();
  });

  it('writes the Set-Cookie that drops the session id when the request dropped it, with the attributes of the session cookie', () => {
    const header = `${NAME}=${encodeURIComponent(sealed({ sid: 'unknown' }))}`;
    // twice: the second decode comes from what the codec remembered
    for (let i = 0; i < 2; i++) {
      const cookie = decoder.codec.decode(header);
      if (cookie === undefined) throw new Error('not decoded');
      writeSessionId(cookie, undefined);
      const setCookie = decoder.codec.setCookie(cookie) ?? '';
      expect(setCookie).toMatch(new RegExp(`^${NAME}=[^;]+; Max-Age=${config.session.absoluteTimeoutS}; Path=/; HttpOnly; Secure; SameSite=Lax$`));
      const value = decodeURIComponent(setCookie.slice(NAME.length + 1, setCookie.indexOf(';')));
      expect(app.decodeSecureSession(value)?.get('sid')).toBeUndefined();
    }
  });

  it('seals a cookie opened with a retired secret again with the first one on a refusal, also when it remembered the cookie', async () => {
    const retired = 'retired-session-secret-0123456789abcdef';
    const rotated = await codecApp([...config.session.secrets, retired]);
    const old = await cookieApp([retired]);
    try {
      const header = `${NAME}=${encodeURIComponent(old.encodeSecureSession(old.createSecureSession({ sid: 'rotating' })))}`;
      for (let i = 0; i < 2; i++) {
        const cookie = rotated.codec.decode(header);
        expect(cookie === undefined ? undefined : readSessionId(cookie)).toBe('rotating');
        const setCookie = rotated.codec.setCookie(cookie) ?? '';
        const value = decodeURIComponent(setCookie.slice(NAME.length + 1, setCookie.indexOf(';')));
        // opens under the first secret alone
        expect(app.decodeSecureSession(value)?.get('sid')).toBe('rotating');
      }
    } finally {
      await rotated.app.close();
      await old.close();
    }
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
