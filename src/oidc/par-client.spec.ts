import { splitForPush } from './par-client.js';

describe('splitForPush (RFC 9126: what is pushed, what the browser carries)', () => {
  it('pushes every authorization parameter, repeated ones (resource) included, and redirects with client_id and request_uri only', () => {
    const url = 'https://op.example/authorize?response_type=code&client_id=bff&redirect_uri=https%3A%2F%2Fbff%2Fauth%2Fcallback&scope=openid&state=s&nonce=n&code_challenge=c&code_challenge_method=S256&resource=urn%3Aa&resource=urn%3Ab&login_hint=bob';
    const { pushed, redirect } = splitForPush(url, 'https://op.example/authorize');
    expect(pushed).toEqual({
      response_type: ['code'],
      client_id: ['bff'],
      redirect_uri: ['https://bff/auth/callback'],
      scope: ['openid'],
      state: ['s'],
      nonce: ['n'],
      code_challenge: ['c'],
      code_challenge_method: ['S256'],
      resource: ['urn:a', 'urn:b'],
      login_hint: ['bob'],
    });
    const browser = new URL(redirect('bff', 'urn:ietf:params:oauth:request_uri:abc'));
    expect([...browser.searchParams]).toEqual([
      ['client_id', 'bff'],
      ['request_uri', 'urn:ietf:params:oauth:request_uri:abc'],
    ]);
  });

  it('keeps the authorization endpoint\'s own query on the redirect and out of the pushed request (Azure B2C\'s p)', () => {
    const { pushed, redirect } = splitForPush('https://b2c.example/authorize?p=B2C_1_signin&state=s', 'https://b2c.example/authorize?p=B2C_1_signin');
    expect(pushed).toEqual({ state: ['s'] });
    expect(redirect('bff', 'urn:x')).toBe('https://b2c.example/authorize?p=B2C_1_signin&client_id=bff&request_uri=urn%3Ax');
  });
});
