import passport from 'passport';

/** How a passport strategy ended one request. */
export type PassportOutcome =
  | { readonly kind: 'redirect'; readonly url: string }
  | { readonly kind: 'success' }
  | { readonly kind: 'fail'; readonly info: unknown }
  | { readonly kind: 'error'; readonly error: unknown };

/**
 * The one bridge between passport (which expects Express) and Fastify. Passport writes redirects with
 * res.statusCode / res.setHeader / res.end; this captures them as an outcome instead, so the
 * controller answers through Fastify's reply (and secure-session's onSend hook still sets the cookie).
 * Every way passport can end (redirect, success, fail, error, pass) settles the promise, so a guard
 * never waits forever.
 */
export function runPassport(strategy: string, request: object, options: object): Promise<PassportOutcome> {
  return new Promise((resolve) => {
    const headers = new Map<string, string>();
    const response = {
      statusCode: 200,
      setHeader(name: string, value: unknown): void {
        headers.set(name.toLowerCase(), String(value));
      },
      end(): void {
        const location = headers.get('location');
        resolve(location === undefined ? { kind: 'error', error: new Error(`passport ended the response with ${response.statusCode} and no redirect`) } : { kind: 'redirect', url: location });
      },
    };
    const middleware = passport.authenticate(strategy, { ...options, session: false }, (error: unknown, user: unknown, info: unknown) => {
      if (error !== null && error !== undefined) resolve({ kind: 'error', error });
      else if (user === false || user === undefined || user === null) resolve({ kind: 'fail', info });
      else resolve({ kind: 'success' });
    }) as (req: object, res: object, next: (error?: unknown) => void) => void;
    try {
      middleware(request, response, (error?: unknown) => resolve(error === undefined ? { kind: 'fail', info: undefined } : { kind: 'error', error }));
    } catch (error) {
      resolve({ kind: 'error', error });
    }
  });
}
