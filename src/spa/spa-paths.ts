import { requestClassOf } from '../common/request-class.js';

/**
 * Pure decisions about SPA paths: which paths the gateway keeps for itself, which requests are
 * client-side routes (answered with index.html), and which files are content-hashed build output.
 */

/** Paths the gateway answers itself (/api, /auth, the operations endpoints); an unknown one there is a 404 problem, never the SPA. */
export function isGatewayPath(path: string): boolean {
  return requestClassOf(path) !== 'spa';
}

/**
 * The decoded path of a request target, or undefined when it must be refused: malformed
 * percent-encoding, a dot segment (`..` or `.`, however encoded), an empty segment (`//`), a
 * backslash (a separator on Windows) or a control character. fetch() and browsers resolve dot
 * segments before sending, so only crafted requests are refused.
 */
export function decodeSpaPath(target: string): string | undefined {
  const rawPath = target.split(/[?#]/, 1)[0] ?? '';
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (!path.startsWith('/') || /[\u0000-\u001f\u007f\\]/.test(path)) return undefined;
  const segments = path.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '.' || segment === '..') return undefined;
    // a trailing slash is an ordinary client route ("/settings/"); "//" anywhere else is not
    if (segment === '' && index !== segments.length - 1) return undefined;
  }
  return path;
}

/** True when a segment starts with "." (.env, .git/config): never served, never a client route. */
export function isDotfilePath(path: string): boolean {
  return path.split('/').some((segment) => segment.startsWith('.'));
}

export interface SpaRequest {
  readonly method: string;
  /** Decoded, as decodeSpaPath() returns it. */
  readonly path: string;
  readonly accept: string | undefined;
}

/**
 * A navigation the SPA's router handles in the browser: GET or HEAD, asking for HTML, and a last
 * segment without a file extension. `/assets/app.js` that is missing stays a 404: answering a
 * script request with index.html would hide a broken deployment behind a MIME-type error.
 */
export function isClientRoute(request: SpaRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  if (!(request.accept ?? '').includes('text/html')) return false;
  const lastSegment = request.path.slice(request.path.lastIndexOf('/') + 1);
  return !lastSegment.includes('.');
}

/** Base64url-ish hashes as Vite/Rollup (8 characters) and esbuild write them. */
const SHORT_HASH = /^[A-Za-z0-9_-]{8}$/;
/** Hex hashes as webpack and Parcel write them (`[contenthash]`, 8 to 64 digits). */
const HEX_HASH = /^[0-9a-f]{8,64}$/;

/**
 * True for a file name carrying a content hash, e.g. `app.3f9a1c2b.js`, `main.3f9a1c2b.chunk.js`,
 * `index-DsQ3aZ1x.js`: its content can never change under that name, so it may be cached forever.
 * A hash is a run of characters after `.` or `-` and before a later `.`: 8 base64url characters, or
 * 8-64 hex digits, containing a digit (so words such as `settings` or `deadbeef` do not count).
 */
export function isHashedAsset(fileName: string): boolean {
  for (let start = 0; start < fileName.length; start++) {
    const separator = fileName[start];
    if (separator !== '.' && separator !== '-') continue;
    const end = fileName.indexOf('.', start + 1);
    if (end === -1) return false;
    // Rollup hashes may contain "-": try every run that starts here and ends at the next ".".
    const candidate = fileName.slice(start + 1, end);
    if (!/\d/.test(candidate)) continue;
    if (SHORT_HASH.test(candidate) && /[A-Za-z]/.test(candidate)) return true;
    if (HEX_HASH.test(candidate)) return true;
  }
  return false;
}
