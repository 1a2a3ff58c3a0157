/**
 * Several transports as one: a tab runs libp2p (other browsers, Node peers)
 * and a BroadcastChannel (tabs of the same browser) side by side, and the
 * homeserver sees one FederationTransport. A request goes over the best link
 * the server is on now: a direct libp2p link (WebRTC or WebSocket) first,
 * then the BroadcastChannel, then a relayed libp2p link; if no transport
 * lists the server, each is tried in order (libp2p can dial by name).
 *
 * Peer events are merged per server: `peer:online` when the first transport
 * sees it, `peer:offline` when the last loses it, `peer:link` when the best
 * link changes. A topic message may arrive over both transports; copies are
 * dropped by a short memory of (topic, message hash) pairs.
 *
 * A transport may join after creation (`add`): the app builds the
 * BroadcastChannel at once and adds libp2p once the room list is on screen,
 * so its chunk and node start never delay the first paint. The late transport
 * gets the installed handler and every live subscription, its connected
 * servers are announced as peer events, and requests route to it from then on.
 */
import { encodeBase64, sha256 } from '../core/index.js';
import { isRetryable, P2PError } from './errors.js';
import { emitPeerEvent, type FederationHandler, type FederationTransport, type PeerInfo } from './transport.js';

export interface CombineOptions {
  /** How many recent topic messages are remembered to drop duplicates. @default 4096 */
  dedupeWindow?: number;
}

/** Lower is better. */
function rank(info: PeerInfo): number {
  if (info.via === 'memory') return 0;
  if (info.direct && info.via !== 'broadcast-channel') return 1;
  if (info.via === 'broadcast-channel') return 2;
  return 3;
}

export interface CombinedTransport extends FederationTransport {
  /** Adds a transport after creation (same server identity): it serves the handler and live subscriptions, and its peers join the merged view. */
  add(transport: FederationTransport): void;
}

export function combineTransports(initial: FederationTransport[], options: CombineOptions = {}): CombinedTransport {
  if (initial.length === 0) throw new Error('combineTransports needs at least one transport');
  const localServer = initial[0]!.localServer;
  const transports: FederationTransport[] = [];
  const events = new EventTarget();
  const window = options.dedupeWindow ?? 4096;
  const merged = new Map<string, PeerInfo>();
  let handler: FederationHandler | undefined;
  /** Live subscriptions: each late transport subscribes to them too. */
  const subscriptions = new Set<{ topic: string; deliver: (data: Uint8Array, from: string) => void; unsubscribes: Array<() => void> }>();
  let closed = false;

  function best(server: string): { transport: FederationTransport; info: PeerInfo } | undefined {
    let found: { transport: FederationTransport; info: PeerInfo } | undefined;
    for (const transport of transports) {
      const info = transport.peers().find((p) => p.server === server);
      if (info && (!found || rank(info) < rank(found.info))) found = { transport, info };
    }
    return found;
  }

  function recompute(server: string): void {
    const before = merged.get(server);
    const now = best(server)?.info;
    if (!now) {
      if (before) {
        merged.delete(server);
        emitPeerEvent(events, 'peer:offline', before);
      }
      return;
    }
    merged.set(server, now);
    if (!before) emitPeerEvent(events, 'peer:online', now);
    else if (before.via !== now.via || before.direct !== now.direct) emitPeerEvent(events, 'peer:link', now);
  }

  function add(transport: FederationTransport): void {
    if (transport.localServer !== localServer) throw new Error('combined transports must share one server identity');
    if (closed) throw new Error('the combined transport is closed');
    if (transports.includes(transport)) return;
    transports.push(transport);
    for (const name of ['peer:online', 'peer:offline', 'peer:link'] as const) {
      transport.events.addEventListener(name, (event) => recompute((event as CustomEvent<PeerInfo>).detail.server));
    }
    if (handler) transport.handle(handler);
    for (const subscription of subscriptions) subscription.unsubscribes.push(transport.subscribe(subscription.topic, subscription.deliver));
    for (const p of transport.peers()) recompute(p.server);
  }

  for (const t of initial) add(t);

  return {
    localServer,
    add,
    events,
    async request(server, request, call) {
      const chosen = best(server);
      const order = chosen ? [chosen.transport, ...transports.filter((t) => t !== chosen.transport)] : transports;
      let last: unknown = new P2PError('UNREACHABLE', `no transport reaches ${server}`);
      for (const transport of order) {
        try {
          return await transport.request(server, request, call);
        } catch (error) {
          last = error;
          // Only "could not get there" moves on to the next transport; an answer-level failure is final.
          if (!(error instanceof P2PError) || !(isRetryable(error) && error.code !== 'TIMEOUT')) throw error;
        }
      }
      throw last;
    },
    handle(next) {
      handler = next;
      for (const t of transports) t.handle(next);
    },
    peers() {
      const out = new Map<string, PeerInfo>();
      for (const t of transports) for (const p of t.peers()) if (!out.has(p.server) || rank(p) < rank(out.get(p.server)!)) out.set(p.server, p);
      return [...out.values()];
    },
    async publish(topic, data) {
      const results = await Promise.allSettled(transports.map((t) => t.publish(topic, data)));
      if (results.every((r) => r.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
    },
    subscribe(topic, onMessage) {
      const seen = new Set<string>();
      const order: string[] = [];
      const deliver = (data: Uint8Array, from: string): void => {
        const key = encodeBase64(sha256(data));
        if (seen.has(key)) return;
        seen.add(key);
        order.push(key);
        if (order.length > window) seen.delete(order.shift()!);
        onMessage(data, from);
      };
      const subscription = { topic, deliver, unsubscribes: transports.map((t) => t.subscribe(topic, deliver)) };
      subscriptions.add(subscription);
      return () => {
        subscriptions.delete(subscription);
        subscription.unsubscribes.forEach((u) => u());
      };
    },
    async close() {
      closed = true;
      await Promise.allSettled(transports.map((t) => t.close()));
    },
  };
}
