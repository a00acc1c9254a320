import { acceptsHtml, requestClassOf } from '../common/request-class.js';

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
 * A navigation the SPA's router may handle in the browser: GET or HEAD asking for HTML. The path's
 * shape does not matter (`/users/john.doe`, `/releases/v1.2`, `/people/ann@example.com` are routes
 * too); the caller answers index.html only when no file exists there. A script or image request
 * never asks for HTML, so a missing `/assets/app.js` stays a 404 instead of a MIME-type error.
 */
export function isNavigation(request: SpaRequest): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && acceptsHtml(request.accept);
}

/** True when the path lies in one of the folders (`/assets/`) that hold only hashed build output. */
export function isUnderPrefix(path: string, folders: readonly string[]): boolean {
  return folders.some((folder) => path.startsWith(folder));
}

/**
 * Hashes the common bundlers put in file names, each tried on the run between a `.` or `-` and a
 * later `.`. Rules are read top to bottom, first match wins.
 * - hex with a digit, 8-64 long: webpack `[contenthash]`, Parcel, Angular CLI (webpack builder);
 * - hex without a digit, at least 16 long: no word is made of a-f that long;
 * - 8 base64url characters with a digit: Vite/Rollup/Rolldown, esbuild;
 * - 8 characters of esbuild's base32 (`[A-Z2-7]`), all upper case: esbuild and Angular CLI's
 *   application builder (`chunk-ABCDEFGH.js`);
 * - 8 base64url characters without a digit (a quarter of Vite's hashes) that do not read as words
 *   (`getUsers`, `Settings`, `arrow-up` are names, `CLDdwZDr` is a hash; the 2% of hashes that read
 *   like words are left to SPA_IMMUTABLE_PATHS).
 */
const HASH_RULES: ReadonlyArray<{ readonly rule: string; readonly when: (run: string) => boolean }> = [
  { rule: 'hex', when: (run) => /^[0-9a-f]{8,64}$/.test(run) && /\d/.test(run) },
  { rule: 'long hex', when: (run) => /^[a-f]{16,64}$/.test(run) },
  { rule: 'base64url with a digit', when: (run) => /^[A-Za-z0-9_-]{8}$/.test(run) && /\d/.test(run) && /[A-Za-z]/.test(run) },
  { rule: 'esbuild base32', when: (run) => /^[A-Z2-7]{8}$/.test(run) },
  { rule: 'base64url without a digit', when: (run) => /^[A-Za-z_-]{8}$/.test(run) && !looksLikeWords(run) },
];

/**
 * `settings`, `getUsers`, `Settings`, `arrow-up`, `my_homePage`: words of two or more letters, each
 * with a vowel, lower case or capitalised, joined by `-`, `_` or a change of case. Random base64url
 * rarely looks like that (`fWbNmdIt`, `wmygyClw`, `DDLS-Z_H` do not).
 */
function looksLikeWords(run: string): boolean {
  const words = run.split(/[-_]|(?=[A-Z])/);
  return words.every((word) => /^[A-Z]?[a-z]+$/.test(word) && word.length >= 2 && /[aeiouy]/i.test(word));
}

/**
 * True for a file name carrying a content hash (`app.3f9a1c2b.js`, `index-DsQ3aZ1x.js`,
 * `hero-CLDdwZDr.png`, `chunk-ABCDEFGH.js`, `main.7a3f2c9e1b4d6f80.js`): its content can never
 * change under that name, so it may be cached forever. Rollup hashes may contain `-`, so every run
 * from each separator to the next `.` is tried.
 */
export function isHashedAsset(fileName: string): boolean {
  for (let start = 0; start < fileName.length; start++) {
    const separator = fileName[start];
    if (separator !== '.' && separator !== '-') continue;
    const end = fileName.indexOf('.', start + 1);
    if (end === -1) return false;
    const run = fileName.slice(start + 1, end);
    if (HASH_RULES.some((rule) => rule.when(run))) return true;
  }
  return false;
}
