/**
 * The libp2p node for Node processes (the always-on homeserver peer, tests):
 * a WebSockets listener on loopback, announced so tabs can dial it directly,
 * the circuit relay transport so it can reach tabs (which cannot listen) and
 * be reached through a relay, Noise, yamux, identify, ping and gossipsub. Its
 * private key is the homeserver's ed25519 seed (identity.ts), so its PeerId is
 * its server name.
 *
 * Node 20 has no global WebSocket, which @libp2p/websockets needs to dial;
 * this module installs the `ws` package's as `globalThis.WebSocket` when it is
 * missing (NETWORK.md). Listening alone would not need it.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { gossipsub, type GossipsubOpts } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { webSockets } from '@libp2p/websockets';
import { createLibp2p } from 'libp2p';
import { privateKeyFromSeed } from './identity.js';
import { createLibp2pTransport, type Libp2pTransportInit, type Libp2pWithPubsub } from './libp2p-transport.js';
import { createPeerBook, type KeyValueStore } from './peer-book.js';
import type { FederationTransport } from './transport.js';
import type { PeerBook } from './peer-book.js';

export interface NodeTransportInit extends Libp2pTransportInit {
  /** The homeserver's 32-byte ed25519 seed. */
  seed: Uint8Array;
  /** Relay multiaddrs ending in /p2p/<relay peer id>; with any, the node also listens on /p2p-circuit. @default [] */
  relays?: string[];
  /** Listen addresses. @default ['/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[];
  /** Addresses to announce instead of the listen addresses (e.g. behind a proxy). @default the listen addresses */
  announce?: string[];
  /** Persistence of the peer book. @default in memory */
  store?: KeyValueStore;
  /** Connections kept open at most. @default 100 */
  maxConnections?: number;
  /** Extra gossipsub settings; `allowPublishToZeroTopicPeers` is on so publishing alone never throws. @default {} */
  gossipsub?: Partial<GossipsubOpts>;
  /** Time allowed for each dial attempt. @default 10_000 */
  dialTimeoutMs?: number;
}

export type Libp2pFederationTransport = FederationTransport & { readonly node: Libp2pWithPubsub; readonly peerBook: PeerBook };

/**
 * Installs `ws` as the global WebSocket on Node versions without one. The
 * subclass keeps one no-op 'error' listener: @libp2p/websockets closes a
 * socket whose dial failed after removing its own listeners, and `ws` (an
 * EventEmitter) would raise that second error as an uncaught exception
 * (seen as "connect ECONNREFUSED" crashing a process whose relay was down).
 * libp2p still sees every error through its own listeners.
 */
export async function ensureWebSocketGlobal(): Promise<void> {
  if (typeof globalThis.WebSocket === 'function') return;
  const { WebSocket } = await import('ws');
  class NodeWebSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('error', () => {});
    }
  }
  (globalThis as { WebSocket?: unknown }).WebSocket = NodeWebSocket;
}

export async function createNodeTransport(init: NodeTransportInit): Promise<Libp2pFederationTransport> {
  await ensureWebSocketGlobal();
  const relays = init.relays ?? [];
  const listen = [...(init.listen ?? ['/ip4/127.0.0.1/tcp/0/ws'])];
  if (relays.length > 0) listen.push('/p2p-circuit');
  const node: Libp2pWithPubsub = await createLibp2p({
    privateKey: await privateKeyFromSeed(init.seed),
    addresses: { listen, ...(init.announce ? { announce: init.announce } : {}) },
    transports: [webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: init.maxConnections ?? 100, dialTimeout: init.dialTimeoutMs ?? 10_000 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, ...init.gossipsub }),
    },
  });
  const peerBook = createPeerBook(node, { relays, store: init.store, dialTimeoutMs: init.dialTimeoutMs });
  return createLibp2pTransport(node, peerBook, init);
}
