/**
 * The p2p layer's public entry: the FederationTransport contract and its
 * implementations (libp2p in Node and in browsers, BroadcastChannel, the
 * in-memory simulation network, and the combinator), the relay, the peer
 * book's storage interface and the identity helpers. Composition roots
 * (src/app, src/node) import from here. The browser factory lives in its own
 * module (node-browser.ts) and the Node one in node-node.ts, so each bundle
 * pulls only its own transports: import those two directly.
 */
export type { FederationRequest, FederationResponse, FederationHandler, PeerInfo, FederationTransport, RequestOptions, PeerEventName } from './transport.js';
export { matrixError } from './transport.js';
export { P2PError, isRetryable, type P2PErrorCode } from './errors.js';
export { serverNameOfPeerId, peerIdOfServerName, privateKeyFromSeed, isHometabServerName } from './identity.js';
export { FEDERATION_PROTOCOL, type FederationProtocolOptions } from './federation-protocol.js';
export type { RateLimitOptions } from './rate-limit.js';
export { memoryKeyValueStore, type KeyValueStore, type PeerRecord, type PeerBook, type PeerBookInit } from './peer-book.js';
export { createBroadcastTransport, type BroadcastTransportInit, type BroadcastChannelLike } from './broadcast-transport.js';
export { combineTransports, type CombinedTransport, type CombineOptions } from './combine.js';
export { MemoryNetwork, mulberry32, type MemoryNetworkInit, type LinkOptions, type MemoryNetworkStats } from './memory-transport.js';
export { parseGuardedJson, jsonDepth, type JsonGuardOptions } from './json-guard.js';
export { createReplicator, toFetchRequest, fromFetchResponse, type Replicator, type ReplicatorInit, type ReplicatorOptions } from './replicator.js';
export type { OutboxOptions, OutboxQueueState } from './outbox.js';
export { EXTREMITIES_PATH, type CatchUpOptions, type CatchUpProgress } from './catch-up.js';
export { systemClock, roomTopic, type ReplicatedHomeserver, type ReplicationPort, type ReceiveResult, type ReceiveOutcome, type RoomSummary, type FederationClient, type ReplicatorClock, type ReplicatorLog } from './replication-port.js';
