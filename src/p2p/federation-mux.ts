/**
 * The multiplexed federation protocol, `/hometab/federation/2`: one
 * long-lived stream per connection and direction carries every request the
 * dialler makes, each a length-prefixed JSON frame (framing.ts) with a
 * request id, `{"id","method","path","body"?}`; the listener answers
 * `{"id","status","body"}` on the same stream as each handler finishes, so
 * requests are pipelined and answers may come out of order. It exists for
 * latency: over WebRTC every new libp2p stream is a new RTCDataChannel plus
 * a protocol negotiation (about 6 ms here against a 0.5 ms round trip), which
 * version 1 (federation-protocol.ts, one request per stream) pays per request.
 *
 * The limits are version 1's, per frame and per request: request and
 * response sizes (refused by the length prefix), JSON depth (json-guard.ts),
 * the request's shape (transport.ts), per-peer admission (rate-limit.ts,
 * shared with version 1, so a peer gains nothing by speaking both), the
 * handler's deadline and the caller's timeout. What version 1 bounded by
 * closing a stream is bounded here per frame: a frame begun must arrive
 * whole within `inboundReadTimeoutMs` (an idle stream between frames is
 * fine), and answers the peer does not read may queue only so far. A peer
 * that breaks the protocol (garbage, a frame over the limit, a request id
 * already in flight, an answer to a request never made) gets its stream
 * reset, and the reason is logged; the next request opens a new stream.
 *
 * Diallers try version 2 and fall back to version 1 for a connection whose
 * remote does not speak it (multistream-select says so), so tabs of the
 * previous release and always-on peers that were not upgraded still
 * replicate. Version 1 stays served for that one release.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { P2PError } from './errors.js';
import { decodeJson, encodeJson, FrameDecoder, FrameWriter } from './framing.js';
import { isJsonRecord, ownField } from './json-guard.js';
import type { PeerRateLimiter } from './rate-limit.js';
import type { ResolvedProtocolOptions } from './federation-protocol.js';
import { abortError, deadlineSignal, matrixError, requestFromJson, responseFromJson, responsePayload, runHandler, type FederationHandler, type FederationRequest, type FederationResponse } from './transport.js';

export const FEDERATION_PROTOCOL_V2 = '/hometab/federation/2';

/** Where a misbehaving peer is reported. */
export interface MuxLog {
  warn(message: string, detail?: unknown): void;
}

/** Request ids whose caller gave up and whose late answer is dropped quietly, remembered at most this many per stream. */
const ABANDONED_IDS_KEPT = 1024;

/** The request id of a parsed frame: a non-negative safe integer, or P2PError('PROTOCOL'). */
function frameId(value: unknown): number {
  const id = isJsonRecord(value) ? ownField(value, 'id') : undefined;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new P2PError('PROTOCOL', 'a frame needs a request id (a non-negative integer)');
  return id;
}

function bytesOf(chunk: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The dialling half of one stream: many requests in flight, answers matched by id. */
export interface MuxClient {
  /** Sends one request and waits for its answer. Throws P2PError as version 1 does (TOO_LARGE, TIMEOUT, ABORTED, UNREACHABLE). */
  request(request: FederationRequest, call?: { timeoutMs?: number; signal?: AbortSignal }): Promise<FederationResponse>;
  /** Requests waiting for their answer. */
  readonly inFlight: number;
  /** True once the stream failed or was closed; the session is then useless. */
  readonly closed: boolean;
  close(): void;
}

export function createMuxClient(stream: Stream, options: ResolvedProtocolOptions, log: MuxLog, onClosed?: () => void): MuxClient {
  interface Waiting {
    resolve(response: FederationResponse): void;
    reject(error: unknown): void;
    written: boolean;
  }
  const pending = new Map<number, Waiting>();
  const abandoned = new Set<number>();
  // Outbound requests are bounded by their callers; this bound only catches a stream that stopped draining.
  const writer = new FrameWriter(stream, options.maxQueuedFrames, options.requestTimeoutMs);
  let nextId = 0;
  let failure: P2PError | undefined;

  function fail(error: P2PError, reset: boolean): void {
    if (failure) return;
    failure = error;
    if (reset) stream.abort(error);
    for (const waiting of pending.values()) {
      waiting.reject(new P2PError('UNREACHABLE', `federation stream failed: ${error.message}`, { cause: error, beforeSend: !waiting.written }));
    }
    pending.clear();
    onClosed?.();
  }

  function onFrame(frame: Uint8Array): void {
    const value = decodeJson(frame, options.maxResponseBytes, options.maxJsonDepth);
    const id = frameId(value);
    const response = responseFromJson(value);
    const waiting = pending.get(id);
    if (waiting === undefined) {
      if (abandoned.delete(id)) return;
      throw new P2PError('PROTOCOL', `an answer to request ${id}, which was never made`);
    }
    pending.delete(id);
    waiting.resolve(response);
  }

  void (async () => {
    const decoder = new FrameDecoder(options.maxResponseBytes);
    try {
      for await (const chunk of stream) {
        for (const frame of decoder.push(bytesOf(chunk))) onFrame(frame);
        if (failure) return;
      }
      fail(new P2PError('UNREACHABLE', 'the remote closed the federation stream'), false);
    } catch (error) {
      if (failure) return;
      const hostile = error instanceof P2PError && (error.code === 'PROTOCOL' || error.code === 'TOO_LARGE');
      if (hostile) log.warn(`federation/2: ${stream.id}: ${error.message}; stream reset`);
      fail(error instanceof P2PError ? error : new P2PError('UNREACHABLE', messageOf(error), { cause: error }), true);
    }
  })();

  return {
    get inFlight() {
      return pending.size;
    },
    get closed() {
      return failure !== undefined;
    },
    close() {
      fail(new P2PError('CLOSED', 'federation stream closed'), false);
      stream.close().catch(() => stream.abort(new Error('close failed')));
    },
    async request(request, call = {}) {
      if (failure) throw new P2PError('UNREACHABLE', 'the federation stream is closed', { beforeSend: true });
      const id = nextId++;
      const payload = encodeJson({ id, method: request.method, path: request.path, ...(request.body === undefined ? {} : { body: request.body }) });
      if (payload.length > options.maxRequestBytes) {
        throw new P2PError('TOO_LARGE', `request of ${payload.length} bytes exceeds ${options.maxRequestBytes}`);
      }
      const signal = deadlineSignal(call.timeoutMs ?? options.requestTimeoutMs, call.signal);
      let onAbort: (() => void) | undefined;
      const answer = new Promise<FederationResponse>((resolve, reject) => {
        const waiting: Waiting = { resolve, reject, written: true };
        pending.set(id, waiting);
        onAbort = () => {
          if (pending.get(id) !== waiting) return;
          pending.delete(id);
          abandoned.add(id);
          if (abandoned.size > ABANDONED_IDS_KEPT) abandoned.delete(abandoned.values().next().value!);
          reject(abortError(`${request.method} ${request.path}`, signal, call.signal));
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      writer.write(payload).catch((error: unknown) => {
        const hostile = error instanceof P2PError && error.code === 'PROTOCOL';
        if (hostile) log.warn(`federation/2: ${stream.id}: ${(error as P2PError).message}; stream reset`);
        fail(new P2PError('UNREACHABLE', `writing a request failed: ${messageOf(error)}`, { cause: error }), true);
      });
      try {
        return await answer;
      } finally {
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
    },
  };
}

/** What the serving half shares with version 1's server. */
export interface MuxServeDeps {
  options: ResolvedProtocolOptions;
  limiter: PeerRateLimiter;
  handler(): FederationHandler | undefined;
  log: MuxLog;
}

/**
 * Serves one inbound version 2 stream from the authenticated server
 * `origin` until it ends: every request frame is admitted and handled
 * concurrently, each answer written as it is ready. Never throws.
 */
export async function serveMuxStream(stream: Stream, origin: string, deps: MuxServeDeps): Promise<void> {
  const { options, limiter, log } = deps;
  const writer = new FrameWriter(stream, options.maxQueuedFrames, options.requestTimeoutMs);
  const decoder = new FrameDecoder(options.maxRequestBytes);
  const inFlight = new Set<number>();
  const running = new Set<Promise<void>>();
  let ended = false;
  let frameDeadline: ReturnType<typeof setTimeout> | undefined;

  function reset(why: string): void {
    if (ended) return;
    ended = true;
    log.warn(`federation/2: ${origin}: ${why}; stream reset`);
    stream.abort(new P2PError('PROTOCOL', why));
  }

  function answer(id: number, response: FederationResponse): void {
    if (ended) return;
    let payload = responsePayload(response, id);
    if (payload.length > options.maxResponseBytes) {
      payload = encodeJson({ id, ...matrixError(500, 'M_TOO_LARGE', `response of ${payload.length} bytes exceeds ${options.maxResponseBytes}`) });
    }
    writer.write(payload).catch((error: unknown) => reset(`an answer could not be written: ${messageOf(error)}`));
  }

  async function handle(id: number, request: FederationRequest): Promise<void> {
    const admission = limiter.admit(origin);
    if (!admission.ok) {
      inFlight.delete(id);
      const why = admission.reason === 'rate' ? 'too many requests' : 'too many requests in flight';
      return answer(id, matrixError(429, 'M_LIMIT_EXCEEDED', why, { retry_after_ms: admission.retryAfterMs }));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    let response: FederationResponse;
    try {
      response = await Promise.race([
        runHandler(deps.handler(), origin, request),
        new Promise<FederationResponse>((resolve) => {
          timer = setTimeout(() => resolve(matrixError(504, 'M_UNKNOWN', 'the handler did not answer in time')), options.handlerTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      admission.release();
    }
    // Answered from a task of its own: writing to a WebRTC data channel holds this thread (a call into
    // the browser's network thread), and the commit that ends a handler usually wakes this tab's own
    // clients too (the /sync long-poll that shows the event a PUT /send stored), which then read their
    // answer first. The peer waits one task longer. Resolves once the answer is queued, so a stream the
    // peer closed is closed after it.
    await new Promise<void>((queued) =>
      setTimeout(() => {
        inFlight.delete(id);
        answer(id, response);
        queued();
      }, 0),
    );
  }

  try {
    for await (const chunk of stream) {
      const frames = decoder.push(bytesOf(chunk));
      for (const frame of frames) {
        const value = decodeJson(frame, options.maxRequestBytes, options.maxJsonDepth);
        const id = frameId(value);
        const request = requestFromJson(value);
        if (inFlight.has(id)) throw new P2PError('PROTOCOL', `request id ${id} is already in flight`);
        inFlight.add(id);
        const job = handle(id, request);
        running.add(job);
        void job.finally(() => running.delete(job));
      }
      // Each frame begun must arrive whole in time (a slow peer); an idle stream between frames is fine.
      if (frames.length > 0 && frameDeadline !== undefined) {
        clearTimeout(frameDeadline);
        frameDeadline = undefined;
      }
      if (decoder.partial && frameDeadline === undefined) {
        frameDeadline = setTimeout(() => reset(`a frame did not arrive whole within ${options.inboundReadTimeoutMs} ms`), options.inboundReadTimeoutMs);
      }
      if (ended) return;
    }
    // The peer closed its side: finish what it asked, then close ours.
    await Promise.allSettled([...running]);
    if (!ended) await stream.close({ signal: AbortSignal.timeout(2_000) }).catch(() => stream.abort(new Error('close failed')));
  } catch (error) {
    reset(messageOf(error));
  } finally {
    clearTimeout(frameDeadline);
  }
}

/**
 * The dialler's sessions, one per connection: opened on the first request,
 * shared by every later one, opened again after a failure; a connection
 * whose remote does not speak version 2 is remembered and gets version 1.
 */
export interface MuxSessions {
  /** The session on `connection`, or undefined when its remote speaks only version 1. Throws P2PError like version 1's stream open. */
  session(connection: Connection, signal: AbortSignal, callerSignal?: AbortSignal): Promise<MuxClient | undefined>;
  /** Closes every session. */
  clear(): void;
}

/** Connections remembered as speaking only version 1, at most. */
const V1_ONLY_KEPT = 256;

export function createMuxSessions(options: ResolvedProtocolOptions, log: MuxLog): MuxSessions {
  const sessions = new Map<string, { opening?: Promise<MuxClient | undefined>; client?: MuxClient }>();
  const v1Only = new Set<string>();

  async function open(connection: Connection): Promise<MuxClient | undefined> {
    let stream: Stream;
    try {
      stream = await connection.newStream(FEDERATION_PROTOCOL_V2, {
        signal: AbortSignal.timeout(options.streamOpenTimeoutMs),
        // Federation may cross a limited (relayed) link until a direct one exists.
        runOnLimitedConnection: true,
      });
    } catch (error) {
      if ((error as Error)?.name === 'UnsupportedProtocolError') {
        v1Only.add(connection.id);
        if (v1Only.size > V1_ONLY_KEPT) v1Only.delete(v1Only.values().next().value!);
        return undefined;
      }
      throw new P2PError('UNREACHABLE', `cannot open a federation stream: ${messageOf(error)}`, { cause: error, beforeSend: true });
    }
    const entry = sessions.get(connection.id);
    const client = createMuxClient(stream, options, log, () => {
      if (sessions.get(connection.id)?.client === client) sessions.delete(connection.id);
    });
    if (entry) entry.client = client;
    return client;
  }

  return {
    async session(connection, signal, callerSignal) {
      if (v1Only.has(connection.id)) return undefined;
      let entry = sessions.get(connection.id);
      if (entry?.client?.closed) {
        sessions.delete(connection.id);
        entry = undefined;
      }
      if (entry?.client) return entry.client;
      if (!entry) {
        entry = {};
        sessions.set(connection.id, entry);
        const opening = open(connection);
        entry.opening = opening;
        const mine = entry;
        opening.catch(() => {
          if (sessions.get(connection.id) === mine) sessions.delete(connection.id);
        });
      }
      const opening = entry.opening!;
      // Each caller waits for the shared open within its own deadline.
      return new Promise<MuxClient | undefined>((resolve, reject) => {
        const onAbort = (): void => reject(abortError('opening a federation stream', signal, callerSignal));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        opening.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    },
    clear() {
      for (const entry of sessions.values()) entry.client?.close();
      sessions.clear();
    },
  };
}
