/**
 * The Node homeserver as an always-on peer (`npm run homeserver -- --p2p`):
 * resolves the relays (multiaddrs, or the http URL of a /config.json as
 * served by `npm start`), opens the Node libp2p transport with the
 * homeserver's own key (so its PeerId is its server name) and a peer book kept
 * in the storage meta store, and runs the replicator between the transport
 * and the homeserver's federation half.
 *
 * This module is a composition root's helper: it is the only place that
 * knows both the concrete transport and the homeserver. A homeserver built
 * without the federation half (no `handleFederation`/`replication`) still
 * joins the network and answers requests with 503, so a mixed deployment
 * fails loudly rather than silently.
 */
import { createNodeTransport, type Libp2pFederationTransport } from '../p2p/node-node.js';
import type { KeyValueStore } from '../p2p/peer-book.js';
import type { ReplicatedHomeserver } from '../p2p/replication-port.js';
import { createReplicator, type Replicator, type ReplicatorOptions } from '../p2p/replicator.js';
import type { Storage } from '../storage/types.js';

/** Where a page of `npm start` finds its relays; also the CLI's default. */
export const DEFAULT_RELAY_CONFIG = 'http://127.0.0.1:8080/config.json';

/** Relay multiaddrs from CLI values: multiaddrs are kept, http(s) URLs are fetched as /config.json ({"relays": [...]}). */
export async function resolveRelays(values: readonly string[], fetchFn: typeof fetch = fetch): Promise<string[]> {
  const out: string[] = [];
  for (const value of values.length > 0 ? values : [DEFAULT_RELAY_CONFIG]) {
    if (/^https?:\/\//.test(value)) {
      const response = await fetchFn(value, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`${value} answered ${response.status}`);
      const body = (await response.json()) as { relays?: unknown };
      if (!Array.isArray(body.relays) || !body.relays.every((r) => typeof r === 'string')) throw new Error(`${value} has no "relays" list`);
      out.push(...(body.relays as string[]));
    } else if (value.startsWith('/') && value.includes('/p2p/')) {
      out.push(value);
    } else {
      throw new Error(`--relay ${value}: expected a multiaddr ending in /p2p/<peer id> or the http URL of a config.json`);
    }
  }
  return [...new Set(out)];
}

/** The peer book's store on the storage meta store: addresses and last-seen survive a restart. */
export function metaKeyValueStore(storage: Storage): KeyValueStore {
  return {
    get: (key) => storage.read((txn) => txn.meta.get<string>(key)),
    put: (key, value) => storage.write((txn) => txn.meta.put(key, value)),
  };
}

/** Whether the homeserver carries the federation half the replicator needs. */
export function hasFederation(homeserver: object): homeserver is ReplicatedHomeserver {
  const h = homeserver as Partial<ReplicatedHomeserver>;
  return typeof h.handleFederation === 'function' && typeof h.replication === 'object' && h.replication !== null && typeof h.replication.receivePdus === 'function';
}

export interface P2pPeerInit {
  storage: Storage;
  /** The homeserver's 32-byte ed25519 seed (its libp2p key). */
  seed: Uint8Array;
  homeserver: object;
  relays: string[];
  /** Listen addresses of the WebSockets listener. @default ['/ip4/127.0.0.1/tcp/0/ws'] */
  listen?: string[];
  replicator?: ReplicatorOptions;
  log: { warn(message: string, detail?: unknown): void; debug(message: string, detail?: unknown): void };
}

export interface P2pPeer {
  transport: Libp2pFederationTransport;
  replicator?: Replicator;
  /** Resolves true once a relay holds a reservation for us (we are reachable through it), false after `timeoutMs`. */
  reachable(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export async function startP2pPeer(init: P2pPeerInit): Promise<P2pPeer> {
  const transport = await createNodeTransport({ seed: init.seed, relays: init.relays, store: metaKeyValueStore(init.storage), log: init.log, ...(init.listen ? { listen: init.listen } : {}) });
  let replicator: Replicator | undefined;
  if (hasFederation(init.homeserver)) {
    replicator = createReplicator({ storage: init.storage, transport, homeserver: init.homeserver, log: init.log, ...init.replicator });
    await replicator.start();
  } else {
    init.log.warn('this homeserver has no federation API yet: joined the network, but rooms will not replicate');
  }
  return {
    transport,
    replicator,
    async reachable(timeoutMs = 15_000) {
      if (init.relays.length === 0) return true;
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if (transport.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit'))) return true;
        await new Promise((r) => setTimeout(r, 50));
      }
      return false;
    },
    async close() {
      replicator?.stop();
      await transport.close();
    },
  };
}
