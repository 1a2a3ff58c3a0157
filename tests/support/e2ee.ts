/**
 * End-to-end encryption across servers, as tests and benchmarks drive it:
 * real homeservers on memory storage, each with a replicator (the real outbox
 * sender, catch-up) on one MemoryNetwork, and matrix-js-sdk 43 clients with
 * the Rust crypto (matrix-sdk-crypto-wasm) talking to them in process. Also:
 * waiting for a message to decrypt, and scanning everything a server stores
 * for plaintext.
 */
import { ClientEvent, createClient, EventType, PendingEventOrdering, type MatrixClient, type MatrixEvent } from 'matrix-js-sdk';
import { logger, type Logger as SdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { MemoryNetwork } from '../../src/p2p/memory-transport.js';
import { createReplicator, type Replicator } from '../../src/p2p/replicator.js';
import type { FederationTransport } from '../../src/p2p/transport.js';
import type { Logger } from '../../src/homeserver/context.js';
import type { HomeserverSettings } from '../../src/homeserver/index.js';
import { createNodeTransport } from '../../src/p2p/node-node.js';
import { createRelay, type RelayInit } from '../../src/p2p/relay.js';
import type { Storage } from '../../src/storage/types.js';
import { startTestServer, type TestServer } from '../homeserver/harness.js';
import { hexSigner } from './federation.js';

export const PASSWORD = 'correct horse battery staple';

/** Errors only: the SDK logs every sync and crypto step at debug level. */
const quietSdkLogger: SdkLogger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error: (...msg: unknown[]) => console.error(...msg),
  getChild: () => quietSdkLogger,
};
(logger as unknown as { setLevel(level: string): void }).setLevel('error');

/** What a server logged at warn level or above (the hostile-EDU tests read it). */
export interface LogBook extends Logger {
  readonly warnings: string[];
}

export function logBook(): LogBook {
  const warnings: string[] = [];
  return { warnings, debug() {}, warn: (message) => void warnings.push(message), error: (message) => void warnings.push(message) };
}

export interface E2eePeer {
  name: string;
  server: TestServer;
  log: LogBook;
  transport: FederationTransport;
  replicator: Replicator;
}

export interface E2eeNetwork {
  network: MemoryNetwork;
  peers: E2eePeer[];
  /** Stops a peer's replicator and takes it off the network (its storage stays); `online` brings it back, a new replicator on the same storage, as after a reload. */
  offline(peer: E2eePeer): Promise<void>;
  online(peer: E2eePeer): Promise<void>;
  close(): Promise<void>;
}

/**
 * `count` servers on one network: the memory network (deliveries in queue order, no real delay), or real
 * libp2p (Node transports, WebSockets on loopback through a circuit relay started here).
 */
export async function startE2eeNetwork(
  count: number,
  options: { firstSeed?: number; storage?: (index: number) => Storage; transport?: 'memory' | 'libp2p'; config?: HomeserverSettings; relay?: RelayInit } = {},
): Promise<E2eeNetwork> {
  // Ordinary timers for the replicators (the clients run in real time too); the network's queue only orders deliveries.
  const network = new MemoryNetwork({ seed: 9, minDelayMs: 0, maxDelayMs: 1, requestTimeoutMs: 60_000, holdTimeForHandlersMs: 5_000 });
  const relay = options.transport === 'libp2p' ? await createRelay(options.relay) : undefined;
  const seeds = new Map<string, Uint8Array>();
  const peers: E2eePeer[] = [];
  const startReplicator = async (peer: Omit<E2eePeer, 'transport' | 'replicator'>) => {
    let transport: FederationTransport;
    if (relay) {
      const libp2p = await createNodeTransport({ seed: seeds.get(peer.name)!, relays: relay.addresses() });
      await waitFor('a relay reservation', () => (libp2p.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')) ? true : undefined));
      transport = libp2p;
    } else {
      transport = network.transport(peer.name);
    }
    const replicator = createReplicator({
      storage: peer.server.storage,
      transport,
      homeserver: peer.server.homeserver,
      outbox: { backoffBaseMs: 50, backoffMaxMs: 500 },
      catchUp: { antiEntropyIntervalMs: 0 },
    });
    await replicator.start();
    return { transport, replicator };
  };
  for (let i = 0; i < count; i++) {
    const log = logBook();
    const seedByte = (options.firstSeed ?? 91) + i;
    const signer = await hexSigner(seedByte);
    seeds.set(signer.serverName, new Uint8Array(32).fill(seedByte));
    const server = await startTestServer({ signer, log, ...(options.storage ? { storage: options.storage(i) } : {}), ...(options.config ? { config: options.config } : {}) });
    const base = { name: server.serverName, server, log };
    peers.push({ ...base, ...(await startReplicator(base)) });
  }
  return {
    network,
    peers,
    async offline(peer) {
      peer.replicator.stop();
      await peer.transport.close();
    },
    async online(peer) {
      Object.assign(peer, await startReplicator(peer));
    },
    async close() {
      for (const peer of peers) {
        peer.replicator.stop();
        await peer.transport.close().catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 50));
      for (const peer of peers) await peer.server.close();
      await relay?.stop();
    },
  };
}

/** fetch() into an in-process server that, like real fetch, rejects as soon as the caller aborts (stopClient aborts /sync). */
export function inProcessFetch(server: TestServer): typeof fetch {
  return ((input: RequestInfo | URL, init?: RequestInit) => {
    const signal = init?.signal;
    const response = server.homeserver.handleClient(new Request(input, init));
    if (!signal) return response;
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => reject(signal.reason ?? new DOMException('The operation was aborted', 'AbortError'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      response.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }) as typeof fetch;
}

/** Resolves when `check` returns something other than undefined, polling every 25 ms. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A registered user's matrix-js-sdk client with Rust crypto, synced once; `wrapFetch` may stand between it and
 * the server; `detachedPending` keeps unsent events out of the timeline, as the app does.
 */
export async function startCryptoClient(server: TestServer, localpart: string, options: { wrapFetch?: (fetchFn: typeof fetch) => typeof fetch; detachedPending?: boolean; timelineSupport?: boolean } = {}): Promise<MatrixClient> {
  const { userId, accessToken, deviceId } = await server.register(localpart, PASSWORD);
  const fetchFn = options.wrapFetch ? options.wrapFetch(inProcessFetch(server)) : inProcessFetch(server);
  const client = createClient({ baseUrl: server.baseUrl, userId, accessToken, deviceId, fetchFn, logger: quietSdkLogger, timelineSupport: options.timelineSupport });
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise<void>((resolve, reject) => {
    const onSync = (state: string, _prev: unknown, data?: { error?: Error }) => {
      if (state === 'PREPARED' || state === 'SYNCING') {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      }
      if (state === 'ERROR') reject(data?.error ?? new Error('sync error'));
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20, ...(options.detachedPending ? { pendingEventOrdering: PendingEventOrdering.Detached } : {}) });
  await prepared;
  return client;
}

/** The message with `body` in the room once `client` has decrypted it (failures are retried: a key may be in flight). */
export async function decryptedBody(client: MatrixClient, roomId: string, body: string, timeoutMs = 30_000): Promise<MatrixEvent> {
  return waitFor(
    `${client.getUserId()} to decrypt "${body}"`,
    async () => {
      const room = client.getRoom(roomId);
      for (const event of room?.getLiveTimeline().getEvents() ?? []) {
        if (event.getWireType() !== EventType.RoomMessageEncrypted) continue;
        if (event.isBeingDecrypted()) continue;
        if (event.isDecryptionFailure()) {
          await client.decryptEventIfNeeded(event, { isRetry: true });
          continue;
        }
        if (event.getContent().body === body) return event;
      }
      return undefined;
    },
    timeoutMs,
  );
}

/** Waits until `client` sees `userId` joined in the room. */
export function memberJoined(client: MatrixClient, roomId: string, userId: string, timeoutMs = 30_000): Promise<true> {
  return waitFor(`${client.getUserId()} to see ${userId} join`, () => (client.getRoom(roomId)?.getMember(userId)?.membership === 'join' ? true : undefined), timeoutMs);
}

/**
 * Everything a server stores that could hold a message: every event of every
 * room (the whole stream, and each record again by ID), the replication
 * outbox and every device's to-device inbox, as one JSON text to scan for
 * plaintext; with how many events of the room there are and how many are
 * m.room.encrypted.
 */
export async function storedText(storage: Storage, roomId: string): Promise<{ text: string; roomEvents: number; encrypted: number }> {
  return storage.read(async (t) => {
    const records = await t.timeline.rangeAll({ dir: 'f', from: 0, limit: 1_000_000 });
    const byId = await t.events.getMany(records.map((r) => r.eventId));
    const parts = [JSON.stringify(records), JSON.stringify([...byId.values()])];
    for (const destination of await t.outbound.destinations()) parts.push(JSON.stringify(await t.outbound.peek(destination, 100_000)));
    for (const user of await t.users.list({ limit: 10_000 })) {
      for (const device of await t.devices.forUser(user.userId)) parts.push(JSON.stringify(await t.toDevice.list(user.userId, device.deviceId, { from: 0 })));
    }
    const inRoom = records.filter((r) => r.roomId === roomId);
    return { text: parts.join('\n'), roomEvents: inRoom.length, encrypted: inRoom.filter((r) => r.event.type === 'm.room.encrypted').length };
  });
}
