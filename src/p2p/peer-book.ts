/**
 * The peer book: what a server knows about reaching other servers, and which
 * of them are connected right now. It keeps addresses and last-seen per
 * server name in a tiny injected key-value store (the composition root backs
 * it with the storage's meta store, so a reloaded tab still knows where its
 * peers were), dials a server by name (an open connection first, preferring a
 * direct one; then known addresses; then through each configured relay, as a
 * WebRTC upgrade where the node can do WebRTC, else as a plain `/p2p-circuit`
 * hop), and keeps the relays themselves connected with exponential backoff.
 *
 * It reports peers with `peer:online`, `peer:offline` and `peer:link` events.
 * A link is direct when some connection to the peer carries no `limits`
 * (NETWORK.md: a direct WebRTC connection is recognised by its properties, not
 * by its address, because a small limited relayed connection stays open
 * beside it for signalling). Relays are infrastructure, not servers: they
 * never appear as peers.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { P2PError } from './errors.js';
import { isHometabServerName, peerIdOfServerName, serverNameOfPeerId } from './identity.js';
import { emitPeerEvent, type PeerInfo } from './transport.js';

/** The persistence the peer book needs; values are JSON text. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
}

/** A KeyValueStore in memory, for tests and for nodes that need not remember peers. */
export function memoryKeyValueStore(): KeyValueStore {
  const map = new Map<string, string>();
  return {
    async get(key) {
      return map.get(key);
    },
    async put(key, value) {
      map.set(key, value);
    },
  };
}

export interface PeerRecord {
  /** Multiaddrs this server was reached at or announced, newest first. */
  addresses: string[];
  /** ms since the epoch when a connection to it was last open. */
  lastSeen: number;
}

export interface PeerBookInit {
  /** Relay multiaddrs, each ending in `/p2p/<relay peer id>`; any reachable one serves. @default [] */
  relays?: string[];
  /** Where records are kept. @default an in-memory store */
  store?: KeyValueStore;
  /** Dial `<relay>/p2p-circuit/webrtc/p2p/<peer>` before the plain circuit (browsers). @default false */
  webrtc?: boolean;
  /** Time allowed for each dial attempt. @default 10_000 */
  dialTimeoutMs?: number;
  /** First wait before redialing a lost relay; doubles up to relayBackoffMaxMs. @default 1_000 */
  relayBackoffMs?: number;
  /** Longest wait between relay redials. @default 30_000 */
  relayBackoffMaxMs?: number;
  /** Background retries of a failed WebRTC upgrade while a relayed link lasts (backoff as for relays). @default 6 */
  maxUpgradeAttempts?: number;
  /** Addresses remembered per server. @default 8 */
  maxAddressesPerPeer?: number;
  /** Key prefix in the store. @default 'p2p/peer/' */
  keyPrefix?: string;
}

export interface PeerBook {
  readonly events: EventTarget;
  /** Starts watching connections and dialing relays. */
  start(): void;
  stop(): void;
  /** A connection to `server`, dialing it if needed (direct preferred). Throws P2PError UNREACHABLE / TIMEOUT / ABORTED. */
  dial(server: string, signal?: AbortSignal): Promise<Connection>;
  /** Connected servers and how. */
  peers(): PeerInfo[];
  /** What is stored about `server`. */
  record(server: string): Promise<PeerRecord | undefined>;
  /** Remembers addresses for `server` (from an invite, a config, a previous session). */
  learn(server: string, addresses: string[]): Promise<void>;
  /** The relays currently connected. */
  connectedRelays(): string[];
}

function peerIdOfAddress(address: string): string | undefined {
  const parts = address.split('/');
  const at = parts.lastIndexOf('p2p');
  return at >= 0 ? parts[at + 1] : undefined;
}

/** How a connection reaches its peer. */
export function linkOf(connection: Connection): PeerInfo['via'] {
  const address = connection.remoteAddr.toString();
  if (address.includes('/webrtc')) return connection.limits === undefined ? 'webrtc' : 'relay';
  if (connection.limits !== undefined || address.includes('/p2p-circuit')) return 'relay';
  return 'websocket';
}

/** The best of several connections to one peer: an unlimited one first, the newest of those (an older one may be a leftover). */
export function bestConnection(connections: Connection[]): Connection | undefined {
  const open = connections.filter((c) => c.status === 'open').sort((a, b) => b.timeline.open - a.timeline.open);
  return open.find((c) => c.limits === undefined) ?? open[0];
}

export function createPeerBook(node: Libp2p, init: PeerBookInit = {}): PeerBook {
  const relays = (init.relays ?? []).map((address) => {
    const id = peerIdOfAddress(address);
    if (id === undefined) throw new P2PError('BAD_IDENTITY', `relay address ${address} does not end in /p2p/<peer id>`);
    return { address, id };
  });
  const relayIds = new Set(relays.map((r) => r.id));
  const store = init.store ?? memoryKeyValueStore();
  const dialTimeoutMs = init.dialTimeoutMs ?? 10_000;
  const backoffStart = init.relayBackoffMs ?? 1_000;
  const backoffMax = init.relayBackoffMaxMs ?? 30_000;
  const maxAddresses = init.maxAddressesPerPeer ?? 8;
  const prefix = init.keyPrefix ?? 'p2p/peer/';
  const events = new EventTarget();
  const state = new Map<string, PeerInfo>();
  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  const upgrades = new Map<string, ReturnType<typeof setTimeout>>();
  const maxUpgradeAttempts = init.maxUpgradeAttempts ?? 6;
  const backoff = new Map<string, number>();
  let running = false;

  function serverOf(peer: PeerId): string | undefined {
    if (relayIds.has(peer.toString())) return undefined;
    try {
      return serverNameOfPeerId(peer);
    } catch {
      return undefined; // not a Hometab identity (e.g. an RSA-keyed peer): not a server
    }
  }

  function infoFor(server: string, peer: PeerId): PeerInfo | undefined {
    const best = bestConnection(node.getConnections(peer));
    if (!best) return undefined;
    return { server, direct: best.limits === undefined, via: linkOf(best) };
  }

  function refresh(peer: PeerId): void {
    const server = serverOf(peer);
    if (server === undefined) return;
    const before = state.get(server);
    const now = infoFor(server, peer);
    if (now === undefined) {
      if (before) {
        state.delete(server);
        emitPeerEvent(events, 'peer:offline', before);
      }
      return;
    }
    state.set(server, now);
    if (!before) emitPeerEvent(events, 'peer:online', now);
    else if (before.direct !== now.direct || before.via !== now.via) emitPeerEvent(events, 'peer:link', now);
  }

  async function read(server: string): Promise<PeerRecord | undefined> {
    const text = await store.get(prefix + server);
    if (text === undefined) return undefined;
    try {
      const value = JSON.parse(text) as PeerRecord;
      return { addresses: Array.isArray(value.addresses) ? value.addresses.filter((a) => typeof a === 'string') : [], lastSeen: Number(value.lastSeen) || 0 };
    } catch {
      return undefined;
    }
  }

  async function remember(server: string, addresses: string[], seen: boolean): Promise<void> {
    const previous = (await read(server)) ?? { addresses: [], lastSeen: 0 };
    const merged = [...new Set([...addresses, ...previous.addresses])].slice(0, maxAddresses);
    await store.put(prefix + server, JSON.stringify({ addresses: merged, lastSeen: seen ? Date.now() : previous.lastSeen }));
  }

  function onOpen(event: CustomEvent<Connection>): void {
    const connection = event.detail;
    refresh(connection.remotePeer);
    const server = serverOf(connection.remotePeer);
    if (server !== undefined) void remember(server, [connection.remoteAddr.toString()], true).catch(() => {});
  }

  function onClose(event: CustomEvent<Connection>): void {
    const connection = event.detail;
    refresh(connection.remotePeer);
    const relay = relays.find((r) => r.id === connection.remotePeer.toString());
    if (relay && running && node.getConnections(connection.remotePeer).length === 0) scheduleRelay(relay.address);
  }

  function onIdentify(event: CustomEvent<{ peerId: PeerId; listenAddrs: Multiaddr[] }>): void {
    const server = serverOf(event.detail.peerId);
    if (server === undefined) return;
    // Identify also runs on connections that were just upgraded: re-check the link.
    refresh(event.detail.peerId);
    const addresses = event.detail.listenAddrs.map((a) => a.toString()).filter((a) => !a.includes('/p2p-circuit'));
    if (addresses.length) void remember(server, addresses, true).catch(() => {});
  }

  function scheduleRelay(address: string): void {
    if (timers.has(address) || !running) return;
    const wait = backoff.get(address) ?? 0;
    timers.set(
      address,
      setTimeout(() => {
        timers.delete(address);
        void node
          .dial(multiaddr(address), { signal: AbortSignal.timeout(dialTimeoutMs) })
          .then(() => backoff.delete(address))
          .catch(() => {
            backoff.set(address, Math.min(backoffMax, Math.max(backoffStart, wait * 2)));
            scheduleRelay(address);
          });
      }, wait),
    );
  }

  async function tryDial(target: Multiaddr | PeerId, signal: AbortSignal): Promise<Connection | undefined> {
    try {
      return await node.dial(target, { signal: AbortSignal.any([signal, AbortSignal.timeout(dialTimeoutMs)]) });
    } catch {
      return undefined;
    }
  }

  /**
   * A WebRTC dial sometimes fails (ICE gathering races the signalling
   * timeout); a peer left on a relayed link gets more attempts in the
   * background, with backoff, for as long as that link lasts.
   */
  function scheduleUpgrade(server: string, attempt = 0): void {
    if (!init.webrtc || !running || upgrades.has(server) || attempt >= maxUpgradeAttempts) return;
    const peer = peerIdOfServerName(server);
    const wait = Math.min(backoffMax, backoffStart * 2 ** attempt);
    upgrades.set(
      server,
      setTimeout(async () => {
        upgrades.delete(server);
        const open = bestConnection(node.getConnections(peer));
        if (!open || open.limits === undefined) return; // gone, or already direct
        for (const relay of relays) {
          const direct = await tryDial(multiaddr(`${relay.address}/p2p-circuit/webrtc/p2p/${peer.toString()}`), AbortSignal.timeout(dialTimeoutMs));
          if (direct) return;
        }
        scheduleUpgrade(server, attempt + 1);
      }, wait),
    );
  }

  return {
    events,
    start() {
      if (running) return;
      running = true;
      node.addEventListener('connection:open', onOpen);
      node.addEventListener('connection:close', onClose);
      node.addEventListener('peer:identify', onIdentify as EventListener);
      for (const relay of relays) scheduleRelay(relay.address);
    },
    stop() {
      running = false;
      node.removeEventListener('connection:open', onOpen);
      node.removeEventListener('connection:close', onClose);
      node.removeEventListener('peer:identify', onIdentify as EventListener);
      for (const timer of [...timers.values(), ...upgrades.values()]) clearTimeout(timer);
      timers.clear();
      upgrades.clear();
    },
    async dial(server, signal = new AbortController().signal) {
      if (!isHometabServerName(server)) throw new P2PError('BAD_IDENTITY', `not a server name: ${server.slice(0, 80)}`);
      const peer = peerIdOfServerName(server);
      const open = bestConnection(node.getConnections(peer));
      if (open && open.limits === undefined) return open;
      // A relayed link already works: use it now, and try for a direct one in the background
      // rather than making this request wait for a WebRTC dial that may time out.
      if (open) {
        scheduleUpgrade(server);
        return open;
      }
      // 1. Addresses we know (stored, or learned by identify into the peer store).
      const record = await read(server);
      const known = (record?.addresses ?? []).filter((a) => !a.includes('/p2p-circuit'));
      if (known.length) {
        await node.peerStore.merge(peer, { multiaddrs: known.map((a) => multiaddr(a)) }).catch(() => {});
      }
      if (known.length || (await node.peerStore.has(peer))) {
        const reached = await tryDial(peer, signal);
        if (reached) {
          if (reached.limits !== undefined) scheduleUpgrade(server);
          return reached;
        }
      }
      // 2. Through each relay: a WebRTC upgrade where possible, else the relayed hop itself.
      for (const relay of relays) {
        if (signal.aborted) break;
        if (init.webrtc) {
          const upgraded = await tryDial(multiaddr(`${relay.address}/p2p-circuit/webrtc/p2p/${peer.toString()}`), signal);
          if (upgraded) return upgraded;
          // A failed WebRTC dial may still have left its signalling hop open: use that.
          const hop = bestConnection(node.getConnections(peer));
          if (hop) {
            scheduleUpgrade(server);
            return hop;
          }
        }
        const relayed = await tryDial(multiaddr(`${relay.address}/p2p-circuit/p2p/${peer.toString()}`), signal);
        if (relayed) {
          scheduleUpgrade(server);
          return relayed;
        }
      }
      if (signal.aborted) throw new P2PError('ABORTED', `dialing ${server}: aborted`);
      throw new P2PError('UNREACHABLE', `no address or relay reached ${server}`);
    },
    peers() {
      return [...state.values()];
    },
    record: read,
    learn(server, addresses) {
      return remember(server, addresses, false);
    },
    connectedRelays() {
      return relays.filter((r) => node.getConnections().some((c) => c.remotePeer.toString() === r.id && c.status === 'open')).map((r) => r.address);
    },
  };
}
