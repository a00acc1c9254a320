import { MAX_WWW_AUTHENTICATE_LENGTH, parseWwwAuthenticate, type Challenge } from './www-authenticate.js';

function plain(challenges: Challenge[] | undefined): unknown {
  return challenges?.map((c) => ({ scheme: c.scheme, ...(c.token68 === undefined ? {} : { token68: c.token68 }), params: Object.fromEntries(c.params) }));
}

describe('parseWwwAuthenticate', () => {
  it('reads an RFC 9470 step-up challenge with quoted and token values', () => {
    expect(plain(parseWwwAuthenticate('Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR",max_age=5'))).toEqual([
      { scheme: 'Bearer', params: { error: 'insufficient_user_authentication', error_description: 'A different authentication level is required', acr_values: 'myACR', max_age: '5' } },
    ]);
  });

  it('reads several challenges in one field (RFC 9110 §11.6.1\'s example), with escapes, token68 and empty list elements', () => {
    expect(plain(parseWwwAuthenticate('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'))).toEqual([
      { scheme: 'Newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'Basic', params: { realm: 'simple' } },
    ]);
    expect(plain(parseWwwAuthenticate(' , Negotiate abc+/d==, ,DPoP algs="ES256 PS256" ,Bearer'))).toEqual([
      { scheme: 'Negotiate', token68: 'abc+/d==', params: {} },
      { scheme: 'DPoP', params: { algs: 'ES256 PS256' } },
      { scheme: 'Bearer', params: {} },
    ]);
    expect(plain(parseWwwAuthenticate('Bearer REALM = "x" ,\tError="e"'))).toEqual([{ scheme: 'Bearer', params: { realm: 'x', error: 'e' } }]);
    expect(parseWwwAuthenticate('')).toEqual([]);
    // a lone `name=` is a token68 by the grammar, not an empty parameter
    expect(plain(parseWwwAuthenticate('Bearer error='))).toEqual([{ scheme: 'Bearer', token68: 'error=', params: {} }]);
  });

  it('refuses malformed fields whole: unterminated quotes, control characters, duplicate parameters, bare or missing values', () => {
    for (const hostile of [
      'Bearer error="insufficient_user_authentication',
      'Bearer error="a\\',
      'Bearer error="a\u0000b"',
      'Bearer error="a\u007fb"',
      'Bearer error="a", error="b"',
      'Bearer error="a", ERROR="b"',
      'Bearer realm="x", error=',
      'Bearer =x',
      'Bearer error="a" acr_values="b"',
      'Bearer error="a"x',
      '"Bearer"',
      'Bearer"x"',
      'Bearer error=a b',
      'Basic abc==def',
    ]) {
      expect([hostile, parseWwwAuthenticate(hostile)]).toEqual([hostile, undefined]);
    }
  });

  it('reads nothing of a field longer than the limit, and stays linear on the longest it reads', () => {
    expect(parseWwwAuthenticate(`Bearer error="${'a'.repeat(MAX_WWW_AUTHENTICATE_LENGTH)}"`)).toBeUndefined();
    const many = Array.from({ length: 800 }, (_, i) => `p${i}="v"`).join(',').slice(0, MAX_WWW_AUTHENTICATE_LENGTH - 7);
    const parsed = parseWwwAuthenticate(`Bearer ${many.slice(0, many.lastIndexOf(','))}`);
    expect(parsed?.[0]?.params.size).toBeGreaterThan(500);
    const commas = `Bearer${','.repeat(MAX_WWW_AUTHENTICATE_LENGTH - 6)}`;
    expect(plain(parseWwwAuthenticate(commas))).toEqual([{ scheme: 'Bearer', params: {} }]);
    const unterminated = `Bearer a="${'\\"'.repeat((MAX_WWW_AUTHENTICATE_LENGTH - 12) / 2)}`;
    expect(parseWwwAuthenticate(unterminated)).toBeUndefined();
  });
});
