/**
 * The browser composition root of one Hometab peer, with no UI: it takes the
 * profile's Web Lock (one profile = one running server), opens the profile's
 * IndexedDB storage (exclusive, which the lock makes true), creates or loads
 * the ed25519 identity kept in that storage (so the server name, the hex of
 * the public key, and the libp2p PeerId survive a reload), builds the
 * homeserver, the browser libp2p transport (when relays are given) and the
 * BroadcastChannel transport combined into one, and starts the replicator.
 * With `deferNetwork` the peer is returned as soon as storage, homeserver and
 * BroadcastChannel exist; the replicator (its first storage scans) and libp2p
 * (its own lazily imported chunk, the largest of the app, which joins the
 * combined transport) start when `startNetwork()` is called, which the app
 * does once the room list is on screen (local first: what is in IndexedDB
 * never waits for the network).
 * It returns the handles. The Chromium tests and benchmarks boot their pages
 * through it, and the app issue's UI is meant to reuse it as is (it talks to
 * `homeserver.handleClient` through matrix-js-sdk's fetchFn).
 */
import { createSigner, decodeBase64, ed25519PublicKey, encodeBase64, type Signer } from '../core/index.js';
import { createHomeserver, NO_RATE_LIMITS, type Homeserver, type HomeserverSettings } from '../homeserver/index.js';
import { createBroadcastTransport } from '../p2p/broadcast-transport.js';
import { combineTransports } from '../p2p/combine.js';
import type { Libp2pFederationTransport } from '../p2p/node-node.js';
import type { KeyValueStore } from '../p2p/peer-book.js';
import { createReplicator, type Replicator, type ReplicatorOptions } from '../p2p/replicator.js';
import type { FederationTransport } from '../p2p/transport.js';
import { openIdbStorage } from '../storage/idb/index.js';
import { profileDatabase } from './profile-names.js';
import type { Storage } from '../storage/types.js';

/** Meta-store key of the profile's 32-byte signing seed (unpadded base64). */
export const IDENTITY_KEY = 'identity/ed25519-seed';
const KEY_ID = 'ed25519:1';

export interface BootPeerOptions {
  /** Profile name (`?profile=NAME`): selects the database, the identity and the lock. @default 'default' */
  profile?: string;
  /** Relay multiaddrs (from /config.json). With none, no libp2p node is started. @default [] */
  relays?: string[];
  /** BroadcastChannel name for same-browser tabs, or false for none. @default 'hometab-federation/1' */
  broadcastChannel?: string | false;
  /** Presence heartbeat of the BroadcastChannel transport. @default the transport's */
  broadcastHeartbeatMs?: number;
  /** ICE servers for WebRTC. @default [] (host candidates only) */
  iceServers?: RTCIceServer[];
  /** Allow loopback/private/ws:// addresses. @default true when the page is served from a loopback host */
  allowLocalAddresses?: boolean;
  /** Timeout of one federation request over libp2p. @default the protocol's */
  requestTimeoutMs?: number;
  /**
   * Homeserver settings (rate limits, registration…). The in-tab server's only client is the tab's own user,
   * so its client rate limits are off unless given here: throttling the owner protects nobody, and peers guard
   * themselves with their own per-peer federation limits.
   * @default { rateLimits: NO_RATE_LIMITS }
   */
  homeserver?: HomeserverSettings;
  /** Replicator settings (fan-out, outbox, catch-up). */
  replicator?: ReplicatorOptions;
  /** Take the profile's Web Lock; fails when another tab runs the profile. @default true */
  lock?: boolean;
  /**
   * Return before the replicator and the libp2p node run; `startNetwork()` starts them later (needs the
   * BroadcastChannel, so that the combined transport exists from the start). @default false
   */
  deferNetwork?: boolean;
  /** Called with a performance mark name as each boot step ends (the app's cold-start breakdown). */
  mark?: (name: string) => void;
  /** @default console */
  log?: { debug(message: string, detail?: unknown): void; warn(message: string, detail?: unknown): void; error(message: string, detail?: unknown): void };
}

export interface BootedPeer {
  readonly profile: string;
  readonly serverName: string;
  readonly storage: Storage;
  readonly homeserver: Homeserver;
  /** libp2p and BroadcastChannel combined: what the replicator uses. */
  readonly transport: FederationTransport;
  /** The libp2p transport once it runs (at once, or after `startNetwork()` with `deferNetwork`). */
  readonly libp2p?: Libp2pFederationTransport;
  readonly broadcast?: FederationTransport;
  /**
   * Starts the replicator, then libp2p, adding it to `transport` (once; later calls return the same promise).
   * Resolves to the libp2p transport, or undefined when no relays are configured. Without `deferNetwork` it
   * has already run.
   */
  startNetwork(): Promise<Libp2pFederationTransport | undefined>;
  readonly replicator: Replicator;
  /** Stops the replicator, the transports and the homeserver, closes the storage and releases the lock. */
  close(): Promise<void>;
}

export { profileDatabase };

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** The profile's seed, created (and stored in the same transaction as the check) on first boot. */
export async function loadOrCreateSeed(storage: Storage): Promise<Uint8Array> {
  const fresh = encodeBase64(crypto.getRandomValues(new Uint8Array(32)));
  const stored = await storage.write(async (txn) => {
    const existing = await txn.meta.get<string>(IDENTITY_KEY);
    if (typeof existing === 'string') return existing;
    await txn.meta.put(IDENTITY_KEY, fresh);
    return fresh;
  });
  const seed = decodeBase64(stored);
  if (seed.length !== 32) throw new Error(`profile identity is ${seed.length} bytes, not 32`);
  return seed;
}

/** A signer named by its public key, as Hometab servers are (DESIGN.md, "Identity and names"). */
export async function signerForSeed(seed: Uint8Array): Promise<Signer> {
  return createSigner(seed, hex(await ed25519PublicKey(seed)), KEY_ID);
}

/** The peer book's persistence on the storage's meta store. */
function metaStore(storage: Storage): KeyValueStore {
  return {
    get: (key) => storage.read((txn) => txn.meta.get<string>(key)),
    put: (key, value) => storage.write((txn) => txn.meta.put(key, value)),
  };
}

interface LockManagerLike {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | void): Promise<unknown>;
}

/** Holds the profile's Web Lock until the returned function is called; rejects if another tab holds it. */
async function holdProfileLock(profile: string): Promise<() => void> {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  if (!locks) return () => {};
  return new Promise((resolve, reject) => {
    locks
      .request(`hometab-profile:${profile}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(new Error(`profile ${profile} is already running in another tab`));
          return;
        }
        return new Promise<void>((release) => resolve(release));
      })
      .catch(reject);
  });
}

export async function bootPeer(options: BootPeerOptions = {}): Promise<BootedPeer> {
  const profile = options.profile ?? 'default';
  const log = options.log ?? console;
  const release = options.lock === false ? () => {} : await holdProfileLock(profile);
  const cleanups: Array<() => Promise<void> | void> = [release];
  const unwind = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  try {
    const storage = await openIdbStorage(profileDatabase(profile), { exclusive: true });
    cleanups.push(() => storage.close());
    options.mark?.('hometab:storage-open');
    const seed = await loadOrCreateSeed(storage);
    const signer = await signerForSeed(seed);
    options.mark?.('hometab:identity-loaded');
    const homeserver = createHomeserver({ storage, signer, config: { rateLimits: NO_RATE_LIMITS, ...options.homeserver }, log });
    cleanups.push(() => homeserver.close());

    options.mark?.('hometab:homeserver-ready');

    const relays = options.relays ?? [];
    let libp2p: Libp2pFederationTransport | undefined;
    const createLibp2p = async (): Promise<Libp2pFederationTransport> => {
      const { createBrowserTransport } = await import('../p2p/node-browser.js');
      return createBrowserTransport({
        seed,
        relays,
        iceServers: options.iceServers ?? [],
        allowLocalAddresses: options.allowLocalAddresses,
        store: metaStore(storage),
        log,
        ...(options.requestTimeoutMs ? { protocol: { requestTimeoutMs: options.requestTimeoutMs } } : {}),
      });
    };
    let broadcast: FederationTransport | undefined;
    if (options.broadcastChannel !== false) {
      broadcast = await createBroadcastTransport({
        seed,
        channelName: options.broadcastChannel ?? 'hometab-federation/1',
        ...(options.broadcastHeartbeatMs ? { heartbeatMs: options.broadcastHeartbeatMs } : {}),
        ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      });
    }
    options.mark?.('hometab:broadcast-ready');
    const defer = options.deferNetwork === true && broadcast !== undefined;
    if (relays.length > 0 && !defer) {
      libp2p = await createLibp2p();
    }
    const initial = [libp2p, broadcast].filter((t): t is FederationTransport => t !== undefined);
    if (initial.length === 0) throw new Error('bootPeer needs relays or a BroadcastChannel');
    // A deferred libp2p joins a combined transport later; otherwise one transport is used as it is.
    const combined = defer || initial.length > 1 ? combineTransports(initial) : undefined;
    const transport: FederationTransport = combined ?? initial[0]!;
    cleanups.push(() => transport.close());
    if (transport.localServer !== signer.serverName) throw new Error('the transport identity differs from the signing key');

    const replicator = createReplicator({ storage, transport, homeserver, log, ...options.replicator });
    cleanups.push(() => replicator.stop());
    if (!defer) await replicator.start();

    let closing: Promise<void> | undefined;
    let starting: Promise<Libp2pFederationTransport | undefined> | undefined = defer ? undefined : Promise.resolve(libp2p);
    const startNetwork = () =>
      (starting ??= (async () => {
        if (closing) return undefined;
        await replicator.start();
        options.mark?.('hometab:replicator-started');
        if (relays.length === 0) return undefined;
        const created = await createLibp2p();
        if (closing) {
          await created.close();
          return undefined;
        }
        libp2p = created;
        combined!.add(created);
        options.mark?.('hometab:libp2p-started');
        return created;
      })());
    return {
      profile,
      serverName: signer.serverName,
      storage,
      homeserver,
      transport,
      get libp2p() {
        return libp2p;
      },
      broadcast,
      startNetwork,
      replicator,
      close: () => (closing ??= unwind()),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
