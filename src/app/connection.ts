/**
 * The connection object the UI receives (ConnectionSource in src/ui/state/host.ts), built from one running
 * peer's transport, replicator and storage: peers online and how each is linked, the relay reservation,
 * the outbound queue per destination, catch-up progress, and for each of this server's own events the
 * destinations still waiting for it. The last is read from the storage outbox itself (the replicator's
 * outbox sender acknowledges a record only once the destination answered), so it survives a reload and
 * needs nothing new from the sender: records name PDUs without their event ID (it is not on the wire), so
 * the ID is computed once per record from the PDU and its room version and remembered by record seq.
 */
import { eventIdOf } from '../core/index.js';
import type { CatchUpProgress } from '../p2p/catch-up.js';
import type { OutboxQueueState } from '../p2p/outbox.js';
import type { Replicator } from '../p2p/replicator.js';
import type { FederationTransport, PeerInfo } from '../p2p/transport.js';
import type { OutboundRecord, Storage } from '../storage/types.js';
import type { CatchUpDetails, ConnectionDetails, ConnectionSource, PeerDetails } from '../ui/state/host.js';

/** Records read per destination when looking for pending events; a longer queue is reported as capped. */
const PEEK_LIMIT = 2_000;
/** Catch-up entries kept for the panel (newest first). */
const CATCH_UP_KEPT = 20;
/** Several commits and queue reports in a burst cost one outbox scan. */
const SCAN_DELAY_MS = 30;

export interface ConnectionParts {
  storage: Storage;
  transport: FederationTransport;
  replicator: Replicator;
  /** The libp2p node, when relays are configured. */
  libp2p?: { node: { getMultiaddrs(): Array<{ toString(): string }>; addEventListener(name: string, listener: () => void): void; removeEventListener(name: string, listener: () => void): void } };
}

export interface LiveConnectionSource extends ConnectionSource {
  details(): ConnectionDetails;
  pendingDestinations(eventId: string): readonly string[];
  /** The libp2p node started after this source was made (the app starts it once the room list is up). */
  attachLibp2p(libp2p: NonNullable<ConnectionParts['libp2p']>): void;
  /** Resolves once the outbox scan that was due has run, started at once (tests). */
  settled(): Promise<void>;
  close(): void;
}

function linkOf(infos: PeerInfo[]): PeerDetails['link'] {
  if (infos.length === 0) return 'none';
  if (infos.some((i) => i.direct && i.via !== 'broadcast-channel')) return 'direct';
  if (infos.some((i) => i.via === 'broadcast-channel')) return 'same-browser';
  return infos.some((i) => i.direct) ? 'direct' : 'relayed';
}

export function createConnectionSource(parts: ConnectionParts): LiveConnectionSource {
  const { storage, transport, replicator } = parts;
  let libp2p = parts.libp2p;
  const events = new EventTarget();
  const queues = new Map<string, OutboxQueueState>();
  const catchUp = new Map<string, CatchUpDetails>();
  /** Event ID by outbound record seq (seqs are unique across destinations and never reused). */
  const eventIdBySeq = new Map<number, string | null>();
  const roomVersions = new Map<string, string>();
  let pending = new Map<string, string[]>();
  let scanTimer: ReturnType<typeof setTimeout> | undefined;
  let scanning: Promise<void> = Promise.resolve();
  let closed = false;

  const changed = () => events.dispatchEvent(new Event('change'));

  async function eventIdOfRecord(record: OutboundRecord): Promise<string | null> {
    const known = eventIdBySeq.get(record.seq);
    if (known !== undefined) return known;
    const payload = record.payload as { pdu?: unknown } | null;
    const pdu = payload && typeof payload === 'object' ? payload.pdu : undefined;
    let id: string | null = null;
    if (pdu && typeof pdu === 'object' && typeof (pdu as { room_id?: unknown }).room_id === 'string') {
      const roomId = (pdu as { room_id: string }).room_id;
      let version = roomVersions.get(roomId);
      if (version === undefined) {
        version = (await storage.read((txn) => txn.rooms.get(roomId)))?.roomVersion;
        if (version !== undefined) roomVersions.set(roomId, version);
      }
      if (version !== undefined) {
        try {
          id = eventIdOf(pdu, version);
        } catch {
          id = null;
        }
      }
    }
    eventIdBySeq.set(record.seq, id);
    return id;
  }

  async function scan(): Promise<void> {
    const next = new Map<string, string[]>();
    const seen = new Set<number>();
    const destinations = await storage.read((txn) => txn.outbound.destinations());
    for (const destination of destinations) {
      if (destination === transport.localServer) continue;
      const records = await storage.read((txn) => txn.outbound.peek(destination, PEEK_LIMIT));
      for (const record of records) {
        seen.add(record.seq);
        const id = await eventIdOfRecord(record);
        if (id === null) continue;
        const list = next.get(id);
        if (list) list.push(destination);
        else next.set(id, [destination]);
      }
    }
    for (const seq of eventIdBySeq.keys()) if (!seen.has(seq)) eventIdBySeq.delete(seq);
    const before = pending;
    pending = next;
    if (closed) return;
    if (before.size !== next.size || [...next].some(([id, list]) => before.get(id)?.join('\n') !== list.join('\n'))) {
      events.dispatchEvent(new Event('delivery'));
    }
  }

  function runScan(): Promise<void> {
    scanTimer = undefined;
    scanning = scanning.then(scan).catch(() => {
      // Storage closes under a scan when the tab is taken over; the next tab scans for itself.
    });
    return scanning;
  }

  function scheduleScan(): void {
    if (closed || scanTimer !== undefined) return;
    scanTimer = setTimeout(runScan, SCAN_DELAY_MS);
  }

  const onPeer = () => {
    changed();
    scheduleScan();
  };
  const onQueue = (event: Event) => {
    const detail = (event as CustomEvent<OutboxQueueState>).detail;
    queues.set(detail.destination, detail);
    changed();
    scheduleScan();
  };
  const onCatchUp = (event: Event) => {
    const detail = (event as CustomEvent<CatchUpProgress>).detail;
    const key = `${detail.roomId}\n${detail.peer}`;
    catchUp.delete(key);
    catchUp.set(key, { roomId: detail.roomId, peer: detail.peer, fetched: detail.fetched, state: detail.state });
    while (catchUp.size > CATCH_UP_KEPT) catchUp.delete(catchUp.keys().next().value!);
    changed();
  };
  for (const name of ['peer:online', 'peer:offline', 'peer:link']) transport.events.addEventListener(name, onPeer);
  replicator.events.addEventListener('outbox:queue', onQueue);
  replicator.events.addEventListener('catchup:progress', onCatchUp);
  libp2p?.node.addEventListener('self:peer:update', changed);
  const unsubscribe = storage.subscribe((commit) => {
    if (commit.changes.some((c) => c.kind === 'outbound')) scheduleScan();
  });
  for (const state of replicator.outboxState()) queues.set(state.destination, state);
  scheduleScan();

  return {
    events,
    peerCount: () => new Set(transport.peers().map((p) => p.server)).size,
    networkStarted: () => libp2p !== undefined,
    details(): ConnectionDetails {
      const links = new Map<string, PeerInfo[]>();
      for (const info of transport.peers()) {
        const list = links.get(info.server);
        if (list) list.push(info);
        else links.set(info.server, [info]);
      }
      const servers = new Set([...links.keys(), ...[...queues.values()].filter((q) => q.queued > 0 || q.inFlight || q.failures > 0).map((q) => q.destination)]);
      servers.delete(transport.localServer);
      const peers = [...servers].sort().map((server): PeerDetails => {
        const queue = queues.get(server);
        const infos = links.get(server) ?? [];
        return { server, online: infos.length > 0, link: linkOf(infos), queued: queue?.queued ?? 0, more: queue?.more ?? false, sending: queue?.inFlight ?? false, failures: queue?.failures ?? 0 };
      });
      const relay: ConnectionDetails['relay'] = !libp2p ? 'none' : libp2p.node.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit')) ? 'connected' : 'connecting';
      return { relay, peers, catchUp: [...catchUp.values()].reverse() };
    },
    pendingDestinations: (eventId) => pending.get(eventId) ?? [],
    attachLibp2p(node) {
      if (closed || libp2p) return;
      libp2p = node;
      libp2p.node.addEventListener('self:peer:update', changed);
      changed();
    },
    async settled() {
      // Runs the due scan now rather than waiting for the timer to go quiet: an outbox retrying an unreachable
      // peer reports its queue again and again, so a wait for quiet may never end.
      if (scanTimer === undefined) return scanning;
      clearTimeout(scanTimer);
      return runScan();
    },
    close() {
      closed = true;
      if (scanTimer !== undefined) clearTimeout(scanTimer);
      for (const name of ['peer:online', 'peer:offline', 'peer:link']) transport.events.removeEventListener(name, onPeer);
      replicator.events.removeEventListener('outbox:queue', onQueue);
      replicator.events.removeEventListener('catchup:progress', onCatchUp);
      libp2p?.node.removeEventListener('self:peer:update', changed);
      unsubscribe();
    },
  };
}
