/**
 * Tabs of one browser (any profile of one origin) reach each other over a
 * BroadcastChannel: no relay, no network. This module is a FederationTransport
 * on such a channel: presence (hello / bye / heartbeat), request/response
 * addressed by server name, and topics (every tab hears every frame, so a
 * publish is one hop).
 *
 * A BroadcastChannel is unauthenticated: any script of the origin (another
 * profile, a test page, a compromised tab) can post anything on it, so a name
 * in a frame proves nothing by itself. Every frame is therefore signed with
 * the sender's ed25519 server key, over the exact fields the receiver acts
 * on (kind, from, to, request ID, timestamp, nonce, topic, payload); since a
 * server name *is* the hex of its public key, the receiver verifies without
 * any lookup, and `origin` is as authenticated as a Noise-checked PeerId.
 * Replays are refused: a frame's timestamp must be within `replayWindowMs` of
 * the receiver's clock and its nonce must not have been seen in that window;
 * `to` is signed so a request cannot be redirected to another server, and a
 * response must come from the server the request went to. A tab skips frames
 * addressed to others before any signature work, so the cost of a request is
 * one signature and one verification per end.
 */
import { createSigner, decodeBase64, ed25519PublicKey, ed25519Verify, encodeBase64, type Signer } from '../core/index.js';
import { P2PError } from './errors.js';
import { isJsonRecord, ownField, parseGuardedJson } from './json-guard.js';
import { isHometabServerName } from './server-name.js';
import {
  emitPeerEvent,
  matrixError,
  requestFromJson,
  responseFromJson,
  runHandler,
  type FederationHandler,
  type FederationResponse,
  type FederationTransport,
  type PeerInfo,
} from './transport.js';

/** The part of BroadcastChannel this module uses (the DOM's and Node's both fit). */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface BroadcastTransportInit {
  /** The homeserver's 32-byte ed25519 seed; frames are signed with it. */
  seed: Uint8Array;
  /** Channel name; tabs on one name form one network. @default 'hometab-federation/1' */
  channelName?: string;
  /** Makes the channel (tests inject one). @default (name) => new BroadcastChannel(name) */
  createChannel?: (name: string) => BroadcastChannelLike;
  /** Interval of presence heartbeats. @default 2_000 */
  heartbeatMs?: number;
  /** A peer not heard from for this long is offline. @default 3 × heartbeatMs */
  peerTimeoutMs?: number;
  /** Time for a request to be answered. @default 30_000 */
  requestTimeoutMs?: number;
  /** Accepted clock difference and nonce memory for replay protection. @default 60_000 */
  replayWindowMs?: number;
  /** Largest payload (JSON text) of one frame. @default 1_048_576 */
  maxPayloadBytes?: number;
  /** Deepest JSON accepted in a payload. @default 64 */
  maxJsonDepth?: number;
  /** Clock in ms, for tests. @default Date.now */
  now?: () => number;
}

type Kind = 'hello' | 'bye' | 'req' | 'res' | 'pub';
const KINDS: ReadonlySet<string> = new Set(['hello', 'bye', 'req', 'res', 'pub']);

interface Frame {
  v: 1;
  kind: Kind;
  from: string;
  /** Addressee server name, '' for everyone. */
  to: string;
  /** Request ID (req/res), '' otherwise. */
  id: string;
  ts: number;
  nonce: string;
  /** Topic (pub), '' otherwise. */
  topic: string;
  /** JSON text (req/res) or base64 data (pub). */
  payload: string;
  sig: string;
}

const encoder = new TextEncoder();

/** The bytes a frame's signature covers: a JSON array of its fields in a fixed order. */
function signedBytes(f: Omit<Frame, 'sig'>): Uint8Array {
  return encoder.encode(JSON.stringify([f.v, f.kind, f.from, f.to, f.id, f.ts, f.nonce, f.topic, f.payload]));
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function randomNonce(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(16)));
}

/** A frame from unknown input, or undefined: only own fields of the right types are read. */
function frameFrom(value: unknown): Frame | undefined {
  if (!isJsonRecord(value)) return undefined;
  const fields = ['kind', 'from', 'to', 'id', 'nonce', 'topic', 'payload', 'sig'] as const;
  const out: Record<string, unknown> = {};
  for (const key of fields) {
    const v = ownField(value, key);
    if (typeof v !== 'string') return undefined;
    out[key] = v;
  }
  const ts = ownField(value, 'ts');
  if (ownField(value, 'v') !== 1 || typeof ts !== 'number' || !KINDS.has(out.kind as string)) return undefined;
  return { ...(out as Omit<Frame, 'v' | 'ts'>), v: 1, ts };
}

export async function createBroadcastTransport(init: BroadcastTransportInit): Promise<FederationTransport> {
  const publicKey = await ed25519PublicKey(init.seed);
  let localServer = '';
  for (const b of publicKey) localServer += b.toString(16).padStart(2, '0');
  const signer: Signer = await createSigner(init.seed, localServer, 'ed25519:1');
  const channelName = init.channelName ?? 'hometab-federation/1';
  const channel = (init.createChannel ?? ((name) => new BroadcastChannel(name) as BroadcastChannelLike))(channelName);
  const heartbeatMs = init.heartbeatMs ?? 2_000;
  const peerTimeoutMs = init.peerTimeoutMs ?? 3 * heartbeatMs;
  const requestTimeoutMs = init.requestTimeoutMs ?? 30_000;
  const replayWindowMs = init.replayWindowMs ?? 60_000;
  const maxPayload = init.maxPayloadBytes ?? 1 << 20;
  const maxDepth = init.maxJsonDepth ?? 64;
  const now = init.now ?? Date.now;
  const events = new EventTarget();
  const peers = new Map<string, number>(); // server -> last heard
  const nonces = new Map<string, number>(); // nonce -> expiry
  const pending = new Map<string, { to: string; resolve: (r: FederationResponse) => void; reject: (e: unknown) => void }>();
  const topics = new Map<string, Set<(data: Uint8Array, from: string) => void>>();
  let handler: FederationHandler | undefined;
  let closed = false;
  let nextId = 0;

  async function post(kind: Kind, fields: { to?: string; id?: string; topic?: string; payload?: string } = {}): Promise<void> {
    const unsigned = { v: 1 as const, kind, from: localServer, to: fields.to ?? '', id: fields.id ?? '', ts: now(), nonce: randomNonce(), topic: fields.topic ?? '', payload: fields.payload ?? '' };
    const sig = encodeBase64(await signer.sign(signedBytes(unsigned)));
    if (!closed || kind === 'bye') channel.postMessage({ ...unsigned, sig });
  }

  function sawPeer(server: string): void {
    const known = peers.has(server);
    peers.set(server, now());
    if (!known) {
      emitPeerEvent(events, 'peer:online', info(server));
      // Answer a newcomer at once so it need not wait a heartbeat to see us.
      void post('hello');
    }
  }

  function info(server: string): PeerInfo {
    return { server, direct: true, via: 'broadcast-channel' };
  }

  function dropPeer(server: string): void {
    if (peers.delete(server)) emitPeerEvent(events, 'peer:offline', info(server));
  }

  async function authentic(frame: Frame): Promise<boolean> {
    if (!isHometabServerName(frame.from) || frame.from === localServer) return false;
    const t = now();
    if (Math.abs(t - frame.ts) > replayWindowMs) return false;
    if (nonces.has(frame.nonce)) return false;
    let signature: Uint8Array;
    try {
      signature = decodeBase64(frame.sig);
    } catch {
      return false;
    }
    if (!(await ed25519Verify(hexToBytes(frame.from), signedBytes(frame), signature))) return false;
    // Record the nonce only once the frame is proven, so forgeries cannot fill the table.
    nonces.set(frame.nonce, frame.ts + replayWindowMs);
    return true;
  }

  async function onFrame(frame: Frame): Promise<void> {
    // Cheap filters first: frames for other tabs cost no signature check.
    if (frame.to !== '' && frame.to !== localServer) return;
    if (frame.payload.length > maxPayload * 1.4) return;
    if (!(await authentic(frame))) return;
    switch (frame.kind) {
      case 'hello':
        sawPeer(frame.from);
        return;
      case 'bye':
        dropPeer(frame.from);
        return;
      case 'req': {
        sawPeer(frame.from);
        let response: FederationResponse;
        try {
          response = await runHandler(handler, frame.from, requestFromJson(parseGuardedJson(frame.payload, { maxLength: maxPayload, maxDepth })));
        } catch (error) {
          response = matrixError(400, 'M_BAD_JSON', (error as Error).message);
        }
        let text = JSON.stringify(response);
        if (text.length > maxPayload) text = JSON.stringify(matrixError(500, 'M_TOO_LARGE', 'response too large'));
        await post('res', { to: frame.from, id: frame.id, payload: text });
        return;
      }
      case 'res': {
        const waiting = pending.get(frame.id);
        // Only the server the request went to may answer it.
        if (!waiting || waiting.to !== frame.from) return;
        pending.delete(frame.id);
        try {
          waiting.resolve(responseFromJson(parseGuardedJson(frame.payload, { maxLength: maxPayload, maxDepth })));
        } catch (error) {
          waiting.reject(error);
        }
        return;
      }
      case 'pub': {
        sawPeer(frame.from);
        const listeners = topics.get(frame.topic);
        if (!listeners) return;
        let data: Uint8Array;
        try {
          data = decodeBase64(frame.payload);
        } catch {
          return;
        }
        for (const listener of listeners) {
          try {
            listener(data.slice(), frame.from);
          } catch {
            // A subscriber's bug must not stop delivery to the others.
          }
        }
      }
    }
  }

  const onMessage = (event: MessageEvent): void => {
    const frame = frameFrom(event.data);
    if (frame) void onFrame(frame).catch(() => {});
  };
  channel.addEventListener('message', onMessage);

  const heartbeat = setInterval(() => {
    const t = now();
    for (const [server, seen] of peers) if (t - seen > peerTimeoutMs) dropPeer(server);
    for (const [nonce, expiry] of nonces) if (expiry < t) nonces.delete(nonce);
    void post('hello');
  }, heartbeatMs);
  (heartbeat as { unref?: () => void }).unref?.();
  await post('hello');

  return {
    localServer,
    events,
    request(server, request, options = {}) {
      if (closed) return Promise.reject(new P2PError('CLOSED', 'transport closed'));
      if (!peers.has(server)) return Promise.reject(new P2PError('UNREACHABLE', `${server} is not on this browser's channel`));
      const payload = JSON.stringify({ method: request.method, path: request.path, ...(request.body === undefined ? {} : { body: request.body }) });
      if (payload.length > maxPayload) return Promise.reject(new P2PError('TOO_LARGE', `request of ${payload.length} bytes exceeds ${maxPayload}`));
      const id = `${localServer.slice(0, 8)}-${nextId++}-${randomNonce()}`;
      return new Promise<FederationResponse>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new P2PError('TIMEOUT', `${request.method} ${request.path} to ${server}: timed out`));
        }, options.timeoutMs ?? requestTimeoutMs);
        const onAbort = (): void => {
          clearTimeout(timer);
          pending.delete(id);
          reject(new P2PError('ABORTED', 'aborted by the caller'));
        };
        if (options.signal?.aborted) return onAbort();
        options.signal?.addEventListener('abort', onAbort, { once: true });
        const settle = (fn: () => void): void => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          fn();
        };
        pending.set(id, { to: server, resolve: (r) => settle(() => resolve(r)), reject: (e) => settle(() => reject(e)) });
        post('req', { to: server, id, payload }).catch((error) => {
          pending.delete(id);
          settle(() => reject(error));
        });
      });
    },
    handle(next) {
      handler = next;
    },
    peers() {
      return [...peers.keys()].map(info);
    },
    async publish(topic, data) {
      if (closed) throw new P2PError('CLOSED', 'transport closed');
      await post('pub', { topic, payload: encodeBase64(data) });
    },
    subscribe(topic, onMessageCb) {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(onMessageCb);
      return () => {
        set!.delete(onMessageCb);
        if (set!.size === 0) topics.delete(topic);
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      await post('bye').catch(() => {});
      channel.removeEventListener('message', onMessage);
      channel.close();
      for (const [id, waiting] of pending) {
        pending.delete(id);
        waiting.reject(new P2PError('CLOSED', 'transport closed'));
      }
    },
  };
}
