/**
 * One challenge of a `WWW-Authenticate` field (RFC 9110 §11.6.1): its scheme, and either a token68
 * or auth-params (names lower-cased, since they are case-insensitive; values unquoted).
 */
export interface Challenge {
  /** As sent; compare it case-insensitively (RFC 9110 §11.1). */
  readonly scheme: string;
  readonly token68?: string;
  readonly params: ReadonlyMap<string, string>;
}

/**
 * Longer fields are not read at all: an upstream's challenge is a few hundred bytes, and this bounds
 * the work a hostile one can cause (Node's own header limit is 16 KiB for the whole head).
 */
export const MAX_WWW_AUTHENTICATE_LENGTH = 8192;

// RFC 9110 §5.6.2 tchar
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// RFC 9110 §11.2 token68, before its trailing "="s
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

class Malformed extends Error {}

/**
 * Every challenge in a `WWW-Authenticate` value (several fields joined with ", ", as Node joins
 * them, are one list). Undefined when the value is malformed anywhere (an unterminated quoted
 * string, a control character, a parameter named twice in one challenge, a bare `=`) or longer
 * than MAX_WWW_AUTHENTICATE_LENGTH: a caller then treats the field as one it does not understand.
 * Empty list elements are allowed (RFC 9110 §5.6.1).
 */
export function parseWwwAuthenticate(value: string): Challenge[] | undefined {
  if (value.length > MAX_WWW_AUTHENTICATE_LENGTH) return undefined;
  try {
    return new Parser(value).challenges();
  } catch (error) {
    if (error instanceof Malformed) return undefined;
    throw error;
  }
}

/** A recursive-descent reader over one field value; every loop consumes at least one character. */
class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  challenges(): Challenge[] {
    const found: Challenge[] = [];
    this.skipSeparators();
    while (!this.atEnd()) {
      found.push(this.challenge());
      this.skipSeparators();
    }
    return found;
  }

  private challenge(): Challenge {
    const scheme = this.token();
    const params = new Map<string, string>();
    if (!this.skipSpaces()) return { scheme, params };
    if (this.atEnd() || this.peek() === ',') return { scheme, params };
    const token68 = this.token68();
    if (token68 !== undefined) return { scheme, token68, params };
    for (;;) {
      const name = this.token().toLowerCase();
      this.skipSpaces();
      this.expect('=');
      this.skipSpaces();
      const paramValue = this.peek() === '"' ? this.quotedString() : this.token();
      // RFC 9110 §11.2: each parameter name occurs only once per challenge
      if (params.has(name)) throw new Malformed();
      params.set(name, paramValue);
      this.skipSpaces();
      if (this.atEnd()) return { scheme, params };
      this.expect(',');
      this.skipSeparators();
      if (this.atEnd() || !this.startsAuthParam()) return { scheme, params };
    }
  }

  /** A token68 when it is all that follows the scheme (up to the next "," or the end), else undefined with nothing consumed. */
  private token68(): string | undefined {
    const start = this.pos;
    let end = start;
    while (end < this.text.length && TOKEN68_CHAR.test(this.text.charAt(end))) end++;
    if (end === start) return undefined;
    while (end < this.text.length && this.text.charAt(end) === '=') end++;
    let after = end;
    while (after < this.text.length && isSpace(this.text.charAt(after))) after++;
    if (after < this.text.length && this.text.charAt(after) !== ',') return undefined;
    this.pos = after;
    return this.text.slice(start, end);
  }

  /** After a ",": `name [BWS] =` starts another auth-param of this challenge; anything else, the next challenge. */
  private startsAuthParam(): boolean {
    let at = this.pos;
    while (at < this.text.length && TCHAR.test(this.text.charAt(at))) at++;
    if (at === this.pos) return false;
    while (at < this.text.length && isSpace(this.text.charAt(at))) at++;
    return this.text.charAt(at) === '=';
  }

  private token(): string {
    const start = this.pos;
    while (!this.atEnd() && TCHAR.test(this.peek())) this.pos++;
    if (this.pos === start) throw new Malformed();
    return this.text.slice(start, this.pos);
  }

  /** RFC 9110 §5.6.4: DQUOTE *( qdtext / quoted-pair ) DQUOTE, unescaped. */
  private quotedString(): string {
    this.pos++;
    let result = '';
    for (;;) {
      if (this.atEnd()) throw new Malformed();
      const c = this.peek();
      this.pos++;
      if (c === '"') return result;
      if (c === '\\') {
        if (this.atEnd()) throw new Malformed();
        const escaped = this.peek();
        if (!isQuotable(escaped)) throw new Malformed();
        result += escaped;
        this.pos++;
      } else if (isQuotable(c)) {
        result += c;
      } else {
        throw new Malformed();
      }
    }
  }

  private skipSeparators(): void {
    while (!this.atEnd() && (this.peek() === ',' || isSpace(this.peek()))) this.pos++;
  }

  /** True when at least one space or tab was skipped. */
  private skipSpaces(): boolean {
    const start = this.pos;
    while (!this.atEnd() && isSpace(this.peek())) this.pos++;
    return this.pos > start;
  }

  private expect(c: string): void {
    if (this.peek() !== c) throw new Malformed();
    this.pos++;
  }

  private peek(): string {
    return this.text.charAt(this.pos);
  }

  private atEnd(): boolean {
    return this.pos >= this.text.length;
  }
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t';
}

/** HTAB, SP, VCHAR and obs-text: what a quoted string may hold (a DQUOTE or backslash only escaped). */
function isQuotable(c: string): boolean {
  const code = c.charCodeAt(0);
  return code === 0x09 || (code >= 0x20 && code !== 0x7f && code <= 0xff);
}
