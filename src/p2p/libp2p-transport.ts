/**
 * A FederationTransport over a running libp2p node: the federation protocol
 * (federation-protocol.ts) for requests, the peer book (peer-book.ts) for
 * dialing by server name and for peer events, and gossipsub for topics. The
 * node factories (node-node.ts, node-browser.ts) build the libp2p node with
 * the right transports and hand it here; everything above this line is the
 * same in Node and in browsers.
 *
 * Requests go over `/hometab/federation/2` (one long-lived stream per
 * connection, federation-mux.ts) unless the remote speaks only version 1.
 * Inbound: both protocol handlers derive `origin` from the connection's
 * Noise-authenticated remote PeerId. Topics: a message is delivered with the
 * server that propagated it to us over an authenticated link (gossipsub's
 * `propagationSource`), which is what EDU rules need; the author of a PDU is
 * proven by the PDU's own signature.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import type { GossipSub } from '@libp2p/gossipsub';
import { P2PError } from './errors.js';
import { createFederationServer, createSpareStreams, FEDERATION_PROTOCOL, requestOverConnection, resolveProtocolOptions, type FederationProtocolOptions } from './federation-protocol.js';
import { createMuxSessions, FEDERATION_PROTOCOL_V2, type MuxLog } from './federation-mux.js';
import { serverNameOfPeerId } from './identity.js';
import { silentLog } from './replication-port.js';
import type { PeerBook } from './peer-book.js';
import { deadlineSignal, abortError, type FederationHandler, type FederationTransport } from './transport.js';

export interface Libp2pTransportInit {
  /** Limits and timeouts of the federation protocol. @default see FederationProtocolOptions */
  protocol?: FederationProtocolOptions;
  /** Inbound federation streams libp2p accepts per connection before resetting; above the per-peer cap so that cap answers 429 in-protocol. @default 64 */
  maxInboundStreamsPerConnection?: number;
  /** Where peers that break the federation protocol are reported. @default silent */
  log?: MuxLog;
}

/** Inbound `/hometab/federation/2` streams per connection: the one in use and its replacement while the old one is torn down. */
const MAX_INBOUND_V2_STREAMS = 4;

export type Libp2pWithPubsub = Libp2p<{ pubsub: GossipSub }>;

export async function createLibp2pTransport(node: Libp2pWithPubsub, peerBook: PeerBook, init: Libp2pTransportInit = {}): Promise<FederationTransport & { readonly node: Libp2pWithPubsub; readonly peerBook: PeerBook }> {
  const options = resolveProtocolOptions(init.protocol);
  const log = init.log ?? silentLog;
  const server = createFederationServer(init.protocol, log);
  const spares = createSpareStreams(options);
  const sessions = createMuxSessions(options, log);
  const localServer = serverNameOfPeerId(node.peerId);
  const pubsub = node.services.pubsub;
  const listeners = new Map<string, Set<(data: Uint8Array, from: string) => void>>();
  let closed = false;

  const serveWith =
    (serve: (stream: Stream, origin: string) => Promise<void>) =>
    (stream: Stream, connection: Connection): void => {
      let origin: string;
      try {
        origin = serverNameOfPeerId(connection.remotePeer);
      } catch {
        stream.abort(new P2PError('BAD_IDENTITY', 'peer has no ed25519 identity'));
        return;
      }
      void serve(stream, origin);
    };
  await node.handle(FEDERATION_PROTOCOL, serveWith(server.serve), { runOnLimitedConnection: true, maxInboundStreams: init.maxInboundStreamsPerConnection ?? 64 });
  await node.handle(FEDERATION_PROTOCOL_V2, serveWith(server.serveMultiplexed), { runOnLimitedConnection: true, maxInboundStreams: MAX_INBOUND_V2_STREAMS });

  pubsub.addEventListener('gossipsub:message', (event) => {
    const { msg, propagationSource } = event.detail;
    const set = listeners.get(msg.topic);
    if (!set) return;
    let from: string;
    try {
      from = serverNameOfPeerId(propagationSource);
    } catch {
      return;
    }
    for (const listener of set) {
      try {
        listener(msg.data, from);
      } catch {
        // A subscriber's bug must not stop delivery to the others.
      }
    }
  });

  peerBook.start();

  return {
    node,
    peerBook,
    localServer,
    events: peerBook.events,
    async request(target, request, call = {}) {
      if (closed) throw new P2PError('CLOSED', 'transport closed');
      const timeoutMs = call.timeoutMs ?? options.requestTimeoutMs;
      const signal = deadlineSignal(timeoutMs, call.signal);
      const started = Date.now();
      // A connection can look open on this side while its far end is gone (e.g. a WebRTC
      // connection left over from a dial the other side gave up on). If no stream opens on it,
      // drop it and try once more over whatever else reaches the server.
      for (let attempt = 0; ; attempt++) {
        let connection;
        try {
          connection = await peerBook.dial(target, signal);
        } catch (error) {
          if (signal.aborted) throw abortError(`dialing ${target}`, signal, call.signal);
          throw error;
        }
        try {
          const left = { timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)), signal: call.signal };
          const session = options.multiplexed ? await sessions.session(connection, signal, call.signal) : undefined;
          if (session) return await session.request(request, left);
          return await requestOverConnection(connection, request, options, left, spares);
        } catch (error) {
          if (attempt > 0 || !(error instanceof P2PError) || !error.beforeSend || signal.aborted) throw error;
          connection.abort(error);
        }
      }
    },
    handle(handler: FederationHandler) {
      server.setHandler(handler);
    },
    peers() {
      return peerBook.peers();
    },
    async publish(topic, data) {
      if (closed) throw new P2PError('CLOSED', 'transport closed');
      await pubsub.publish(topic, data);
    },
    subscribe(topic, onMessage) {
      let set = listeners.get(topic);
      if (!set) {
        set = new Set();
        listeners.set(topic, set);
        pubsub.subscribe(topic);
      }
      set.add(onMessage);
      return () => {
        const current = listeners.get(topic);
        if (!current) return;
        current.delete(onMessage);
        if (current.size === 0) {
          listeners.delete(topic);
          if (!closed) pubsub.unsubscribe(topic);
        }
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      peerBook.stop();
      spares.clear();
      sessions.clear();
      await node.stop();
    },
  };
}
