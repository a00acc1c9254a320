/**
 * True for a same-origin relative path: "/" or "/x...", never "//host" or "/\host" (browsers
 * treat both as another origin), never a scheme, never control characters or whitespace.
 */
export function isLocalPath(value: string): boolean {
  if (!value.startsWith('/')) return false;
  if (value.startsWith('//') || value.startsWith('/\\')) return false;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f\s\\]/.test(value)) return false;
  // a percent-encoded slash or backslash right after the first "/" decodes to "//" or "/\" in some routers
  if (/^\/%(2f|5c)/i.test(value)) return false;
  return value.length <= 2048;
}

/** The path to return to after login: `returnTo` when it is local, else "/". */
export function safeReturnTo(value: unknown): string {
  return typeof value === 'string' && isLocalPath(value) ? value : '/';
}
