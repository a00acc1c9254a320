// The whole contract between the app and the gateway:
//   GET  /auth/me                  who is signed in (401 when nobody is)
//   GET  /auth/login?returnTo=...  navigate here to sign in
//   GET  <logoutUrl from /auth/me> navigate here to sign out
//   *    /api/...                  your API, called with fetch() and the header X-CSRF: 1
// No token ever reaches this code: the browser holds an HttpOnly session cookie that JavaScript
// cannot read, and the gateway adds the Bearer token on the way to the API.
import { createContext, useCallback, useContext, useEffect, useState } from 'react';

const SessionContext = createContext(undefined);

/** RFC 9457 problem details: `title` is safe to show, `code` is stable for program logic. */
export async function problemOf(response) {
  const body = (response.headers.get('content-type') ?? '').includes('json') ? await response.json().catch(() => ({})) : {};
  return { status: response.status, code: body.code, title: body.title ?? `Unexpected answer from the gateway (HTTP ${response.status})` };
}

export function SessionProvider({ children }) {
  // { status: 'loading' } | { status: 'signed-out' } | { status: 'signed-in', me } | { status: 'error', title }
  const [session, setSession] = useState({ status: 'loading' });

  const refresh = useCallback(async () => {
    try {
      const response = await fetch('/auth/me', { headers: { Accept: 'application/json' } });
      if (response.ok) setSession({ status: 'signed-in', me: await response.json() });
      else if (response.status === 401) setSession({ status: 'signed-out' });
      // 503: the session store or the provider is down; that is not "signed out"
      else setSession({ status: 'error', title: (await problemOf(response)).title });
    } catch {
      setSession({ status: 'error', title: 'The gateway cannot be reached.' });
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  return <SessionContext.Provider value={{ ...session, refresh, setSignedOut: () => setSession({ status: 'signed-out' }) }}>{children}</SessionContext.Provider>;
}

/** The signed-in user from /auth/me (`me.sub`, `me.claims`, `me.expiresAt`, `me.logoutUrl`), or why there is none. */
export function useSession() {
  const session = useContext(SessionContext);
  if (session === undefined) throw new Error('useSession() needs a <SessionProvider> above it');
  return session;
}

/** A full-page navigation: sign-in happens on the provider's pages; the gateway returns to `returnTo` (a local path). */
export function signIn(returnTo = window.location.pathname + window.location.search) {
  window.location.assign(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
}

/** logoutUrl carries a value bound to this session, so a link on another site cannot sign anyone out. */
export function signOut(me) {
  window.location.assign(me.logoutUrl);
}

/**
 * fetch() for /api: X-CSRF: 1 is the gateway's cross-site request forgery defence (a form or an
 * <img> on another site cannot add it). A 401 means the session ended: the caller offers sign-in.
 */
export async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { Accept: 'application/json', ...init.headers, 'X-CSRF': '1' } });
  if (!response.ok) throw await problemOf(response);
  return response.json();
}
