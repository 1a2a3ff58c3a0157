/**
 * The contract between the homeserver's federation code and the networks
 * that carry it. A FederationTransport moves Matrix server-server requests
 * (the spec's paths and JSON bodies) to a server named by its key, answers
 * inbound ones through one handler, reports which servers are connected and
 * how, and offers a topic pub/sub for room fan-out. libp2p (node-node.ts,
 * node-browser.ts), BroadcastChannel (broadcast-transport.ts) and the
 * in-memory simulation network (memory-transport.ts) all implement it, and
 * combine.ts merges several. The `origin` passed to a handler is always the
 * authenticated remote end of the link (a Noise PeerId, or a signed frame),
 * never a name taken from the request.
 */
import { P2PError } from './errors.js';
import { isJsonRecord, ownField } from './json-guard.js';

export interface FederationRequest {
  method: 'GET' | 'PUT' | 'POST';
  /** Matrix server-server path incl. query, e.g. /_matrix/federation/v1/send/123 */
  path: string;
  body?: unknown;
}

export interface FederationResponse {
  status: number;
  body: unknown;
}

/** `origin` is the authenticated remote server name. */
export type FederationHandler = (origin: string, request: FederationRequest) => Promise<FederationResponse>;

export interface PeerInfo {
  server: string;
  /** True when the link is not limited (not a circuit-relay hop). */
  direct: boolean;
  via: 'webrtc' | 'websocket' | 'relay' | 'broadcast-channel' | 'memory';
}

export interface RequestOptions {
  /** Total time for dialing, sending and receiving. @default the transport's requestTimeoutMs */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface FederationTransport {
  readonly localServer: string;
  /** Sends one request to `server` (dialing it if needed, through any relay); rejects on timeout / unreachable with a typed P2PError. */
  request(server: string, request: FederationRequest, options?: RequestOptions): Promise<FederationResponse>;
  /** Installs the one handler for inbound requests. */
  handle(handler: FederationHandler): void;
  /** Servers currently connected. */
  peers(): PeerInfo[];
  /** 'peer:online' / 'peer:offline' / 'peer:link' (direct or relayed changed) events; each a CustomEvent<PeerInfo>. */
  readonly events: EventTarget;
  /** Publish / subscribe for room fan-out (gossipsub topic per room); messages carry the propagating peer. */
  publish(topic: string, data: Uint8Array): Promise<void>;
  subscribe(topic: string, onMessage: (data: Uint8Array, from: string) => void): () => void;
  close(): Promise<void>;
}

export type PeerEventName = 'peer:online' | 'peer:offline' | 'peer:link';

export const FEDERATION_METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'POST']);

/** Longest path accepted, query included (URLs this long are refused by most HTTP servers too). @default 8192 */
export const MAX_PATH_LENGTH = 8192;

/**
 * A FederationRequest from parsed peer input, or a P2PError('PROTOCOL').
 * Only the three known fields are read, as own properties; nothing else of
 * the input is kept.
 */
export function requestFromJson(value: unknown): FederationRequest {
  if (!isJsonRecord(value)) throw new P2PError('PROTOCOL', 'a request is a JSON object');
  const method = ownField(value, 'method');
  const path = ownField(value, 'path');
  if (typeof method !== 'string' || !FEDERATION_METHODS.has(method)) throw new P2PError('PROTOCOL', 'request method must be GET, PUT or POST');
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > MAX_PATH_LENGTH) throw new P2PError('PROTOCOL', 'request path must be an absolute path');
  const request: FederationRequest = { method: method as FederationRequest['method'], path };
  if (Object.hasOwn(value, 'body')) request.body = value.body;
  return request;
}

/** A FederationResponse from parsed peer input, or a P2PError('PROTOCOL'). */
export function responseFromJson(value: unknown): FederationResponse {
  if (!isJsonRecord(value)) throw new P2PError('PROTOCOL', 'a response is a JSON object');
  const status = ownField(value, 'status');
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) throw new P2PError('PROTOCOL', 'response status must be an HTTP status');
  return { status, body: ownField(value, 'body') ?? {} };
}

/**
 * The local handler's answers whose body is already JSON text (the
 * homeserver's own `Response`), kept as its UTF-8 bytes: a transport that
 * frames answers as JSON splices them in (`responsePayload`) instead of
 * parsing the body and stringifying it again, which for a 1,000-event
 * catch-up page was the serving tab's costliest step after the reads. The
 * bytes never come from a peer.
 */
const localJson = new WeakMap<FederationResponse, Uint8Array>();

/** A response of the local handler whose body is `json`, JSON text it produced; `body` is parsed only if read. */
export function localJsonResponse(status: number, json: Uint8Array): FederationResponse {
  let parsed: { value: unknown } | undefined;
  const response: FederationResponse = {
    status,
    get body(): unknown {
      parsed ??= { value: JSON.parse(jsonDecoder.decode(json)) as unknown };
      return parsed.value;
    },
  };
  localJson.set(response, json);
  return response;
}

const jsonDecoder = new TextDecoder();
const jsonEncoder = new TextEncoder();

/**
 * A response as one frame's JSON payload, `{"id"?,"status","body"}`
 * (`id` on the multiplexed protocol): the body's own bytes when the local
 * handler gave them (localJsonResponse), else the body stringified.
 */
export function responsePayload(response: FederationResponse, id?: number): Uint8Array {
  const status = Number.isInteger(response.status) ? response.status : 500;
  const head = id === undefined ? `{"status":${status}` : `{"id":${id},"status":${status}`;
  const json = localJson.get(response);
  if (json === undefined) return jsonEncoder.encode(`${head},"body":${JSON.stringify(response.body ?? {})}}`);
  const before = jsonEncoder.encode(`${head},"body":`);
  const out = new Uint8Array(before.length + json.length + 1);
  out.set(before, 0);
  out.set(json, before.length);
  out[out.length - 1] = 0x7d; // }
  return out;
}

/** A Matrix error response (spec "Standard error response"). */
export function matrixError(status: number, errcode: string, error: string, extra?: { retry_after_ms?: number }): FederationResponse {
  return { status, body: { errcode, error, ...extra } };
}

/** Dispatches a peer event on `target`. */
export function emitPeerEvent(target: EventTarget, name: PeerEventName, info: PeerInfo): void {
  target.dispatchEvent(new CustomEvent<PeerInfo>(name, { detail: info }));
}

/** Runs the installed handler, turning a throw into a 500 so one bad request never takes the transport down. */
export async function runHandler(handler: FederationHandler | undefined, origin: string, request: FederationRequest): Promise<FederationResponse> {
  if (handler === undefined) return matrixError(503, 'M_UNAVAILABLE', 'this server does not serve federation yet');
  try {
    return await handler(origin, request);
  } catch (error) {
    return matrixError(500, 'M_UNKNOWN', `handler failed: ${(error as Error)?.message ?? String(error)}`);
  }
}

/** A timeout signal combined with the caller's. */
export function deadlineSignal(timeoutMs: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

/** The P2PError for an aborted operation: TIMEOUT if the deadline passed, ABORTED if the caller gave up. */
export function abortError(what: string, signal: AbortSignal, caller?: AbortSignal): P2PError {
  if (caller?.aborted) return new P2PError('ABORTED', `${what}: aborted by the caller`, { cause: caller.reason });
  return new P2PError('TIMEOUT', `${what}: timed out`, { cause: signal.reason });
}
