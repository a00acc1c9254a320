/**
 * True for a same-origin relative path: "/" or "/x...", never "//host" or "/\host" (browsers
 * treat both as another origin), never a scheme, never control characters (C0, DEL, C1) or whitespace.
 */
export function isLocalPath(value: string): boolean {
  if (!value.startsWith('/')) return false;
  if (value.startsWith('//') || value.startsWith('/\\')) return false;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f-\u009f\s\\]/.test(value)) return false;
  // a percent-encoded slash or backslash right after the first "/" decodes to "//" or "/\" in some routers
  if (/^\/%(2f|5c)/i.test(value)) return false;
  return value.length <= 2048;
}

/**
 * Non-ASCII characters as UTF-8 percent-encoding (RFC 3986 §2.1), as a browser sends them: a
 * Location header carries ASCII only (Node refuses anything else with ERR_INVALID_CHAR, or sends
 * Latin-1 bytes). Undefined for a lone surrogate, which has no UTF-8 form.
 */
function asciiOnly(value: string): string | undefined {
  try {
    return value.replace(/[\u0080-\u{10ffff}]+/gu, (run) => encodeURIComponent(run));
  } catch (error) {
    if (error instanceof URIError) return undefined;
    throw error;
  }
}

/** The path to return to after login: `returnTo` when it is local (non-ASCII percent-encoded), else "/". */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || !isLocalPath(value)) return '/';
  const encoded = asciiOnly(value);
  return encoded !== undefined && isLocalPath(encoded) ? encoded : '/';
}
