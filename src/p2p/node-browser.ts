/**
 * The libp2p node for a browser tab: WebSockets (to relays and Node peers),
 * WebRTC (direct links between tabs, signalled through a relay), the circuit
 * relay transport (to be reachable at all: a tab cannot listen on a socket,
 * so it holds a reservation on a relay and listens on `/p2p-circuit` and
 * `/webrtc`), Noise, yamux, identify (WebRTC needs it), ping and gossipsub.
 * Its private key is the homeserver's ed25519 seed, so its PeerId is its
 * server name.
 *
 * Dialing another tab by name goes `<relay>/p2p-circuit/webrtc/p2p/<tab>`
 * first: a small limited relayed connection carries the WebRTC offer and
 * answer, then the direct data-channel connection takes over and the relay may
 * go away (NETWORK.md). If WebRTC fails, the relayed connection itself carries
 * federation (within the relay's limits). Tabs need no STUN or TURN on one
 * machine or LAN; across NATs pass `iceServers`.
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { gossipsub, type GossipsubOpts } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { webRTC } from '@libp2p/webrtc';
import { webSockets } from '@libp2p/websockets';
import { createLibp2p } from 'libp2p';
import { privateKeyFromSeed } from './identity.js';
import { createLibp2pTransport, type Libp2pTransportInit, type Libp2pWithPubsub } from './libp2p-transport.js';
import { createPeerBook, type KeyValueStore } from './peer-book.js';
import type { Libp2pFederationTransport } from './node-node.js';

export interface BrowserTransportInit extends Libp2pTransportInit {
  /** The homeserver's 32-byte ed25519 seed. */
  seed: Uint8Array;
  /** Relay multiaddrs ending in /p2p/<relay peer id> (from /config.json); any reachable one serves. @default [] */
  relays?: string[];
  /**
   * ICE servers for WebRTC. Empty means host candidates only: enough on one
   * machine or one LAN, and what the loopback-only tests need; libp2p's own
   * default would point at public STUN servers. Across NATs pass STUN/TURN.
   * @default []
   */
  iceServers?: RTCIceServer[];
  /**
   * Allow dialing loopback, private and plain `ws://` addresses. Browsers'
   * libp2p refuses them by default; a localhost deployment (npm start) needs
   * them. @default true when the page itself is served from a loopback host
   */
  allowLocalAddresses?: boolean;
  /**
   * Connections a tab keeps open at most: relays, Node peers and tabs
   * together, each WebRTC link counting once plus its small signalling
   * circuit. Bounds a tab's sockets and memory in a large room; gossipsub
   * needs only a handful of links per topic. @default 32
   */
  maxConnections?: number;
  /** Persistence of the peer book (the app backs it with the storage's meta store). @default in memory */
  store?: KeyValueStore;
  /** Extra gossipsub settings. @default {} */
  gossipsub?: Partial<GossipsubOpts>;
  /** Time allowed for each dial attempt. @default 10_000 */
  dialTimeoutMs?: number;
}

/** Whether this page is served from a loopback host (a localhost deployment). */
export function isLoopbackPage(): boolean {
  const host = (globalThis as { location?: { hostname?: string } }).location?.hostname ?? '';
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function createBrowserTransport(init: BrowserTransportInit): Promise<Libp2pFederationTransport> {
  const relays = init.relays ?? [];
  const allowLocal = init.allowLocalAddresses ?? isLoopbackPage();
  const node: Libp2pWithPubsub = await createLibp2p({
    privateKey: await privateKeyFromSeed(init.seed),
    addresses: { listen: ['/p2p-circuit', '/webrtc'] },
    transports: [webSockets(), webRTC({ rtcConfiguration: { iceServers: init.iceServers ?? [] } }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The browser default denies loopback/private addresses and ws://; a localhost deployment must allow them.
    ...(allowLocal ? { connectionGater: { denyDialMultiaddr: () => false } } : {}),
    connectionManager: { maxConnections: init.maxConnections ?? 32, dialTimeout: init.dialTimeoutMs ?? 10_000 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, ...init.gossipsub }),
    },
  });
  const peerBook = createPeerBook(node, { relays, store: init.store, webrtc: true, dialTimeoutMs: init.dialTimeoutMs });
  return createLibp2pTransport(node, peerBook, init);
}
