import { randomBytes } from 'node:crypto';
import type { Page, Request } from 'playwright-core';
import { describeInChromium, launchChromium, serveStaticSite, type ChromiumSession, type StaticSite } from '../support/chromium.js';
import { freePort } from '../support/ports.js';
import { startRogueStack, type RogueStack } from '../support/rogue-op.js';

const SIGNED_OUT_TEXT = 'Signed out.';

/**
 * Front-channel logout as a provider performs it: its own page (on 127.0.0.1) frames the gateway's
 * logout URI (on localhost), a cross-site iframe, so the SameSite=Lax session cookie is not sent.
 */
describeInChromium('front-channel logout in Chromium', () => {
  let stack: RogueStack;
  let chromium: ChromiumSession;
  let page: Page;
  let gateway: string;
  let otherSite: StaticSite | undefined;
  /** Every request Chromium made to the front-channel logout URI, with the headers it really sent. */
  const logoutRequests: Array<{ url: string; headers: Record<string, string> }> = [];

  beforeAll(async () => {
    const port = await freePort();
    gateway = `http://localhost:${port}`;
    stack = await startRogueStack({ PORT: String(port), PUBLIC_URL: gateway, OIDC_FRONTCHANNEL_LOGOUT: 'true' });
    chromium = await launchChromium();
    page = await chromium.context.newPage();
    page.on('request', (request: Request) => {
      if (request.url().includes('/auth/frontchannel-logout')) {
        void request.allHeaders().then((headers) => logoutRequests.push({ url: request.url(), headers }));
      }
    });
  });
  afterAll(async () => {
    await chromium.close();
    await otherSite?.close();
    await stack.stop();
  });

  /** Signs in in Chromium through the rogue provider with an ID token carrying this provider `sid`. */
  async function signIn(sid: string): Promise<void> {
    stack.rogue.scenario = () => ({ claims: { sid } });
    await page.goto(`${gateway}/auth/login`);
    expect(await meStatus()).toBe(200);
  }

  async function meStatus(): Promise<number> {
    return (await page.goto(`${gateway}/auth/me`))?.status() ?? 0;
  }

  const frameUrl = (params: Record<string, string>): string => `${gateway}/auth/frontchannel-logout?${new URLSearchParams(params).toString()}`;

  /** Opens `site`'s page framing `frames` and returns what each frame shows. */
  async function framedTexts(pageUrl: string, count: number): Promise<string[]> {
    await page.goto(pageUrl);
    const texts: string[] = [];
    for (let i = 0; i < count; i++) {
      const frame = await (await page.$(`#frame-${i}`))?.contentFrame();
      texts.push(frame === null || frame === undefined ? '(no frame)' : await frame.locator('body').innerText().catch(() => '(blocked)'));
    }
    return texts;
  }

  function providerPage(frames: readonly string[]): string {
    const url = new URL(`${stack.rogue.issuer}/logout-page`);
    for (const frame of frames) url.searchParams.append('frame', frame);
    return url.href;
  }

  it('ends the session when the provider\'s page frames the logout URI, although the cookie is not sent', async () => {
    const sid = randomBytes(8).toString('hex');
    await signIn(sid);
    logoutRequests.length = 0;
    const texts = await framedTexts(providerPage([frameUrl({ iss: stack.rogue.issuer, sid })]), 1);
    // rendered inside the provider's page: the CSP frame-ancestors names the provider's origin
    expect(texts).toEqual([SIGNED_OUT_TEXT]);
    // cross-site as in production: the iframe request carried no session cookie
    expect(logoutRequests).toHaveLength(1);
    expect(logoutRequests[0]?.headers['cookie'] ?? '').not.toContain(stack.gateway.config.session.cookie.name);
    expect(await meStatus()).toBe(401);
  });

  it('shows the same page for a wrong iss, a missing sid and an unknown sid, and ends nothing', async () => {
    const sid = randomBytes(8).toString('hex');
    await signIn(sid);
    const frames = [frameUrl({ iss: 'https://op.evil.example', sid }), frameUrl({ iss: stack.rogue.issuer }), frameUrl({ iss: stack.rogue.issuer, sid: randomBytes(8).toString('hex') })];
    expect(await framedTexts(providerPage(frames), frames.length)).toEqual([SIGNED_OUT_TEXT, SIGNED_OUT_TEXT, SIGNED_OUT_TEXT]);
    expect(await meStatus()).toBe(200);
  });

  it('cannot be framed by a site other than the provider', async () => {
    await signIn(randomBytes(8).toString('hex'));
    const frame = frameUrl({ iss: stack.rogue.issuer, sid: randomBytes(8).toString('hex') });
    otherSite = await serveStaticSite({ '/': { type: 'text/html; charset=utf-8', body: `<!doctype html><iframe id="frame-0" src="${frame}"></iframe>` } });
    const [text] = await framedTexts(`${otherSite.url}/`, 1);
    expect(text).not.toContain(SIGNED_OUT_TEXT);
    expect(chromium.blocked).toEqual([]);
  });
});
