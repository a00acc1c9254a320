import type { Page } from 'playwright-core';
import { describeInChromium, launchChromium, type ChromiumSession } from '../support/chromium.js';
import { startStack, type Stack } from '../support/stack.js';

const PASSWORD = 'urn:bff-demo:pwd';
const MFA = 'urn:bff-demo:mfa';

describeInChromium('step-up authentication from the sample SPA in Chromium', () => {
  let stack: Stack;
  let browser: ChromiumSession;
  let page: Page;
  let spa: string;
  const pageErrors: string[] = [];

  /** The provider's login page, then its consent page when it shows one, until the browser is back on the SPA. */
  async function signInAtProvider(): Promise<void> {
    await page.waitForURL((url) => url.origin === stack.op.issuer && url.pathname.startsWith('/interaction/'));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.waitForURL((url) => url.origin === new URL(spa).origin || (url.origin === stack.op.issuer && url.pathname.startsWith('/interaction/')));
    if (new URL(page.url()).origin === stack.op.issuer) await page.getByRole('button', { name: 'Continue' }).click();
  }

  beforeAll(async () => {
    stack = await startStack({ OIDC_ACR_VALUES_ALLOWED: `${PASSWORD},${MFA}` }, {}, 'localhost');
    spa = stack.gateway.config.server.publicUrl;
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  it('signs in at the password level, which /auth/me reports', async () => {
    await page.goto(`${spa}/payments`);
    await page.getByTestId('sign-in').click();
    await signInAtProvider();
    await page.waitForURL(`${spa}/payments`);
    await page.getByTestId('signed-in').waitFor();
    expect(await page.getByTestId('acr').textContent()).toBe(PASSWORD);
  });

  it('sends the user through the provider for the stronger level the API asks for, and back to the same page, where the call succeeds', async () => {
    await page.getByTestId('transfer').click();
    // the gateway answered step_up_required; the SPA went to its loginUrl with its own returnTo
    await page.waitForURL((url) => url.origin === stack.op.issuer);
    const challenged = stack.upstream.received.filter((r) => r.url === '/api/transfers');
    expect(challenged).toHaveLength(1);
    await signInAtProvider();
    await page.waitForURL(`${spa}/payments`);
    await page.getByTestId('signed-in').waitFor();
    expect(await page.getByTestId('acr').textContent()).toBe(MFA);

    await page.getByTestId('transfer').click();
    await page.getByTestId('transfer-answer').waitFor();
    expect(await page.getByTestId('transfer-acr').textContent()).toBe(MFA);
    expect(stack.upstream.received.filter((r) => r.url === '/api/transfers').map((r) => r.method)).toEqual(['POST', 'POST']);
    expect(await page.getByTestId('error').isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
    expect(browser.blocked).toEqual([]);
  });
});
