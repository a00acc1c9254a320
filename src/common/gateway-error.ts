/**
 * The base of every error the gateway raises on purpose. Services throw these; only the problem
 * mapping (common/problem.ts) turns them into responses.
 */
export abstract class GatewayError extends Error {
  /** Seconds for a Retry-After header (503s caused by outages). */
  readonly retryAfterS: number | undefined;
  /** A fault only an operator can fix (wrong configuration): logged at error, whatever the status. */
  readonly operatorFault: boolean;
  /** The methods a 405's Allow header lists (RFC 9110 §15.5.6). */
  readonly allow: readonly string[] | undefined;
  /** RFC 9457 §3.2 extension members the problem carries besides the standard ones (e.g. a step-up's `loginUrl`). */
  readonly extensions: Readonly<Record<string, string>> | undefined;

  protected constructor(
    readonly status: number,
    /** Stable snake_case code, part of the API contract. */
    readonly code: string,
    /** Short, human, constant per code. */
    readonly title: string,
    /** What went wrong for this request; shown to the client, so never internals or secrets. */
    readonly detail?: string,
    options: { cause?: unknown; retryAfterS?: number; operatorFault?: boolean; allow?: readonly string[]; extensions?: Readonly<Record<string, string>> } = {},
  ) {
    super(`${code}: ${detail ?? title}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryAfterS = options.retryAfterS;
    this.operatorFault = options.operatorFault ?? false;
    this.allow = options.allow;
    this.extensions = options.extensions;
  }
}

/** A client sent something the gateway cannot accept (generic 400 for malformed input). */
export class BadRequestError extends GatewayError {
  constructor(detail: string) {
    super(400, 'bad_request', 'Bad request', detail);
  }
}
