/**
 * The replicator joins a homeserver to a FederationTransport. It owns the
 * wiring, not the rules: inbound requests become real `Request`s for the
 * homeserver's `handleFederation` (bodies stay JSON, the origin is the
 * authenticated link), the transport becomes the homeserver's federation
 * client, and three loops run beside it:
 *
 * - the outbox sender (outbox.ts): pushes what the homeserver queued in
 *   storage, per destination, with retry and backoff;
 * - fan-out: a room with at most `directFanoutMax` servers gets each new PDU
 *   directly from the outbox; a larger room is in gossip mode: each new local
 *   non-state PDU is published once on the room's gossipsub topic and its
 *   outbox records are acknowledged (the PDU is signed, so any peer may relay
 *   it; gossip may lose a message, and anti-entropy pulls it later), while
 *   state events still go directly (outbox.ts says why). The replicator
 *   subscribes to the topic of every room it is in, small ones included, so a
 *   server whose view of the room's size lags still hears the gossip.
 *   Inbound gossip goes to `receivePdus` with the relaying peer as origin;
 *   EDUs never travel by gossip;
 * - catch-up (catch-up.ts): parked events and anti-entropy with peers that
 *   come online.
 *
 * Fork and merge are the homeserver's business (the next local event names
 * every forward extremity): here, a room is only a set of events to bring
 * everywhere.
 *
 * Events on `events`: `outbox:queue` (OutboxQueueState) and
 * `catchup:progress` (CatchUpProgress: events fetched, stored and estimated
 * per room and peer), for the app's connection panel; `catchUpProgress()`
 * lists the catch-ups running now.
 */
import { createCatchUp, EXTREMITIES_PATH, type CatchUp, type CatchUpOptions, type CatchUpProgress } from './catch-up.js';
import { createOutboxSender, type OutboxOptions, type OutboxQueueState, type OutboxSender } from './outbox.js';
import { roomTopic, silentLog, systemClock, type ReplicatedHomeserver, type ReplicatorClock, type ReplicatorLog, type RoomSummary } from './replication-port.js';
import { localJsonResponse, type FederationRequest, type FederationResponse, type FederationTransport } from './transport.js';
import type { Storage } from '../storage/types.js';
import { builtText } from '../homeserver/http/response.js';

export interface ReplicatorOptions {
  /** Rooms with at most this many servers get PDUs directly; larger ones by gossip. @default 8 */
  directFanoutMax?: number;
  /** Outbox sender settings (see outbox.ts). @default {} */
  outbox?: OutboxOptions;
  /** Catch-up and anti-entropy settings (see catch-up.ts). @default {} */
  catchUp?: CatchUpOptions;
  /** Time and randomness; the simulation passes virtual ones. @default systemClock */
  clock?: ReplicatorClock;
  /** @default silent */
  log?: ReplicatorLog;
  /** Event IDs (or content hashes) remembered as already published, so each PDU is gossiped once. @default 10_000 */
  publishedCacheSize?: number;
  /** Largest gossip message accepted, in bytes. @default 65_536 (a PDU is at most 64 KiB) */
  maxGossipBytes?: number;
}

export interface ReplicatorInit extends ReplicatorOptions {
  storage: Storage;
  transport: FederationTransport;
  homeserver: ReplicatedHomeserver;
}

export interface Replicator {
  readonly events: EventTarget;
  /** Installs the handler and client, starts the loops. */
  start(): Promise<void>;
  /** Stops the loops and removes the client; the transport stays open (the caller owns it). */
  stop(): void;
  /** Anti-entropy with one peer now. */
  exchange(peer: string): Promise<void>;
  /** Re-reads rooms (gossip mode, topic subscriptions). */
  refreshRooms(): Promise<void>;
  /** Outbox state per destination. */
  outboxState(): OutboxQueueState[];
  /** The catch-ups running now (room, peer, events fetched / stored / estimated). */
  catchUpProgress(): CatchUpProgress[];
  /** Nothing queued, in flight or being fetched, as far as this replicator knows. */
  idle(): boolean;
}

/** Host of the URLs handed to handleFederation: the path is what matters, and a server name can be longer than a DNS label. */
const FEDERATION_BASE = 'http://federation.invalid';

export async function toFetchRequest(request: FederationRequest): Promise<Request> {
  const init: RequestInit = { method: request.method, headers: { 'content-type': 'application/json' } };
  if (request.body !== undefined && request.method !== 'GET') init.body = JSON.stringify(request.body);
  return new Request(FEDERATION_BASE + request.path, init);
}

const utf8Encoder = new TextEncoder();

export async function fromFetchResponse(response: Response): Promise<FederationResponse> {
  // The homeserver's JSON answers keep their text, spliced into the transport's frame unparsed (responsePayload).
  const built = builtText(response);
  if (built) return localJsonResponse(response.status, utf8Encoder.encode(built));
  const text = await response.text();
  let body: unknown = {};
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { errcode: 'M_UNKNOWN', error: 'the homeserver answered with something that is not JSON' };
    }
  }
  return { status: response.status, body };
}

export function createReplicator(init: ReplicatorInit): Replicator {
  const { storage, transport, homeserver } = init;
  const replication = homeserver.replication;
  const clock = init.clock ?? systemClock;
  const log = init.log ?? silentLog;
  const directFanoutMax = init.directFanoutMax ?? 8;
  const publishedCacheSize = init.publishedCacheSize ?? 10_000;
  const maxGossipBytes = init.maxGossipBytes ?? 65_536;
  const events = new EventTarget();
  const gossipRooms = new Set<string>();
  const topics = new Map<string, () => void>();
  const published = new Set<string>();
  const publishedOrder: string[] = [];
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let unsubscribeCommits: (() => void) | undefined;
  let unsubscribeMissing: (() => void) | undefined;
  let refreshing: Promise<void> | undefined;
  let refreshAgain = false;
  let gossipInFlight = 0;
  let started = false;

  const outbox: OutboxSender = createOutboxSender({
    ...init.outbox,
    storage,
    transport,
    clock,
    log,
    events,
    gossipRoom: (roomId) => gossipRooms.has(roomId),
    onGossip: publish,
  });
  const catchUp: CatchUp = createCatchUp({ ...init.catchUp, transport, replication, clock, log, events });

  function publish(roomId: string, pdu: Record<string, unknown>): void {
    const hashes = pdu.hashes as Record<string, unknown> | undefined;
    const key = typeof pdu.event_id === 'string' ? pdu.event_id : typeof hashes?.sha256 === 'string' ? hashes.sha256 : JSON.stringify(pdu);
    if (published.has(key)) return;
    published.add(key);
    publishedOrder.push(key);
    if (publishedOrder.length > publishedCacheSize) published.delete(publishedOrder.shift()!);
    gossipInFlight++;
    transport
      .publish(roomTopic(roomId), encoder.encode(JSON.stringify(pdu)))
      .catch((error) => log.debug(`gossip: publish in ${roomId} failed (anti-entropy will cover it)`, error))
      .finally(() => gossipInFlight--);
  }

  function onGossip(roomId: string, data: Uint8Array, from: string): void {
    if (data.byteLength > maxGossipBytes) return log.warn(`gossip: ${data.byteLength}-byte message from ${from} dropped`);
    let pdu: unknown;
    try {
      pdu = JSON.parse(decoder.decode(data));
    } catch {
      return log.warn(`gossip: message from ${from} is not JSON`);
    }
    if (typeof pdu !== 'object' || pdu === null || Array.isArray(pdu) || (pdu as Record<string, unknown>).room_id !== roomId) {
      return log.warn(`gossip: message from ${from} on ${roomId}'s topic is not a PDU of that room`);
    }
    gossipInFlight++;
    replication
      .receivePdus([pdu], from)
      .then(([result]) => {
        // A gossiped event whose parents are missing is chased like a pushed one (it may be no peer's tip later).
        if (result?.outcome === 'missingPrevs') void catchUp.missingPrevs(from, roomId, pdu as object, result.missing ?? [], result.eventId);
      })
      .catch((error) => log.warn('gossip: receivePdus failed', error))
      .finally(() => gossipInFlight--);
  }

  function applyRooms(rooms: RoomSummary[]): void {
    gossipRooms.clear();
    // Count this server too, whether or not the homeserver lists itself among the room's servers.
    for (const room of rooms) if (new Set([...room.servers, transport.localServer]).size > directFanoutMax) gossipRooms.add(room.roomId);
    const joined = new Set(rooms.map((r) => r.roomId));
    for (const [roomId, unsubscribe] of [...topics]) {
      if (joined.has(roomId)) continue;
      unsubscribe();
      topics.delete(roomId);
    }
    for (const roomId of joined) {
      if (!topics.has(roomId)) topics.set(roomId, transport.subscribe(roomTopic(roomId), (data, from) => onGossip(roomId, data, from)));
    }
  }

  function refreshRooms(): Promise<void> {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        applyRooms(await replication.rooms());
      } while (refreshAgain && started);
    })()
      .catch((error) => log.warn('replicator: listing rooms failed', error))
      .finally(() => (refreshing = undefined));
    return refreshing;
  }

  async function handle(origin: string, request: FederationRequest): Promise<FederationResponse> {
    const response = await fromFetchResponse(await homeserver.handleFederation(await toFetchRequest(request), origin));
    if (request.method === 'POST' && request.path === EXTREMITIES_PATH && response.status === 200) {
      // Anti-entropy is symmetric: what the asking peer holds and we lack is fetched back from it.
      const asked = (request.body as { rooms?: unknown } | undefined)?.rooms;
      const answered = (response.body as { rooms?: unknown } | undefined)?.rooms;
      void catchUp.offered(origin, asked, answered);
    }
    return response;
  }

  return {
    events,
    async start() {
      if (started) return;
      started = true;
      transport.handle(handle);
      replication.setClient(transport);
      unsubscribeMissing = replication.onMissingPrevs((origin, roomId, pdu, missing, eventId) => {
        void catchUp.missingPrevs(origin, roomId, pdu, missing, eventId);
      });
      unsubscribeCommits = storage.subscribe((commit) => {
        // Membership decides a room's servers, hence its fan-out mode.
        if (commit.changes.some((c) => c.kind === 'membership')) void refreshRooms();
      });
      // Gossip mode must be known before the outbox reads its first record.
      await refreshRooms();
      await outbox.start();
      catchUp.start();
    },
    stop() {
      if (!started) return;
      started = false;
      outbox.stop();
      catchUp.stop();
      unsubscribeCommits?.();
      unsubscribeMissing?.();
      for (const unsubscribe of topics.values()) unsubscribe();
      topics.clear();
      gossipRooms.clear();
      replication.setClient(undefined);
    },
    exchange: (peer) => catchUp.exchange(peer),
    refreshRooms,
    outboxState: () => outbox.state(),
    catchUpProgress: () => catchUp.progress(),
    idle: () => !started || (outbox.idle() && catchUp.busy() === 0 && gossipInFlight === 0 && refreshing === undefined),
  };
}

export { EXTREMITIES_PATH };
