import { CookieJar, getPublicSuffix } from 'tough-cookie';

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  body?: string;
}

export interface NavigateOptions extends RequestOptions {
  /**
   * Stops before requesting a redirect target this matches (for example a callback nobody serves yet):
   * navigate() then returns the 30x response that pointed there, and `stoppedAt` names the target.
   */
  stopAt?: (url: URL) => boolean;
}

export interface Navigation {
  /** The last response: the page the browser now shows, or the redirect navigation stopped at. */
  response: Response;
  /** Every URL requested, in order, starting with the one navigated to. */
  visited: string[];
  /** The redirect target that `stopAt` matched; undefined when the navigation ran to its end. */
  stoppedAt: string | undefined;
}

export interface SignInOptions {
  /** Any login works at the demo provider; `alice` (the default) has a full profile. */
  login?: string;
  /** The demo provider accepts any non-empty password. */
  password?: string;
  returnTo?: string;
  /** Extra query parameters for the gateway's /auth/login. */
  loginParams?: Record<string, string>;
}

export interface JarCookie {
  name: string;
  value: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: string | undefined;
  path: string;
  domain: string;
  hostOnly: boolean;
}

export interface HtmlForm {
  id: string | undefined;
  /** Absolute URL. */
  action: string;
  /** Upper case. */
  method: string;
  /** Hidden inputs only: what a user submits without typing. */
  fields: Record<string, string>;
}

type FetchSite = 'none' | 'same-origin' | 'same-site' | 'cross-site';
const FETCH_SITE_RANK: Record<FetchSite, number> = { none: 0, 'same-origin': 1, 'same-site': 2, 'cross-site': 3 };
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;
const INTERACTION_PATH = /^\/interaction\/[^/]+$/;

/** Schemeful site (HTML §7.1.1): loopback and IP hosts are their own site; ports do not count. */
function siteOf(url: URL): string {
  const host = url.hostname;
  const isAddress = /^[\d.]+$/.test(host) || host.startsWith('[');
  const registrable = isAddress || host === 'localhost' ? host : (getPublicSuffix(host, { allowSpecialUseDomain: true }) ?? host);
  return `${url.protocol}//${registrable}`;
}

function fetchSite(from: URL | undefined, to: URL): FetchSite {
  if (from === undefined) return 'none';
  if (from.origin === to.origin) return 'same-origin';
  return siteOf(from) === siteOf(to) ? 'same-site' : 'cross-site';
}

function worse(a: FetchSite, b: FetchSite): FetchSite {
  return FETCH_SITE_RANK[a] >= FETCH_SITE_RANK[b] ? a : b;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity: string, code: string) => {
    if (code.startsWith('#x') || code.startsWith('#X')) return String.fromCodePoint(Number.parseInt(code.slice(2), 16));
    if (code.startsWith('#')) return String.fromCodePoint(Number.parseInt(code.slice(1), 10));
    return ENTITIES[code.toLowerCase()] ?? entity;
  });
}

function parseAttributes(source: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of source.matchAll(/([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+)))?/g)) {
    const name = match[1];
    if (name !== undefined) attributes[name.toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attributes;
}

/** Regex parsing is enough for oidc-provider's dev pages and the gateway's own small pages. */
export function parseForms(html: string, pageUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = parseAttributes(match[1] ?? '');
    const fields: Record<string, string> = {};
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const inputAttributes = parseAttributes(input[1] ?? '');
      const name = inputAttributes['name'];
      if (inputAttributes['type']?.toLowerCase() === 'hidden' && name !== undefined) fields[name] = inputAttributes['value'] ?? '';
    }
    forms.push({
      id: attributes['id'],
      action: new URL(attributes['action'] ?? pageUrl, pageUrl).href,
      method: (attributes['method'] ?? 'get').toUpperCase(),
      fields,
    });
  }
  return forms;
}

function encodeBody(options: RequestOptions): { body: string | undefined; contentType: string | undefined } {
  if (options.form !== undefined) return { body: new URLSearchParams(options.form).toString(), contentType: 'application/x-www-form-urlencoded' };
  return { body: options.body, contentType: undefined };
}

/**
 * A cookie-jar HTTP client that drives flows as a browser would: it follows redirects one hop at a
 * time, sends navigation headers, applies SameSite by the site of the page that started a request,
 * and keeps Secure cookies on http://localhost and http://127.0.0.1 (loopback is a secure context,
 * so the gateway's `__Host-` cookie works there as in Chromium).
 */
export class BrowserClient {
  readonly jar = new CookieJar(undefined, {
    // tough-cookie 6 defaults, spelled out because the tests depend on them: Secure cookies are stored
    // and sent on loopback over plain http, and refused from any other plain-http origin.
    allowSecureOnLocal: true,
    enforceSecureOriginOnStorage: true,
    // As browsers: a `__Host-`/`__Secure-` cookie that breaks its prefix rules is dropped silently.
    prefixSecurity: 'silent',
  });

  /** The document the browser shows: it initiates the next navigation or request. */
  private page: URL | undefined;

  /** The URL of the page the last navigation ended on. */
  get currentUrl(): string | undefined {
    return this.page?.href;
  }

  /** One request from the current page (as the page's fetch() would), with cookies; redirects are not followed. */
  async request(url: string, options: RequestOptions = {}): Promise<Response> {
    const target = new URL(url);
    const site = fetchSite(this.page, target);
    return this.send(target, options, { navigation: false, site, origin: this.page?.origin });
  }

  /** A top-level navigation from the current page: follows redirects by hand, at most 20 hops. */
  async navigate(url: string, options: NavigateOptions = {}): Promise<Navigation> {
    const initiator = this.page;
    let target = new URL(url);
    let method = (options.method ?? 'GET').toUpperCase();
    let requestOptions: RequestOptions = options;
    let site = fetchSite(initiator, target);
    // Fetch §4.4: once a redirect leaves the initiator's origin, a replayed POST says `Origin: null`.
    let tainted = false;
    const visited: string[] = [];
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      visited.push(target.href);
      const origin = initiator === undefined ? undefined : tainted ? 'null' : initiator.origin;
      const response = await this.send(target, { ...requestOptions, method }, { navigation: true, site, origin });
      const location = response.headers.get('location');
      if (!REDIRECT_STATUSES.has(response.status) || location === null) {
        this.page = target;
        return { response, visited, stoppedAt: undefined };
      }
      const next = new URL(location, target);
      if (options.stopAt?.(next) === true) {
        this.page = target;
        return { response, visited, stoppedAt: next.href };
      }
      await response.body?.cancel();
      // 303, and 301/302 after a POST, turn into GET without a body (Fetch §4.4); 307/308 replay it.
      if (response.status === 303 ? method !== 'HEAD' : response.status !== 307 && response.status !== 308 && method === 'POST') {
        method = 'GET';
        requestOptions = {};
      } else {
        // Headers a test set belong to the first request only, as a page cannot add any to a navigation.
        requestOptions = { ...requestOptions, headers: {} };
      }
      // Sec-Fetch-Site reports the most cross-site step of the whole redirect chain.
      site = worse(site, fetchSite(target, next));
      if (initiator !== undefined) site = worse(site, fetchSite(initiator, next));
      tainted ||= initiator !== undefined && next.origin !== initiator.origin;
      target = next;
    }
    throw new Error(`more than ${MAX_REDIRECTS} redirects from ${url}: ${visited.join(' -> ')}`);
  }

  /** The cookies the jar would send to `url` in a same-site request. */
  async cookies(url: string): Promise<JarCookie[]> {
    const cookies = await this.jar.getCookies(url, { http: true });
    return cookies.map((cookie) => ({
      name: cookie.key,
      value: cookie.value,
      httpOnly: cookie.httpOnly,
      secure: cookie.secure,
      sameSite: cookie.sameSite,
      path: cookie.path ?? '/',
      domain: cookie.domain ?? new URL(url).hostname,
      hostOnly: cookie.hostOnly ?? true,
    }));
  }

  /**
   * Signs in through the gateway: /auth/login, the provider's login page (login + password), its
   * consent page, back through /auth/callback to wherever the gateway lands. Pages the provider skips
   * (an existing provider session, a grant already given) are skipped here too.
   */
  async signIn(gatewayUrl: string, options: SignInOptions = {}): Promise<{ visited: string[]; final: Response }> {
    const loginUrl = new URL(`${gatewayUrl.replace(/\/+$/, '')}/auth/login`);
    if (options.returnTo !== undefined) loginUrl.searchParams.set('returnTo', options.returnTo);
    for (const [name, value] of Object.entries(options.loginParams ?? {})) loginUrl.searchParams.set(name, value);
    const start = await this.navigate(loginUrl.href);
    const navigation = await this.completeProviderInteraction(start, options);
    return { visited: [...start.visited, ...navigation.visited], final: navigation.response };
  }

  /**
   * While `navigation` shows a provider login or consent page, fills it in (login, password) and
   * submits it; returns where that ends (with only the URLs visited after `navigation`). `stopAt` is
   * passed on, so a test can stop at a callback nobody serves or keep it to replay or tamper with.
   */
  async completeProviderInteraction(
    navigation: Navigation,
    options: { login?: string; password?: string; stopAt?: (url: URL) => boolean } = {},
  ): Promise<Navigation> {
    let current = navigation;
    const visited: string[] = [];
    // Login, then consent; a third page would mean the provider is not behaving like the demo provider.
    for (let step = 0; step < 3; step++) {
      const form = current.stoppedAt === undefined ? await this.providerInteractionForm(current.response) : undefined;
      if (form === undefined) return { ...current, visited };
      const fields = form.fields['prompt'] === 'login' ? { ...form.fields, login: options.login ?? 'alice', password: options.password ?? 'any-password' } : form.fields;
      current = await this.navigate(form.action, { method: form.method, form: fields, ...(options.stopAt === undefined ? {} : { stopAt: options.stopAt }) });
      visited.push(...current.visited);
    }
    throw new Error(`still on the provider's interaction pages after login and consent: ${visited.join(' -> ')}`);
  }

  /**
   * Answers "Yes, sign me out" on the provider's end-session page (oidc-provider renders a form with an
   * `xsrf` field and a `logout=yes` button outside it; without a provider session it renders a
   * self-submitting form that already carries `logout=yes`). Follows the redirects that result.
   */
  async confirmProviderLogout(page: Response): Promise<Navigation> {
    const { forms, url } = await this.readForms(page);
    const form = forms.find((candidate) => new URL(candidate.action).pathname.endsWith('/session/end/confirm'));
    if (form === undefined) throw new Error(`no end-session confirmation form on ${url}`);
    return this.navigate(form.action, { method: form.method, form: { ...form.fields, logout: 'yes' } });
  }

  /** Clicks "[ Cancel ]" on a provider login or consent page: the provider answers the client with access_denied. */
  async abortProviderInteraction(page: Response): Promise<Navigation> {
    const url = this.responseUrl(page);
    const html = await page.text();
    const link = /<a\b[^>]*\bhref="([^"]*)"[^>]*>\s*\[ Cancel \]\s*<\/a>/i.exec(html)?.[1];
    if (link === undefined) throw new Error(`no cancel link on ${url}`);
    return this.navigate(new URL(decodeEntities(link), url).href);
  }

  /** Submits the page's first form (or the one `pick` chooses) with its hidden fields plus `fields`. */
  async submitForm(page: Response, fields: Record<string, string> = {}, pick: (form: HtmlForm) => boolean = () => true): Promise<Navigation> {
    const { forms, url } = await this.readForms(page);
    const form = forms.find(pick);
    if (form === undefined) throw new Error(`no matching form on ${url}`);
    return this.navigate(form.action, { method: form.method, form: { ...form.fields, ...fields } });
  }

  /** The login or consent form when `response` is a provider interaction page; the body is only read then. */
  private async providerInteractionForm(response: Response): Promise<HtmlForm | undefined> {
    const url = new URL(this.responseUrl(response));
    if (response.status !== 200 || !INTERACTION_PATH.test(url.pathname)) return undefined;
    const { forms } = await this.readForms(response);
    const form = forms.find((candidate) => candidate.fields['prompt'] === 'login' || candidate.fields['prompt'] === 'consent');
    if (form === undefined) throw new Error(`provider interaction page without a login or consent form at ${url.href}`);
    return form;
  }

  private async readForms(page: Response): Promise<{ forms: HtmlForm[]; url: string }> {
    const url = this.responseUrl(page);
    return { forms: parseForms(await page.text(), url), url };
  }

  private responseUrl(response: Response): string {
    if (response.url === '') throw new Error('response has no URL (not one this client fetched)');
    return response.url;
  }

  /** `origin` undefined: nothing initiated the request (a typed URL, a test's first call), so no Origin header. */
  private async send(target: URL, options: RequestOptions, context: { navigation: boolean; site: FetchSite; origin: string | undefined }): Promise<Response> {
    const method = (options.method ?? 'GET').toUpperCase();
    const safe = method === 'GET' || method === 'HEAD';
    // RFC 6265bis §5.2: Strict cookies only same-site; Lax also on cross-site top-level GET navigations.
    const sameSiteContext = context.site !== 'cross-site' ? 'strict' : context.navigation && safe ? 'lax' : 'none';
    const headers = new Headers(options.headers);
    const cookie = await this.jar.getCookieString(target.href, { http: true, sameSiteContext });
    if (cookie !== '') headers.set('cookie', cookie);
    if (context.navigation) {
      if (!headers.has('accept')) headers.set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
      headers.set('sec-fetch-mode', 'navigate');
      headers.set('sec-fetch-dest', 'document');
      headers.set('sec-fetch-site', context.site);
    }
    if (!safe && context.origin !== undefined && !headers.has('origin')) headers.set('origin', context.origin);
    const { body, contentType } = encodeBody(options);
    if (contentType !== undefined && !headers.has('content-type')) headers.set('content-type', contentType);
    const response = await fetch(target, { method, headers, redirect: 'manual', ...(body === undefined || safe ? {} : { body }) });
    for (const setCookie of response.headers.getSetCookie()) {
      // Browsers drop cookies they refuse (a Secure cookie from a plain-http non-loopback origin,
      // a broken `__Host-` prefix) without failing the page; a cross-site fetch() cannot set SameSite ones.
      await this.jar.setCookie(setCookie, target.href, { ignoreError: true, ...(context.navigation ? {} : { sameSiteContext }) });
    }
    return response;
  }
}
