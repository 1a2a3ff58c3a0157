/**
 * Catch-up: fetching the events a server is missing, from whoever has them.
 *
 * Two triggers. (1) A parked event: the homeserver received a PDU whose
 * prev_events it does not hold and reported it through onMissingPrevs; we
 * fill the gap behind it from the server that delivered it, then from the
 * room's other servers. (2) Anti-entropy: when a peer comes online (and every
 * `antiEntropyIntervalMs`, jittered), we send it our extremities of every
 * room we share on the unstable endpoint
 * `POST /_matrix/federation/unstable/org.hometab/extremities`; it answers with
 * its own, and for each room where it holds extremities we do not know we
 * fetch those events and fill the gap behind them from THAT peer. Any copy is
 * trustworthy since events are signed by their origin, so a returning tab
 * catches up from whoever is online, not only from the authors. The peer
 * does the same in the other direction when it sees us come online.
 *
 * Filling a gap (`pull`): walk back from the events whose parents we lack
 * with `POST /_matrix/federation/v1/get_missing_events/{roomId}`
 * (earliest_events = our forward extremities, latest_events = held events
 * whose parents are neither held nor stored, `pageLimit` per page; the
 * responder caps pages at 1,000 events and 3 MiB), holding what comes back in
 * memory, until every held event's parents are held or stored here; then the
 * held events go to `receivePdus` parents first, `submitChunk` at a time:
 * each chunk is checked as a batch and written in one storage write. Nothing
 * is handed to the homeserver twice. A gap is walked at most
 * `maxEventsPerPull` events deep per room and peer (the events must be held
 * until the oldest has its parents); a longer one fails that chase, and the
 * room's newest events wait for a later one. Pulls in one room run one at a
 * time: a parked event that arrives during a pull waits for it, and often
 * finds its parents there. The responder is not trusted: every event goes
 * through every receive check.
 *
 * A long gap (the heads lie more than a page deeper than our newest event)
 * is first taken forward with Hometab's
 * `POST /_matrix/federation/unstable/org.hometab/forward/{roomId}`: the
 * peer's timeline above our extremities, oldest first, a page at a time;
 * the next page is asked for as soon as one arrives, up to `pagesAhead`
 * pages ahead of the one being written, so fetching and storing overlap
 * (walking back cannot: its first storable events come last). Whatever
 * that leaves missing (other branches, a peer without the endpoint) is
 * walked back as above.
 *
 * A parked event whose chase fails (every server asked was unreachable, or
 * the gap was too long), and likewise a head an anti-entropy walk could not
 * finish (a page lost or timed out), is kept, bounded, and chased again after
 * the next exchange with any peer, either direction: it may be reachable from no peer's extremities (a
 * soft-failed child can take its place as a tip there), so anti-entropy alone
 * would never bring it; the simulation with real homeservers found this.
 *
 * Progress goes out as `catchup:progress` events (room, peer, events
 * fetched, stored and estimated, running / done / failed) for the app's
 * connection panel; `progress()` lists the catch-ups running now.
 */
import { backoffDelay, type ReceiveResult, type ReplicationPort, type ReplicatorClock, type ReplicatorLog, type RoomSummary } from './replication-port.js';
import type { FederationTransport } from './transport.js';

export interface CatchUpOptions {
  /** `limit` asked of get_missing_events per page (the responder may answer fewer: ours caps at 1,000). @default 1_000 */
  pageLimit?: number;
  /** Most events held while walking one gap back (per room and peer); a longer gap fails the chase. @default 20_000 */
  maxEventsPerPull?: number;
  /** Events handed to receivePdus at once: one batch of checks and one storage write each. @default 1_000 */
  submitChunk?: number;
  /**
   * Forward pages held or on the wire ahead of the one being written (each up to `pageLimit` events, at most
   * 3 MiB): the wire and the writes overlap, and memory stays bounded when the writes are slower. At least 2
   * (one arrived, the next asked for). @default 2
   */
  pagesAhead?: number;
  /** Events fetched one by one with GET /event when a peer names extremities we lack. @default 100 */
  maxHeads?: number;
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
  /** Events of it written to storage so far. */
  stored: number;
  /**
   * Events this catch-up is expected to bring, from the depths of the newest
   * event fetched and of our own extremities (exact for a linear gap); absent
   * until the first event is fetched.
   */
  estimated?: number;
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
  /** The catch-ups running now, latest progress of each. */
  progress(): CatchUpProgress[];
}

export const EXTREMITIES_PATH = '/_matrix/federation/unstable/org.hometab/extremities';
export const FORWARD_PATH = '/_matrix/federation/unstable/org.hometab/forward/';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function depthOf(pdu: unknown): number {
  const depth = isObject(pdu) ? pdu.depth : undefined;
  return typeof depth === 'number' && Number.isFinite(depth) ? depth : 0;
}

function prevEventsOf(pdu: unknown): string[] {
  const prevs = isObject(pdu) ? pdu.prev_events : undefined;
  return Array.isArray(prevs) ? prevs.filter((id): id is string => typeof id === 'string') : [];
}

/** Most latest_events and earliest_events one get_missing_events request names (the responder's bound). */
const MAX_NAMED_EVENTS = 100;

function contentHashKey(pdu: object): string | undefined {
  const hashes = (pdu as Record<string, unknown>).hashes;
  const sha = isObject(hashes) ? hashes.sha256 : undefined;
  return typeof sha === 'string' ? sha : undefined;
}

export function createCatchUp(init: CatchUpInit): CatchUp {
  const pageLimit = init.pageLimit ?? 1_000;
  const maxEventsPerPull = init.maxEventsPerPull ?? 20_000;
  const submitChunk = init.submitChunk ?? 1_000;
  const pagesAhead = Math.max(2, init.pagesAhead ?? 2);
  const maxHeads = init.maxHeads ?? 100;
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
  /** The pull running in each room: the next one waits for it. */
  const roomPulls = new Map<string, Promise<unknown>>();
  const inProgress = new Map<string, CatchUpProgress>();
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
    const key = `${detail.kind}\u0000${detail.roomId}\u0000${detail.peer}`;
    if (detail.state === 'running') inProgress.set(key, detail);
    else inProgress.delete(key);
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

  /** Runs `fn` after the pull running in `roomId`, if any: one gap of a room is walked once at a time. */
  async function oneRoomAtATime<T>(roomId: string, fn: () => Promise<T>): Promise<T> {
    const before = roomPulls.get(roomId) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(fn);
    const settled = mine.catch(() => undefined);
    roomPulls.set(roomId, settled);
    try {
      return await mine;
    } finally {
      if (roomPulls.get(roomId) === settled) roomPulls.delete(roomId);
    }
  }

  /**
   * Fills the gap behind `heads` (PDUs of the room whose parents this server
   * lacks) from `peer`: walks back with get_missing_events pages, holding the
   * events, until every held event's parents are held or stored; then hands
   * them to receivePdus parents first in chunks. Returns true when none of the
   * heads is still missing parents.
   */
  async function pull(peer: string, roomId: string, heads: readonly unknown[], kind: CatchUpProgress['kind']): Promise<boolean> {
    const summary = (await replication.rooms()).find((r) => r.roomId === roomId);
    const earliest = (summary?.extremities ?? []).slice(0, MAX_NAMED_EVENTS);
    const held = new Map<string, unknown>();
    const headIds = new Set<string>();
    const headIdList = await replication.eventIds(roomId, heads);
    heads.forEach((pdu, i) => {
      const id = headIdList[i];
      if (id === undefined) return;
      held.set(id, pdu);
      headIds.add(id);
    });
    if (headIds.size === 0) return true;
    const newestDepth = Math.max(...[...held.values()].map(depthOf));
    const status: CatchUpProgress = { kind, roomId, peer, fetched: 0, stored: 0, state: 'running' };
    if (summary?.maxDepth !== undefined) status.estimated = Math.max(0, newestDepth - summary.maxDepth);
    progress({ ...status });

    // Parents already classified: stored here, or absent (to fetch).
    const stored = new Set<string>();
    const absent = new Set<string>();
    /** The held events among `candidates` with a parent neither held nor stored. */
    async function openEnds(candidates: Iterable<string>): Promise<string[]> {
      const list = [...candidates];
      const unknown = new Set<string>();
      for (const id of list) for (const prev of prevEventsOf(held.get(id))) if (!held.has(prev) && !stored.has(prev) && !absent.has(prev)) unknown.add(prev);
      if (unknown.size > 0) {
        const found = await replication.storedEvents([...unknown]);
        for (const id of unknown) (found.has(id) ? stored : absent).add(id);
      }
      return list.filter((id) => prevEventsOf(held.get(id)).some((prev) => !held.has(prev) && !stored.has(prev)));
    }

    let open = await openEnds(headIds);
    /** Events the forward pages took from this pull's budget; heads they stored are done. */
    let budgetUsed = 0;
    const storedHeads = new Set<string>();
    if (open.length > 0 && status.estimated !== undefined && status.estimated > pageLimit) {
      budgetUsed = await pullForward(peer, roomId, earliest, status);
      for (const id of await replication.storedEvents([...headIds])) {
        storedHeads.add(id);
        held.delete(id);
      }
      // What was absent may be stored now.
      absent.clear();
      open = await openEnds([...headIds].filter((id) => held.has(id)));
    }
    let complete = open.length === 0;
    while (!complete && !stopped) {
      if (held.size + budgetUsed >= maxEventsPerPull) {
        log.warn(`catch-up: the gap in ${roomId} is longer than ${maxEventsPerPull} events; ${peer}'s newest events there wait for a later chase`);
        break;
      }
      // Deepest open ends first: with more than the request may name, the walk goes on from the others next page.
      open.sort((a, b) => depthOf(held.get(b)) - depthOf(held.get(a)));
      const latest = open.slice(0, MAX_NAMED_EVENTS);
      let response;
      try {
        response = await transport.request(
          peer,
          {
            method: 'POST',
            path: `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(roomId)}`,
            body: { earliest_events: earliest, latest_events: latest, limit: Math.min(pageLimit, maxEventsPerPull - held.size - budgetUsed), min_depth: 0 },
          },
          timeout,
        );
      } catch (error) {
        log.debug(`catch-up: get_missing_events from ${peer} failed`, error);
        break;
      }
      const events = response.status === 200 && isObject(response.body) && Array.isArray(response.body.events) ? response.body.events : [];
      const ids = events.length > 0 ? await replication.eventIds(roomId, events) : [];
      const added: string[] = [];
      events.forEach((pdu, i) => {
        const id = ids[i];
        if (id === undefined || held.has(id)) return;
        held.set(id, pdu);
        added.push(id);
      });
      // Nothing new: the peer has no more of this gap (or will not show it).
      if (added.length === 0) break;
      status.fetched += added.length;
      if (status.estimated !== undefined) status.estimated = Math.max(status.estimated, status.fetched + headIds.size);
      progress({ ...status });
      open = await openEnds([...open, ...added]);
      complete = open.length === 0;
    }
    if (stopped) return false;

    // Parents first (prev_events among the held events), in chunks: each one batch of checks and one write.
    const order = parentsFirst(held);
    const outcomes = new Map<string, ReceiveResult>();
    for (let i = 0; i < order.length && !stopped; i += submitChunk) {
      const chunk = order.slice(i, i + submitChunk);
      const results = await replication.receivePdus(chunk.map((id) => held.get(id)!), peer);
      results.forEach((result, n) => outcomes.set(chunk[n]!, result));
      status.stored += results.filter((r) => r.outcome === 'accepted' || r.outcome === 'softFailed').length;
      progress({ ...status });
    }
    return [...headIds].every((id) => {
      if (storedHeads.has(id)) return true;
      const outcome = outcomes.get(id)?.outcome;
      return outcome !== undefined && outcome !== 'missingPrevs';
    });
  }

  /**
   * The forward half of a long pull: pages of `peer`'s timeline above our
   * extremities, oldest first. Fetching runs ahead of storing: each page is
   * asked for as soon as the one before arrives (its `next` names where it
   * goes on), while earlier pages are written in order (`submitChunk`
   * batches), with at most `pagesAhead` pages held or on the wire ahead of
   * the one being written, so memory stays bounded when the writes are
   * slower than the wire. Stops at the end of
   * the peer's timeline, at `maxEventsPerPull`, or at the first failure; the
   * backward walk then finds what is still missing.
   */
  async function pullForward(peer: string, roomId: string, earliest: readonly string[], status: CatchUpProgress): Promise<number> {
    let fetched = 0;
    /** Fetched pages not yet handed to storage, oldest first. */
    const pages: unknown[][] = [];
    let fetching = true;
    let failure: { error: unknown } | undefined;
    let wakeStorer: (() => void) | undefined;
    let wakeFetcher: (() => void) | undefined;
    const wake = (which: 'storer' | 'fetcher'): void => {
      const resolve = which === 'storer' ? wakeStorer : wakeFetcher;
      if (which === 'storer') wakeStorer = undefined;
      else wakeFetcher = undefined;
      resolve?.();
    };
    const ask = (from: unknown) =>
      transport.request(
        peer,
        { method: 'POST', path: `${FORWARD_PATH}${encodeURIComponent(roomId)}`, body: { earliest_events: earliest, limit: Math.min(pageLimit, maxEventsPerPull - fetched), ...(from !== undefined ? { from } : {}) } },
        timeout,
      );
    const fetcher = (async () => {
      let asked: ReturnType<typeof ask> | undefined = ask(undefined);
      try {
        while (asked !== undefined && !stopped && !failure) {
          let response;
          try {
            response = await asked;
          } catch (error) {
            log.debug(`catch-up: forward page from ${peer} failed`, error);
            return;
          }
          asked = undefined;
          const body = response.body;
          const events = response.status === 200 && isObject(body) && Array.isArray(body.events) ? body.events : [];
          if (events.length === 0) return;
          fetched += events.length;
          status.fetched += events.length;
          progress({ ...status });
          // The next page is asked for before this one is checked (the checks take the thread for a while), once
          // fewer than `pagesAhead` pages would be held: this one and the next, beside those waiting.
          if (isObject(body) && isObject(body.next) && fetched < maxEventsPerPull) {
            while (pages.length > pagesAhead - 2 && !stopped && !failure) await new Promise<void>((resolve) => (wakeFetcher = resolve));
            if (!stopped && !failure) {
              asked = ask(body.next);
              // A turn of the event loop, so the request is on the wire before the checks below begin.
              await new Promise<void>((resolve) => clock.setTimer(resolve, 0));
            }
          }
          // Its format, event IDs and signatures are checked (identifyPdus) while the pages before it are written.
          void replication.eventIds(roomId, events).catch(() => undefined);
          pages.push(events);
          wake('storer');
        }
      } finally {
        asked?.catch(() => undefined);
        fetching = false;
        wake('storer');
      }
    })();
    // Pages go in one after another: a page's events are the next one's parents.
    while (!failure) {
      const events = pages.shift();
      if (events === undefined) {
        if (!fetching) break;
        await new Promise<void>((resolve) => (wakeStorer = resolve));
        continue;
      }
      wake('fetcher');
      try {
        for (let i = 0; i < events.length && !stopped; i += submitChunk) {
          const results = await replication.receivePdus(events.slice(i, i + submitChunk), peer);
          status.stored += results.filter((r) => r.outcome === 'accepted' || r.outcome === 'softFailed').length;
          progress({ ...status });
        }
      } catch (error) {
        failure = { error };
        wake('fetcher');
      }
    }
    await fetcher;
    if (failure) throw failure.error;
    return fetched;
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
        const done = await oneRoomAtATime(roomId, async () => {
          // A pull that ran meanwhile may have brought the parents.
          const [now] = await replication.receivePdus([pdu], peer);
          if (!now || now.outcome !== 'missingPrevs') return true;
          return pull(peer, roomId, [pdu], 'missingPrevs');
        });
        progress({ kind: 'missingPrevs', roomId, peer, fetched: 0, stored: 0, state: done ? 'done' : 'failed' });
        if (done) return true;
      }
      log.debug(`catch-up: a parked event in ${roomId} is still missing parents; will try again after the next exchange`);
      return false;
    });
  }

  function parkedKey(roomId: string, pdu: object, explicit: string | undefined): string {
    return `${roomId}\u0000${explicit ?? contentHashKey(pdu) ?? JSON.stringify(pdu)}`;
  }

  /** Keeps an event whose parents could not be had, to chase again after the next exchange (bounded: oldest out first). */
  function keep(key: string, entry: { origin: string; roomId: string; pdu: object; missing: string[]; eventId?: string; chases: number }): void {
    if (parked.size >= maxParked) parked.delete(parked.keys().next().value!);
    parked.set(key, entry);
  }

  function missingPrevs(origin: string, roomId: string, pdu: object, _missing: string[], eventId?: string): Promise<void> {
    if (stopped) return Promise.resolve();
    const explicit = eventId ?? ((pdu as Record<string, unknown>).event_id as string | undefined);
    const key = parkedKey(roomId, pdu, explicit);
    const existing = chasing.get(key);
    if (existing) return existing;
    const chases = (parked.get(key)?.chases ?? 0) + 1;
    parked.delete(key);
    const promise = chase(origin, roomId, pdu, explicit)
      .then((done) => {
        if (done || stopped || chases >= maxChases) return;
        keep(key, { origin, roomId, pdu, missing: _missing, ...(explicit !== undefined ? { eventId: explicit } : {}), chases });
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
    await slot(() =>
      oneRoomAtATime(roomId, async () => {
        // latest_events are skipped by the responder, so ask for the events themselves first.
        const heads = await fetchEvents(peer, unknown);
        const results = heads.length > 0 ? await replication.receivePdus(heads, peer) : [];
        const orphans = heads.flatMap((pdu, i) => (results[i]?.outcome === 'missingPrevs' ? [{ pdu: pdu as object, result: results[i]! }] : []));
        const ok = orphans.length === 0 || (await pull(peer, roomId, orphans.map((o) => o.pdu), 'antiEntropy'));
        // A walk cut short (a page lost or timed out) must not forget its heads: they may be soft-failed tips that no
        // other server names as an extremity, so no later exchange would bring them. Kept like a failed chase, they are
        // chased again once this exchange ends (retryParked), from this peer first.
        if (!ok && !stopped) {
          for (const { pdu, result } of orphans) {
            const key = parkedKey(roomId, pdu, result.eventId);
            if (!chasing.has(key) && !parked.has(key)) keep(key, { origin: peer, roomId, pdu, missing: result.missing ?? [], ...(result.eventId !== undefined ? { eventId: result.eventId } : {}), chases: 0 });
          }
        }
        const stored = results.filter((r) => r.outcome === 'accepted' || r.outcome === 'softFailed').length;
        progress({ kind: 'antiEntropy', roomId, peer, fetched: heads.length, stored, state: ok ? 'done' : 'failed' });
      }),
    );
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
      .finally(() => {
        exchanging.delete(key);
        // As after an exchange we started: what this one's walks could not finish is chased again now.
        retryParked(peer);
      });
    exchanging.set(key, promise);
    return promise;
  }

  /** GET /_matrix/federation/v1/event/{eventId} for each ID; what could not be fetched is left out. */
  async function fetchEvents(peer: string, ids: string[]): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const id of ids.slice(0, maxHeads)) {
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
    progress: () => [...inProgress.values()].map((p) => ({ ...p })),
  };
}

/** Kahn's order over prev_events among the held events (whatever never becomes ready lies on a cycle and goes last). */
function parentsFirst(held: ReadonlyMap<string, unknown>): string[] {
  const waiting = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const [id, pdu] of held) {
    let n = 0;
    for (const parent of new Set(prevEventsOf(pdu))) {
      if (!held.has(parent)) continue;
      n++;
      const list = children.get(parent);
      if (list) list.push(id);
      else children.set(parent, [id]);
    }
    waiting.set(id, n);
  }
  const ready = [...held.keys()].filter((id) => waiting.get(id) === 0);
  const order: string[] = [];
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!;
    order.push(id);
    for (const child of children.get(id) ?? []) {
      const left = waiting.get(child)! - 1;
      waiting.set(child, left);
      if (left === 0) ready.push(child);
    }
  }
  if (order.length < held.size) {
    const done = new Set(order);
    for (const id of held.keys()) if (!done.has(id)) order.push(id);
  }
  return order;
}

export type { RoomSummary };
