/**
 * The federation wire protocol on libp2p, `/hometab/federation/1`: one Matrix
 * server-server request and its response per stream, each one length-prefixed
 * JSON frame (framing.ts). Request frame: `{"method","path","body"?}`;
 * response frame: `{"status","body"}`; the stream is then closed. One stream
 * per request keeps head-of-line blocking out (yamux and WebRTC multiplex
 * streams) and makes every limit local to one exchange.
 *
 * The serving side owns the defences, in this order: a cap on streams one
 * authenticated peer holds open (answered 429 `M_LIMIT_EXCEEDED` without
 * reading), a deadline for the request frame to arrive (slow peers), its size
 * (refused by its length prefix before it is buffered), its depth
 * (json-guard.ts), its shape (transport.ts), then admission per peer (token
 * bucket and in-flight cap, 429 again), the handler with its own deadline,
 * and a cap on the response size. Admission counts requests, not streams, so
 * a spare stream opened in advance (below) costs the server nothing until
 * its request arrives. The
 * `origin` handed to the handler is the Noise-authenticated remote PeerId
 * spelled as a server name (identity.ts). The version is in the protocol ID:
 * `/hometab/federation/2` (federation-mux.ts) carries many requests on one
 * long-lived stream; diallers prefer it, and this version stays served for
 * the peers of the previous release.
 */
import type { Connection, Stream } from '@libp2p/interface';
import { P2PError } from './errors.js';
import { decodeJson, encodeJson, readFrame, writeFrame } from './framing.js';
import { DEFAULT_MAX_JSON_DEPTH } from './json-guard.js';
import { serveMuxStream, type MuxLog } from './federation-mux.js';
import { silentLog } from './replication-port.js';
import { createPeerRateLimiter, type Admission, type PeerRateLimiter, type RateLimitOptions } from './rate-limit.js';
import {
  abortError,
  deadlineSignal,
  matrixError,
  requestFromJson,
  responseFromJson,
  responsePayload,
  runHandler,
  type FederationHandler,
  type FederationRequest,
  type FederationResponse,
} from './transport.js';

export const FEDERATION_PROTOCOL = '/hometab/federation/1';

export interface FederationProtocolOptions {
  /** Largest request frame, either direction (a send transaction with 50 PDUs of 64 KiB fits). @default 1_048_576 */
  maxRequestBytes?: number;
  /** Largest response frame (a state or backfill answer; media is not carried over this protocol yet). @default 4_194_304 */
  maxResponseBytes?: number;
  /** Deepest JSON nesting accepted in a frame. @default 64 */
  maxJsonDepth?: number;
  /** Time to open a stream and agree on the protocol. @default 5_000 */
  streamOpenTimeoutMs?: number;
  /** Time for a whole outbound request (open, send, answer), unless the call says otherwise. @default 30_000 */
  requestTimeoutMs?: number;
  /** Time an inbound peer has to deliver its whole request frame. @default 10_000 */
  inboundReadTimeoutMs?: number;
  /** Time the local handler has to answer before the peer gets a 504. @default 25_000 */
  handlerTimeoutMs?: number;
  /** Inbound streams one peer may hold open at once, waiting or being served; more are answered 429 at once. @default 32 */
  maxStreamsPerPeer?: number;
  /** Per-peer admission of each request once it has arrived (rate-limit.ts). @default { ratePerSecond: 50, burst: 100, maxConcurrent: 16 } */
  rateLimit?: RateLimitOptions;
  /**
   * Keep one stream open in advance per direct connection that has carried a
   * request, so the next request skips the stream open (on WebRTC a new data
   * channel plus protocol negotiation: about 6 ms here against a 0.5 ms round
   * trip). Still one request per stream. @default true
   */
  spareStreams?: boolean;
  /** A spare stream unused this long is closed; keep it below the remote's inboundReadTimeoutMs. @default 5_000 */
  spareStreamIdleMs?: number;
  /**
   * Send outbound requests on one long-lived `/hometab/federation/2` stream
   * per connection (federation-mux.ts), pipelined; a connection whose remote
   * does not speak version 2 falls back to version 1. Inbound, both versions
   * are always served. @default true
   */
  multiplexed?: boolean;
  /**
   * Frames that may wait for the peer to read a version 2 stream (answers on
   * the serving side, requests on the dialling side); one more and the
   * stream is reset as not being read. @default 1_024
   */
  maxQueuedFrames?: number;
}

export type ResolvedProtocolOptions = Required<Omit<FederationProtocolOptions, 'rateLimit'>>;

/**
 * Spare streams, at most one per connection: opened after a request on a
 * direct (unlimited) connection, taken by the next request, closed when idle.
 * The server sees an ordinary stream whose request comes a little later.
 */
export interface SpareStreams {
  take(connection: Connection): Stream | undefined;
  refill(connection: Connection): void;
  clear(): void;
}

export function createSpareStreams(options: ResolvedProtocolOptions): SpareStreams {
  const spares = new Map<string, { stream?: Stream; timer?: ReturnType<typeof setTimeout> }>();
  const usable = (stream: Stream): boolean => stream.status === 'open' && stream.readStatus === 'readable' && stream.writeStatus === 'writable' && stream.remoteWriteStatus === 'writable';
  function drop(id: string): void {
    const spare = spares.get(id);
    if (!spare) return;
    spares.delete(id);
    if (spare.timer) clearTimeout(spare.timer);
    if (spare.stream) void closeQuietly(spare.stream);
  }
  return {
    take(connection) {
      const spare = spares.get(connection.id);
      if (!spare?.stream) return undefined;
      spares.delete(connection.id);
      if (spare.timer) clearTimeout(spare.timer);
      if (connection.status === 'open' && usable(spare.stream)) return spare.stream;
      spare.stream.abort(new Error('stale spare stream'));
      return undefined;
    },
    refill(connection) {
      if (!options.spareStreams || connection.limits !== undefined || connection.status !== 'open' || spares.has(connection.id)) return;
      const entry: { stream?: Stream; timer?: ReturnType<typeof setTimeout> } = {};
      spares.set(connection.id, entry);
      connection
        .newStream(FEDERATION_PROTOCOL, { signal: AbortSignal.timeout(options.streamOpenTimeoutMs) })
        .then((stream) => {
          if (spares.get(connection.id) !== entry) return void closeQuietly(stream);
          entry.stream = stream;
          entry.timer = setTimeout(() => drop(connection.id), options.spareStreamIdleMs);
        })
        .catch(() => {
          if (spares.get(connection.id) === entry) spares.delete(connection.id);
        });
    },
    clear() {
      for (const id of [...spares.keys()]) drop(id);
    },
  };
}

export function resolveProtocolOptions(options: FederationProtocolOptions = {}): ResolvedProtocolOptions {
  return {
    maxRequestBytes: options.maxRequestBytes ?? 1 << 20,
    maxResponseBytes: options.maxResponseBytes ?? 4 << 20,
    maxJsonDepth: options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH,
    streamOpenTimeoutMs: options.streamOpenTimeoutMs ?? 5_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    inboundReadTimeoutMs: options.inboundReadTimeoutMs ?? 10_000,
    handlerTimeoutMs: options.handlerTimeoutMs ?? 25_000,
    maxStreamsPerPeer: options.maxStreamsPerPeer ?? 32,
    spareStreams: options.spareStreams ?? true,
    spareStreamIdleMs: options.spareStreamIdleMs ?? 5_000,
    multiplexed: options.multiplexed ?? true,
    maxQueuedFrames: options.maxQueuedFrames ?? 1_024,
  };
}

/** Aborts `stream` when `signal` fires, so a pending read or drain throws. */
function abortOn(stream: Stream, signal: AbortSignal): () => void {
  const onAbort = (): void => stream.abort(new P2PError('TIMEOUT', 'deadline passed'));
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

async function closeQuietly(stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(2_000) });
  } catch {
    stream.abort(new Error('close failed'));
  }
}

/**
 * Sends `request` on a new stream of `connection` and reads the answer.
 * Throws P2PError: TOO_LARGE (locally, before sending, or for the answer),
 * TIMEOUT / ABORTED, PROTOCOL (a malformed answer), UNREACHABLE (the stream
 * broke).
 */
export async function requestOverConnection(
  connection: Connection,
  request: FederationRequest,
  options: ResolvedProtocolOptions,
  call: { timeoutMs?: number; signal?: AbortSignal } = {},
  spares?: SpareStreams,
): Promise<FederationResponse> {
  const payload = encodeJson({ method: request.method, path: request.path, ...(request.body === undefined ? {} : { body: request.body }) });
  if (payload.length > options.maxRequestBytes) {
    throw new P2PError('TOO_LARGE', `request of ${payload.length} bytes exceeds ${options.maxRequestBytes}`);
  }
  const signal = deadlineSignal(call.timeoutMs ?? options.requestTimeoutMs, call.signal);
  let stream: Stream | undefined = spares?.take(connection);
  // Open the next request's stream now, while this one is in flight.
  spares?.refill(connection);
  if (stream === undefined) {
    try {
      stream = await connection.newStream(FEDERATION_PROTOCOL, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(options.streamOpenTimeoutMs)]),
        // Federation may cross a limited (relayed) link until a direct one exists.
        runOnLimitedConnection: true,
      });
    } catch (error) {
      if (signal.aborted) throw abortError('opening a federation stream', signal, call.signal);
      throw new P2PError('UNREACHABLE', `cannot open a federation stream: ${(error as Error).message}`, { cause: error, beforeSend: true });
    }
  }
  const detach = abortOn(stream, signal);
  try {
    await writeFrame(stream, payload, signal);
    const answer = await readFrame(stream, options.maxResponseBytes);
    return responseFromJson(decodeJson(answer, options.maxResponseBytes, options.maxJsonDepth));
  } catch (error) {
    if (signal.aborted) throw abortError(`${request.method} ${request.path}`, signal, call.signal);
    stream.abort(error as Error);
    if (error instanceof P2PError) throw error;
    throw new P2PError('UNREACHABLE', `federation stream failed: ${(error as Error).message}`, { cause: error });
  } finally {
    detach();
    if (stream.status === 'open') void closeQuietly(stream);
  }
}

export interface FederationServer {
  /** Serves one inbound stream from the authenticated server `origin`. Never throws. */
  serve(stream: Stream, origin: string): Promise<void>;
  /** Serves one inbound `/hometab/federation/2` stream (federation-mux.ts) until it ends. Never throws. */
  serveMultiplexed(stream: Stream, origin: string): Promise<void>;
  /** Installs the handler; until then peers get 503. */
  setHandler(handler: FederationHandler): void;
}

/** The serving half: admission, deadlines, limits, then the handler. */
export function createFederationServer(protocol: FederationProtocolOptions = {}, log: MuxLog = silentLog): FederationServer {
  const options = resolveProtocolOptions(protocol);
  const limiter: PeerRateLimiter = createPeerRateLimiter(protocol.rateLimit);
  let handler: FederationHandler | undefined;

  async function answer(stream: Stream, response: FederationResponse): Promise<void> {
    let payload = responsePayload(response);
    if (payload.length > options.maxResponseBytes) {
      payload = encodeJson(matrixError(500, 'M_TOO_LARGE', `response of ${payload.length} bytes exceeds ${options.maxResponseBytes}`));
    }
    await writeFrame(stream, payload, AbortSignal.timeout(options.requestTimeoutMs));
    await closeQuietly(stream);
  }

  const openStreams = new Map<string, number>();

  async function serve(stream: Stream, origin: string): Promise<void> {
    const open = (openStreams.get(origin) ?? 0) + 1;
    openStreams.set(origin, open);
    let admission: Admission | undefined;
    try {
      if (open > options.maxStreamsPerPeer) {
        // Answer without reading: a flooding peer costs us one small frame.
        await answer(stream, matrixError(429, 'M_LIMIT_EXCEEDED', 'too many open streams', { retry_after_ms: 100 }));
        return;
      }
      // The request may come later than the stream (a spare stream opened in advance), within the read deadline.
      const readDeadline = AbortSignal.timeout(options.inboundReadTimeoutMs);
      const detach = abortOn(stream, readDeadline);
      let request: FederationRequest;
      try {
        const frame = await readFrame(stream, options.maxRequestBytes);
        request = requestFromJson(decodeJson(frame, options.maxRequestBytes, options.maxJsonDepth));
      } catch (error) {
        if (readDeadline.aborted) return; // the stream is already aborted: a slow peer gets nothing
        const code = error instanceof P2PError ? error.code : 'PROTOCOL';
        const message = error instanceof Error ? error.message : String(error);
        await answer(stream, code === 'TOO_LARGE' ? matrixError(413, 'M_TOO_LARGE', message) : matrixError(400, 'M_BAD_JSON', message));
        return;
      } finally {
        detach();
      }
      admission = limiter.admit(origin);
      if (!admission.ok) {
        const why = admission.reason === 'rate' ? 'too many requests' : 'too many requests in flight';
        await answer(stream, matrixError(429, 'M_LIMIT_EXCEEDED', why, { retry_after_ms: admission.retryAfterMs }));
        return;
      }
      const handlerDeadline = AbortSignal.timeout(options.handlerTimeoutMs);
      const response = await Promise.race([
        runHandler(handler, origin, request),
        new Promise<FederationResponse>((resolve) =>
          handlerDeadline.addEventListener('abort', () => resolve(matrixError(504, 'M_UNKNOWN', 'the handler did not answer in time')), { once: true }),
        ),
      ]);
      await answer(stream, response);
    } catch (error) {
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    } finally {
      if (admission?.ok) admission.release();
      const left = (openStreams.get(origin) ?? 1) - 1;
      if (left === 0) openStreams.delete(origin);
      else openStreams.set(origin, left);
    }
  }

  async function serveMultiplexed(stream: Stream, origin: string): Promise<void> {
    // A version 2 stream counts as one open stream of its peer for as long as it lives.
    const open = (openStreams.get(origin) ?? 0) + 1;
    openStreams.set(origin, open);
    try {
      if (open > options.maxStreamsPerPeer) {
        log.warn(`federation/2: ${origin}: more than ${options.maxStreamsPerPeer} open streams; stream reset`);
        stream.abort(new P2PError('PROTOCOL', 'too many open streams'));
        return;
      }
      await serveMuxStream(stream, origin, { options, limiter, handler: () => handler, log });
    } finally {
      const left = (openStreams.get(origin) ?? 1) - 1;
      if (left === 0) openStreams.delete(origin);
      else openStreams.set(origin, left);
    }
  }

  return {
    serve,
    serveMultiplexed,
    setHandler(next) {
      handler = next;
    },
  };
}
