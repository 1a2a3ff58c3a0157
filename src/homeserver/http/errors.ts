/**
 * Matrix errors as the client-server API returns them: an `errcode`, a human
 * `error` and the HTTP status the spec pairs with it. Handlers throw
 * `MatrixError`; the router turns it (and any other failure) into JSON.
 */
export class MatrixError extends Error {
  readonly errcode: string;
  readonly status: number;
  readonly extra: Record<string, unknown>;
  /** HTTP headers the response carries besides the JSON (Retry-After on 429). */
  readonly headers: Record<string, string>;
  constructor(status: number, errcode: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'MatrixError';
    this.status = status;
    this.errcode = errcode;
    this.extra = extra;
    this.headers = headers;
  }
  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const forbidden = (msg: string) => new MatrixError(403, 'M_FORBIDDEN', msg);
export const notFound = (msg: string) => new MatrixError(404, 'M_NOT_FOUND', msg);
export const badJson = (msg: string) => new MatrixError(400, 'M_BAD_JSON', msg);
export const notJson = (msg = 'Content not JSON.') => new MatrixError(400, 'M_NOT_JSON', msg);
export const invalidParam = (msg: string) => new MatrixError(400, 'M_INVALID_PARAM', msg);
export const missingParam = (msg: string) => new MatrixError(400, 'M_MISSING_PARAM', msg);
export const tooLarge = (msg: string) => new MatrixError(413, 'M_TOO_LARGE', msg);
export const missingToken = () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
export const unknownToken = (softLogout = false) =>
  new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unrecognised access token', { soft_logout: softLogout });
export const unrecognized = (msg = 'Unrecognized request') => new MatrixError(404, 'M_UNRECOGNIZED', msg);
export const methodNotAllowed = () => new MatrixError(405, 'M_UNRECOGNIZED', 'Method not allowed');
/**
 * 429 M_LIMIT_EXCEEDED: `retry_after_ms` in the body, and (spec v1.10+) a Retry-After header in
 * whole seconds, rounded up so a client that honours only the header never comes back too early.
 */
export const limitExceeded = (retryAfterMs: number, msg = 'Too many requests') =>
  new MatrixError(429, 'M_LIMIT_EXCEEDED', msg, { retry_after_ms: retryAfterMs }, { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) });
export const unknown = (msg: string) => new MatrixError(500, 'M_UNKNOWN', msg);
