import { isLocalPath, safeReturnTo } from './return-to.js';

describe('isLocalPath', () => {
  it.each(['/', '/orders', '/orders/42?tab=items#top', '/a/b/c', '/%E2%82%AC'])('accepts the local path %s', (path) => {
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
});
