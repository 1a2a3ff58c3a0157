/**
 * Catch-up: fetching the events a server is missing, from whoever has them.
 *
 * Two triggers. (1) A parked event: the homeserver received a PDU whose
 * prev_events it does not hold and reported it through onMissingPrevs; we ask
 * `POST /_matrix/federation/v1/get_missing_events/{roomId}` with
 * earliest_events = our forward extremities and latest_events = the parked
 * event, first of the server that delivered it, then of the room's other
 * servers, and hand what comes back (oldest first) plus the parked event to
 * `receivePdus`, which runs every check: the responder is not trusted, the
 * origin signatures are. When the gap is longer than one answer, the events
 * still missing parents become the next round's latest_events, up to
 * `maxRounds`. Fetches are deduplicated: one parked event is chased once at
 * a time, however many copies arrive by gossip and push.
 * (2) Anti-entropy: when a peer comes online (and every
 * `antiEntropyIntervalMs`, jittered), we send it our extremities of every
 * room we share on the unstable endpoint
 * `POST /_matrix/federation/unstable/org.hometab/extremities`; it answers with
 * its own, and for each room where it holds extremities we do not know we
 * fetch from THAT peer, with the same get_missing_events loop. Any copy is
 * trustworthy since events are signed by their origin, so a returning tab
 * catches up from whoever is online, not only from the authors. The peer
 * does the same in the other direction when it sees us come online.
 *
 * A parked event whose chase fails (every server asked was unreachable, or
 * the gap was too long) is kept, bounded, and chased again after the next
 * exchange with any peer: it may be reachable from no peer's extremities (a
 * soft-failed child can take its place as a tip there), so anti-entropy alone
 * would never bring it; the simulation with real homeservers found this.
 *
 * Progress goes out as `catchup:progress` events (room, peer, fetched
 * count, done or failed) for the app's connection panel.
 */
import { backoffDelay, type ReceiveResult, type ReplicationPort, type ReplicatorClock, type ReplicatorLog, type RoomSummary } from './replication-port.js';
import type { FederationTransport } from './transport.js';

export interface CatchUpOptions {
  /** `limit` asked of get_missing_events per round. @default 100 */
  batchLimit?: number;
  /** get_missing_events rounds per server before trying the next one. @default 10 */
  maxRounds?: number;
  /** Servers asked per parked event (the delivering one first). @default 4 */
  maxServers?: number;
  /** Parked events chased at once; more wait for a slot. @default 8 */
  maxConcurrent?: number;
  /** Time allowed per request. @default the transport's request timeout */
  requestTimeoutMs?: number;
  /** Period of anti-entropy with every connected peer; 0 turns the timer off (peer:online still triggers it). @default 60_000 */
  antiEntropyIntervalMs?: number;
  /** Fraction by which each period is randomly shortened. @default 0.3 */
  antiEntropyJitter?: number;
  /** Rooms per extremities request. @default 200 */
  roomsPerExchange?: number;
  /** Parked events whose chase failed, kept to try again after the next exchange with any peer. @default 1_000 */
  maxParked?: number;
  /** Chases of one parked event before it is forgotten (anti-entropy can still bring it). @default 10 */
  maxChases?: number;
  /**
   * On start, run anti-entropy with every other server of every room (dialing
   * them), so a returning server asks for what it missed at once instead of
   * waiting for someone to connect to it. @default true
   */
  exchangeOnStart?: boolean;
}

export interface CatchUpProgress {
  kind: 'missingPrevs' | 'antiEntropy';
  roomId: string;
  /** The server asked. */
  peer: string;
  /** Events fetched so far in this catch-up. */
  fetched: number;
  state: 'running' | 'done' | 'failed';
}

export interface CatchUpInit extends CatchUpOptions {
  transport: FederationTransport;
  replication: ReplicationPort;
  clock: ReplicatorClock;
  log: ReplicatorLog;
  events: EventTarget;
}

export interface CatchUp {
  start(): void;
  stop(): void;
  /** Chases one parked event (what the onMissingPrevs listener calls). */
  missingPrevs(origin: string, roomId: string, pdu: object, missing: string[], eventId?: string): Promise<void>;
  /** Compares extremities of shared rooms with `peer` and fetches what it has and we do not. */
  exchange(peer: string): Promise<void>;
  /** After answering `peer`'s extremities request: fetches what its request named and we lack (`theirs`, `ours`: roomId -> IDs). */
  offered(peer: string, theirs: unknown, ours: unknown): Promise<void>;
  /** Number of chases and exchanges running or waiting. */
  busy(): number;
}

export const EXTREMITIES_PATH = '/_matrix/federation/unstable/org.hometab/extremities';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function depthOf(pdu: unknown): number {
  const depth = isObject(pdu) ? pdu.depth : undefined;
  return typeof depth === 'number' && Number.isFinite(depth) ? depth : 0;
}

function contentHashKey(pdu: object): string | undefined {
  const hashes = (pdu as Record<string, unknown>).hashes;
  const sha = isObject(hashes) ? hashes.sha256 : undefined;
  return typeof sha === 'string' ? sha : undefined;
}

export function createCatchUp(init: CatchUpInit): CatchUp {
  const batchLimit = init.batchLimit ?? 100;
  const maxRounds = init.maxRounds ?? 10;
  const maxServers = init.maxServers ?? 4;
  const maxConcurrent = init.maxConcurrent ?? 8;
  const intervalMs = init.antiEntropyIntervalMs ?? 60_000;
  const intervalJitter = init.antiEntropyJitter ?? 0.3;
  const roomsPerExchange = init.roomsPerExchange ?? 200;
  const { transport, replication, clock, log } = init;
  const local = transport.localServer;
  const chasing = new Map<string, Promise<void>>();
  const maxParked = init.maxParked ?? 1_000;
  const maxChases = init.maxChases ?? 10;
  const parked = new Map<string, { origin: string; roomId: string; pdu: object; missing: string[]; eventId?: string; chases: number }>();
  const exchanging = new Map<string, Promise<void>>();
  const waiting: Array<() => void> = [];
  let running = 0;
  let stopped = true;
  let cancelTimer: (() => void) | undefined;
  const timeout = init.requestTimeoutMs !== undefined ? { timeoutMs: init.requestTimeoutMs } : {};

  const onOnline = (event: Event): void => {
    const server = (event as CustomEvent<{ server: string }>).detail?.server;
    if (typeof server === 'string') void exchange(server);
  };

  function progress(detail: CatchUpProgress): void {
    init.events.dispatchEvent(new CustomEvent<CatchUpProgress>('catchup:progress', { detail }));
  }

  async function slot<T>(fn: () => Promise<T>): Promise<T> {
    if (running >= maxConcurrent) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  }

  /**
   * The get_missing_events loop against one server: returns true when none of
   * `parked` is still missing parents. `parked` are PDUs already rejected for
   * missing prevs, resubmitted after each round, oldest first.
   */
  async function pull(peer: string, roomId: string, latest: string[], parked: unknown[], kind: CatchUpProgress['kind']): Promise<boolean> {
    let fetched = 0;
    let pending = parked;
    for (let round = 0; round < maxRounds && latest.length > 0 && !stopped; round++) {
      const rooms = await replication.rooms();
      const earliest = rooms.find((r) => r.roomId === roomId)?.extremities ?? [];
      let response;
      try {
        response = await transport.request(
          peer,
          { method: 'POST', path: `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(roomId)}`, body: { earliest_events: earliest, latest_events: latest, limit: batchLimit, min_depth: 0 } },
          timeout,
        );
      } catch (error) {
        log.debug(`catch-up: get_missing_events from ${peer} failed`, error);
        return false;
      }
      const events = isObject(response.body) && Array.isArray(response.body.events) ? response.body.events : [];
      if (response.status !== 200) return false;
      fetched += events.length;
      progress({ kind, roomId, peer, fetched, state: 'running' });
      // Oldest first, so each event's parents are stored before it is checked.
      const batch = [...events].sort((a, b) => depthOf(a) - depthOf(b));
      const submitted = [...batch, ...pending];
      const results = submitted.length > 0 ? await replication.receivePdus(submitted, peer) : [];
      const stillMissing: unknown[] = [];
      const nextLatest: string[] = [];
      results.forEach((result: ReceiveResult, i) => {
        if (result.outcome !== 'missingPrevs') return;
        stillMissing.push(submitted[i]);
        if (result.eventId) nextLatest.push(result.eventId);
      });
      if (stillMissing.length === 0) return true;
      if (events.length === 0) return false;
      // Whatever still lacks parents (fetched or parked) is resubmitted next round; its IDs are where the walk back resumes.
      pending = stillMissing;
      latest = nextLatest;
    }
    return false;
  }

  /** Resolves true when the parked event got its parents (or needs none any more). */
  async function chase(origin: string, roomId: string, pdu: object, eventId: string | undefined): Promise<boolean> {
    return slot(async () => {
      if (eventId === undefined) {
        // The homeserver did not name the event; its own receive path computes the ID (room versions differ in how).
        const [result] = await replication.receivePdus([pdu], origin);
        if (!result || result.outcome !== 'missingPrevs') return true;
        eventId = result.eventId;
        if (eventId === undefined) return true;
      }
      const rooms = await replication.rooms();
      const room = rooms.find((r) => r.roomId === roomId);
      const candidates = [origin, ...(room?.servers ?? []).filter((s) => s !== origin && s !== local)];
      const online = new Set(transport.peers().map((p) => p.server));
      // The delivering server first, then connected ones before the rest.
      candidates.sort((a, b) => (a === origin ? -1 : b === origin ? 1 : Number(online.has(b)) - Number(online.has(a))));
      for (const peer of candidates.slice(0, maxServers)) {
        if (stopped) return false;
        if (await pull(peer, roomId, [eventId], [pdu], 'missingPrevs')) {
          progress({ kind: 'missingPrevs', roomId, peer, fetched: 0, state: 'done' });
          return true;
        }
      }
      progress({ kind: 'missingPrevs', roomId, peer: origin, fetched: 0, state: 'failed' });
      log.debug(`catch-up: a parked event in ${roomId} is still missing parents; will try again after the next exchange`);
      return false;
    });
  }

  function missingPrevs(origin: string, roomId: string, pdu: object, _missing: string[], eventId?: string): Promise<void> {
    if (stopped) return Promise.resolve();
    const explicit = eventId ?? ((pdu as Record<string, unknown>).event_id as string | undefined);
    const key = `${roomId}\u0000${explicit ?? contentHashKey(pdu) ?? JSON.stringify(pdu)}`;
    const existing = chasing.get(key);
    if (existing) return existing;
    const chases = (parked.get(key)?.chases ?? 0) + 1;
    parked.delete(key);
    const promise = chase(origin, roomId, pdu, explicit)
      .then((done) => {
        if (done || stopped || chases >= maxChases) return;
        if (parked.size >= maxParked) parked.delete(parked.keys().next().value!);
        parked.set(key, { origin, roomId, pdu, missing: _missing, ...(explicit !== undefined ? { eventId: explicit } : {}), chases });
      })
      .catch((error) => log.warn('catch-up: chase failed', error))
      .finally(() => chasing.delete(key));
    chasing.set(key, promise);
    return promise;
  }

  async function exchangeOnce(peer: string): Promise<void> {
    const mine = await replication.rooms();
    const shared = mine.filter((r) => r.servers.includes(peer));
    for (let i = 0; i < shared.length && !stopped; i += roomsPerExchange) {
      const chunk = shared.slice(i, i + roomsPerExchange);
      const rooms: Record<string, string[]> = {};
      for (const r of chunk) rooms[r.roomId] = r.extremities;
      let response;
      try {
        response = await transport.request(peer, { method: 'POST', path: EXTREMITIES_PATH, body: { rooms } }, timeout);
      } catch (error) {
        log.debug(`anti-entropy: ${peer} unreachable`, error);
        return;
      }
      if (response.status !== 200 || !isObject(response.body) || !isObject(response.body.rooms)) return;
      const theirs = response.body.rooms;
      for (const room of chunk) await fetchNewer(peer, room.roomId, room.extremities, theirs[room.roomId]);
    }
  }

  /** Fetches from `peer` the extremities it named that are not ours, and whatever leads to them. */
  async function fetchNewer(peer: string, roomId: string, ours: string[], their: unknown): Promise<void> {
    if (!Array.isArray(their)) return;
    const known = new Set(ours);
    const unknown = their.filter((id): id is string => typeof id === 'string' && !known.has(id));
    if (unknown.length === 0 || stopped) return;
    await slot(async () => {
      progress({ kind: 'antiEntropy', roomId, peer, fetched: 0, state: 'running' });
      // latest_events are skipped by the responder, so ask for the events themselves first.
      const heads = await fetchEvents(peer, unknown);
      const results = heads.length > 0 ? await replication.receivePdus(heads, peer) : [];
      const parked = heads.filter((_, i) => results[i]?.outcome === 'missingPrevs');
      const latest = results.filter((r) => r.outcome === 'missingPrevs' && r.eventId).map((r) => r.eventId!);
      const ok = parked.length === 0 || (await pull(peer, roomId, latest, parked, 'antiEntropy'));
      progress({ kind: 'antiEntropy', roomId, peer, fetched: heads.length, state: ok ? 'done' : 'failed' });
    });
  }

  /**
   * The other half of an exchange `peer` started: its request named its
   * extremities, our answer named ours; fetch those of its we lack, so one
   * request brings both sides up to date even when only one of them knows
   * the other is in the room.
   */
  function offered(peer: string, theirs: unknown, ours: unknown): Promise<void> {
    if (stopped || peer === local || !isObject(theirs) || !isObject(ours)) return Promise.resolve();
    const key = `offer\u0000${peer}`;
    const existing = exchanging.get(key);
    if (existing) return existing;
    const promise = (async () => {
      for (const roomId of Object.keys(ours)) {
        const mine = ours[roomId];
        if (Array.isArray(mine) && Object.hasOwn(theirs, roomId)) await fetchNewer(peer, roomId, mine.filter((id): id is string => typeof id === 'string'), theirs[roomId]);
      }
    })()
      .catch((error) => log.warn(`anti-entropy offered by ${peer} failed`, error))
      .finally(() => exchanging.delete(key));
    exchanging.set(key, promise);
    return promise;
  }

  /** GET /_matrix/federation/v1/event/{eventId} for each ID; what could not be fetched is left out. */
  async function fetchEvents(peer: string, ids: string[]): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const id of ids.slice(0, batchLimit)) {
      try {
        const response = await transport.request(peer, { method: 'GET', path: `/_matrix/federation/v1/event/${encodeURIComponent(id)}` }, timeout);
        const pdus = isObject(response.body) && Array.isArray(response.body.pdus) ? response.body.pdus : [];
        if (response.status === 200 && pdus.length > 0) out.push(pdus[0]);
      } catch {
        break;
      }
    }
    return out;
  }

  function exchange(peer: string): Promise<void> {
    if (stopped || peer === local) return Promise.resolve();
    const existing = exchanging.get(peer);
    if (existing) return existing;
    const promise = exchangeOnce(peer)
      .catch((error) => log.warn(`anti-entropy with ${peer} failed`, error))
      .finally(() => {
        exchanging.delete(peer);
        retryParked(peer);
      });
    exchanging.set(peer, promise);
    return promise;
  }

  /** Chases the kept parked events again, asking `peer` first (it just answered, so it is reachable). */
  function retryParked(peer: string): void {
    for (const entry of [...parked.values()]) {
      void missingPrevs(peer, entry.roomId, entry.pdu, entry.missing, entry.eventId);
    }
  }

  function schedule(): void {
    if (intervalMs <= 0 || stopped) return;
    const delay = backoffDelay(1, intervalMs, intervalMs, intervalJitter, clock.random);
    cancelTimer = clock.setTimer(() => {
      // Periodically only with connected peers: dialing every offline server of every room each period would cost more than it finds.
      for (const peer of transport.peers()) void exchange(peer.server);
      schedule();
    }, delay);
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      transport.events.addEventListener('peer:online', onOnline);
      for (const peer of transport.peers()) void exchange(peer.server);
      if (init.exchangeOnStart ?? true) {
        void replication
          .rooms()
          .then((rooms) => {
            for (const server of new Set(rooms.flatMap((r) => r.servers))) if (server !== local) void exchange(server);
          })
          .catch((error) => log.warn('catch-up: listing rooms at start failed', error));
      }
      schedule();
    },
    stop() {
      stopped = true;
      transport.events.removeEventListener('peer:online', onOnline);
      cancelTimer?.();
      for (const resolve of waiting.splice(0)) resolve();
    },
    missingPrevs,
    exchange,
    offered,
    busy() {
      return chasing.size + exchanging.size + waiting.length;
    },
  };
}

export type { RoomSummary };
