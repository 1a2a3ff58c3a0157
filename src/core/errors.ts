/**
 * Typed errors of the event core. Every rejection of bad input is a
 * `CoreError` with a stable `code`, so callers (the homeserver, the replication
 * layer, tests) can map it to a Matrix errcode or a logged reason without
 * parsing messages.
 */
export type CoreErrorCode =
  | 'NOT_CANONICAL' // value cannot be written as canonical JSON
  | 'BAD_BASE64'
  | 'BAD_KEY' // wrong key or seed length
  | 'UNKNOWN_ROOM_VERSION'
  | 'MALFORMED_EVENT' // missing or mistyped fields
  | 'MISSING_EVENT' // an event needed (auth or prev) is not available
  | 'AUTH_CYCLE' // auth_events form a cycle
  | 'TOO_LARGE';

export class CoreError extends Error {
  readonly code: CoreErrorCode;
  constructor(code: CoreErrorCode, message: string) {
    super(message);
    this.name = 'CoreError';
    this.code = code;
  }
}
