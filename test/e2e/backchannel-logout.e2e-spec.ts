import type { BrowserClient } from '../support/browser.js';
import { startStack, type Stack } from '../support/stack.js';

describe('back-channel logout from the real provider', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack.stop();
  });

  const me = async (browser: BrowserClient): Promise<number> => (await browser.request(`${stack.gateway.url}/auth/me`)).status;

  it('ends the gateway session when the user signs out at the provider', async () => {
    const browser = await stack.signedIn('carol');
    const bystander = await stack.signedIn('dave');
    expect(await me(browser)).toBe(200);
    // the user signs out at the provider directly (another app's logout, the provider's account page...)
    const page = await browser.navigate(`${stack.op.issuer}/session/end?client_id=${stack.op.clientId}`);
    await browser.confirmProviderLogout(page.response);
    expect(await me(browser)).toBe(401);
    expect(await me(bystander)).toBe(200);
  });

  it.each([
    ['no logout_token', {}],
    ['a logout_token that is not a JWT', { logout_token: 'not-a-jwt' }],
    ['an unsigned logout_token', { logout_token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"dave"}').toString('base64url')}.` }],
  ])('answers 400 logout_token_invalid to %s and ends nothing', async (_what, form) => {
    const bystander = await stack.signedIn('erin');
    const res = await fetch(`${stack.gateway.url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'logout_token_invalid' });
    expect(await me(bystander)).toBe(200);
  });
});
