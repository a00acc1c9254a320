import { isLocalPath, safeReturnTo } from './return-to.js';

describe('isLocalPath', () => {
  it.each(['/', '/orders', '/orders/42?tab=items#top', '/a/b/c', '/%E2%82%AC', '/日本'])('accepts the local path %s', (path) => {
    expect(isLocalPath(path)).toBe(true);
  });

  it.each([
    'https://evil.example',
    '//evil.example',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    'evil.example',
    '',
    '/\tevil',
    '/\nevil',
    '/ evil',
    '/%2F%2Fevil.example',
    '/%5Cevil.example',
    `/${'a'.repeat(3000)}`,
  ])('refuses %j', (path) => {
    expect(isLocalPath(path)).toBe(false);
  });
});

describe('safeReturnTo', () => {
  it('falls back to / for anything that is not a local path', () => {
    expect(safeReturnTo('//evil.example')).toBe('/');
    expect(safeReturnTo(undefined)).toBe('/');
    expect(safeReturnTo(['/a', '/b'])).toBe('/');
    expect(safeReturnTo('/ok')).toBe('/ok');
  });

  it.each([
    ['/日', '/%E6%97%A5'],
    ['/%E6%97%A5', '/%E6%97%A5'],
    ['/café?q=ü#é', '/caf%C3%A9?q=%C3%BC#%C3%A9'],
    ['/emoji/😀', '/emoji/%F0%9F%98%80'],
    ['/a%20b?x=1&y=2', '/a%20b?x=1&y=2'],
  ])('percent-encodes non-ASCII as UTF-8: %j -> %j', (value, expected) => {
    expect(safeReturnTo(value)).toBe(expected);
  });

  it.each([
    ['CR', '/x\ry'],
    ['LF', '/x\ny'],
    ['CR LF header injection', '/x\r\nSet-Cookie: a=b'],
    ['NUL', '/x\u0000y'],
    ['a C0 control', '/x\u001by'],
    ['DEL', '/x\u007fy'],
    ['a C1 control (NEL)', '/x\u0085y'],
    ['a C1 control (CSI)', '/x\u009by'],
    ['a lone surrogate', '/x\ud800y'],
  ])('falls back to / for %s', (_what, value) => {
    expect(safeReturnTo(value)).toBe('/');
  });

  it('falls back to / when the encoded path passes the length limit', () => {
    expect(safeReturnTo(`/${'日'.repeat(300)}`)).toBe('/');
  });

  it('returns a value Node accepts as a Location header', async () => {
    const { validateHeaderValue } = await import('node:http');
    for (const value of ['/日', '/café', '/😀?q=日']) expect(() => validateHeaderValue('location', safeReturnTo(value))).not.toThrow();
  });
});
