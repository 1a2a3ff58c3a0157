/**
 * The one error type of the p2p layer. Callers (the outbox, catch-up, the
 * homeserver's federation client) branch on `code`, never on message text:
 * TIMEOUT and UNREACHABLE are worth retrying later, the others are not.
 */
export type P2PErrorCode =
  /** No answer within the time allowed (stream open, request or response). */
  | 'TIMEOUT'
  /** No address or relay led to the server, or the connection broke. */
  | 'UNREACHABLE'
  /** A frame was larger than the limit on this side. */
  | 'TOO_LARGE'
  /** The remote sent something that is not this protocol (bad framing, bad JSON, too deep). */
  | 'PROTOCOL'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The transport was closed. */
  | 'CLOSED'
  /** A key, PeerId or server name is not a Hometab identity. */
  | 'BAD_IDENTITY'
  /** No handler is installed, or a frame failed its signature check. */
  | 'REFUSED';

export class P2PError extends Error {
  override readonly name = 'P2PError';
  /** True when nothing of the request left this server (e.g. no stream could be opened): safe to retry at once elsewhere. */
  readonly beforeSend: boolean;
  constructor(
    readonly code: P2PErrorCode,
    message: string,
    options?: { cause?: unknown; beforeSend?: boolean },
  ) {
    super(message, options);
    this.beforeSend = options?.beforeSend ?? false;
  }
}

/** Whether a failed request may succeed if retried later (the outbox's question). */
export function isRetryable(error: unknown): boolean {
  return error instanceof P2PError && (error.code === 'TIMEOUT' || error.code === 'UNREACHABLE' || error.code === 'CLOSED');
}
