// The bff-gateway sample app: plain JavaScript, no framework, no build step.
//
// The whole contract between a single-page app and the gateway fits on this page:
//   GET  /auth/me                  who is signed in (401 when nobody is)
//   GET  /auth/login?returnTo=...  navigate here to sign in
//   GET  <logoutUrl from /auth/me> navigate here to sign out
//   *    /api/...                  your API, called with fetch() and the header X-CSRF: 1
//   401 step_up_required           the API wants a stronger sign-in: navigate to its loginUrl + &returnTo=...
//
// What this code never does is touch a token. The gateway keeps the access and refresh tokens on
// the server and gives the browser only an HttpOnly session cookie, which JavaScript cannot read
// (document.cookie does not show it). So there is nothing for an injected script to steal and
// send elsewhere, and nothing to store in localStorage, refresh, or attach to requests: the
// browser sends the cookie by itself, and the gateway adds the Bearer token on the way to the API.

const elements = {
  loading: document.getElementById('loading'),
  signedOut: document.getElementById('signed-out'),
  signedIn: document.getElementById('signed-in'),
  userName: document.getElementById('user-name'),
  expiresAt: document.getElementById('expires-at'),
  signIn: document.getElementById('sign-in'),
  signOut: document.getElementById('sign-out'),
  callApi: document.getElementById('call-api'),
  apiAnswer: document.getElementById('api-answer'),
  apiSub: document.getElementById('api-sub'),
  apiResult: document.getElementById('api-result'),
  ordersAnswer: document.getElementById('orders-answer'),
  ordersSub: document.getElementById('orders-sub'),
  ordersResult: document.getElementById('orders-result'),
  acr: document.getElementById('acr'),
  transfer: document.getElementById('transfer'),
  transferAnswer: document.getElementById('transfer-answer'),
  transferAcr: document.getElementById('transfer-acr'),
  error: document.getElementById('error'),
};

/** The session from /auth/me, while signed in: { sub, claims, expiresAt, logoutUrl }. */
let session;

/**
 * The gateway answers errors as RFC 9457 problem details (application/problem+json). Their
 * `title` is short and safe to show; `code` is stable and meant for program logic.
 */
async function problemOf(response) {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    const body = await response.json().catch(() => ({}));
    if (typeof body.title === 'string') return { title: body.title, code: body.code, loginUrl: body.loginUrl };
  }
  return { title: `Unexpected answer from the gateway (HTTP ${response.status})`, code: undefined };
}

function showError(message) {
  elements.error.textContent = message;
  elements.error.hidden = message === '';
}

function showSignedOut(message = '') {
  session = undefined;
  elements.loading.hidden = true;
  elements.signedIn.hidden = true;
  elements.apiAnswer.hidden = true;
  elements.ordersAnswer.hidden = true;
  elements.transferAnswer.hidden = true;
  elements.signedOut.hidden = false;
  showError(message);
}

function showSignedIn(me) {
  session = me;
  // Claims come from the identity provider: textContent (never innerHTML) keeps them plain text.
  elements.userName.textContent = typeof me.claims.name === 'string' ? me.claims.name : me.sub;
  const expiresAt = new Date(me.expiresAt);
  elements.expiresAt.dateTime = expiresAt.toISOString();
  elements.expiresAt.textContent = expiresAt.toLocaleString();
  // How the user signed in (the ID token's acr), which a step-up raises; absent with some providers.
  elements.acr.textContent = typeof me.acr === 'string' ? me.acr : 'not stated by the provider';
  elements.loading.hidden = true;
  elements.signedOut.hidden = true;
  elements.signedIn.hidden = false;
  showError('');
}

async function loadSession() {
  const response = await fetch('/auth/me', { headers: { Accept: 'application/json' } });
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) {
      // The normal answer when nobody is signed in: offer to sign in, no error.
      showSignedOut();
    } else {
      // 503 (the session store or the provider is down) is not "signed out": say so, sign nobody out.
      elements.loading.hidden = true;
      showError(problem.title);
    }
    return;
  }
  showSignedIn(await response.json());
}

function signIn() {
  // A full-page navigation, not fetch(): the sign-in happens on the identity provider's own pages.
  // The gateway sends the browser back to returnTo (a local path only) once the session exists.
  const returnTo = window.location.pathname + window.location.search;
  window.location.assign(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
}

function signOut() {
  // logoutUrl carries a value bound to this session: a link on another site cannot build it,
  // so nobody can sign you out by making your browser visit /auth/logout.
  if (session !== undefined) window.location.assign(session.logoutUrl);
}

/**
 * One API call. X-CSRF: 1 is the gateway's cross-site request forgery defence. Another site can
 * make the browser send the session cookie (a form post, an <img>), but it cannot add a custom
 * header without a CORS preflight, which the gateway never approves. No header, no API call (403).
 * Which token the API receives is the gateway's business (its route policy): the app calls every
 * API the same way.
 */
async function callOne(path, answer, sub, result) {
  const response = await fetch(path, { headers: { 'X-CSRF': '1', Accept: 'application/json' } });
  if (!response.ok) return response;
  const body = await response.json();
  sub.textContent = body.sub;
  // The sample API echoes more (the request headers it received, for the gateway's tests);
  // the part worth showing is who the API believes is calling, and for which audience.
  const { name, method, audience } = body;
  result.textContent = JSON.stringify({ sub: body.sub, name, method, path: body.path, ...(audience === undefined ? {} : { audience }) }, null, 2);
  answer.hidden = false;
  return undefined;
}

async function callApi() {
  elements.callApi.disabled = true;
  try {
    // Two APIs behind two routes: the demo gives each a token for its own audience.
    const response =
      (await callOne('/api/whoami', elements.apiAnswer, elements.apiSub, elements.apiResult)) ??
      (await callOne('/api/orders/whoami', elements.ordersAnswer, elements.ordersSub, elements.ordersResult));
    if (response !== undefined) {
      const problem = await problemOf(response);
      if (response.status === 401) {
        // The session ended (idle or absolute timeout, signed out elsewhere, refresh refused):
        // "Sign-in required" or "Session expired". Offer to sign in again.
        showSignedOut(`${problem.title}: please sign in again.`);
      } else {
        // 403: a request without X-CSRF (a bug in the app); 502, 503, 504: the API or the provider
        // is down or slow. The session is still there: show what went wrong and let the user retry.
        showError(problem.title);
      }
      return;
    }
    showError('');
  } catch {
    // fetch() rejects only when no answer came at all (the gateway is unreachable).
    showError('The gateway cannot be reached. Check your connection and try again.');
  } finally {
    elements.callApi.disabled = false;
  }
}

/**
 * Step-up authentication (RFC 9470): an API may answer that this action needs a stronger or more
 * recent sign-in. The gateway turns that answer into 401 `step_up_required` with a `loginUrl` asking
 * the provider for exactly that; the app navigates there with its own returnTo, and once back, the
 * same call succeeds (the session was replaced by a stronger one).
 */
async function makeTransfer() {
  elements.transfer.disabled = true;
  try {
    const response = await fetch('/api/transfers', { method: 'POST', headers: { 'X-CSRF': '1', Accept: 'application/json' } });
    if (response.ok) {
      const body = await response.json();
      elements.transferAcr.textContent = body.acr;
      elements.transferAnswer.hidden = false;
      showError('');
      return;
    }
    const problem = await problemOf(response);
    if (problem.code === 'step_up_required' && typeof problem.loginUrl === 'string') {
      const returnTo = window.location.pathname + window.location.search;
      window.location.assign(`${problem.loginUrl}&returnTo=${encodeURIComponent(returnTo)}`);
      return;
    }
    if (response.status === 401) showSignedOut(`${problem.title}: please sign in again.`);
    else showError(problem.title);
  } catch {
    showError('The gateway cannot be reached. Check your connection and try again.');
  } finally {
    elements.transfer.disabled = false;
  }
}

elements.signIn.addEventListener('click', signIn);
elements.transfer.addEventListener('click', () => void makeTransfer());
elements.signOut.addEventListener('click', signOut);
elements.callApi.addEventListener('click', () => void callApi());

loadSession().catch(() => {
  elements.loading.hidden = true;
  showError('The gateway cannot be reached. Check your connection and try again.');
});
