/**
 * History from before this server joined a room (server-server API
 * "Backfilling"; Synapse's backfill persistence): a batch of older events
 * from a peer's `backfill` answer goes into the timeline *behind* what the
 * server already holds. It runs the receive path's checks (format, event ID,
 * signatures, content hash, auth against the event's auth events, auth
 * against the state before it) but never touches the room's present: no
 * forward extremity, no current state, no soft fail, no outbox, no /sync
 * wake-up. Each event gets a negative stream position (storage's
 * `historicalPosition`), handed out downwards from the lowest used, so the
 * room's topological order has it in place and /sync's forward windows never
 * carry it as news.
 *
 * The state before an event is the state after its parents when this server
 * holds it (resolved when there are several); at the batch's far edge, where
 * parents are missing, it is asked of the peer (`state` at that event, whose
 * events are checked like a join's and kept as outliers). At most
 * MAX_STATE_FETCHES such questions per batch; events past that wait for the
 * next batch.
 *
 * Checks happen outside the room's lock (the peer may be slow); the one write
 * takes it, so a concurrent receive of the same event is seen and skipped.
 *
 * Also where the held history ends: `backwardExtremities`, the missing
 * parents of the earliest events held (what backfill asks for, and what tells
 * /sync that a newly joined room has history before its timeline).
 */
import {
  authEventTypesFor,
  checkEventAuth,
  pickAuthEvents,
  redactEvent,
  resolveState,
  roomIdFromCreateEvent,
  stateKeyOf,
  type PDU,
  type StateMap,
} from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { checkFormat, verifySigned } from './receive.js';
import { authFormOf, type RoomState } from './room-state.js';
import type { KeyOf } from './server-keys.js';
import type { ReadCaches } from '../sync/room-reader.js';
import type { ReadTxn } from '../../storage/types.js';

/** Most state answers asked of the peer for one batch. @default 5 */
export const MAX_STATE_FETCHES = 5;
/** The meta key holding the lowest historical stream position handed out so far. */
const HISTORY_POSITION_KEY = 'history.position';

/** Earliest timeline events examined for missing parents. @default 50 */
const EDGE_SCAN = 50;

/**
 * The missing parents of the room's earliest timeline events (outlier parents count as missing, rejected ones
 * never will be filled): empty when this server holds the room from its start, or up to `limit` event IDs.
 */
export async function backwardExtremities(txn: ReadTxn, roomId: string, limit: number): Promise<string[]> {
  const earliest = await txn.timeline.topological(roomId, { dir: 'f', limit: EDGE_SCAN });
  const parents = [...new Set(earliest.flatMap((r) => r.event.prev_events))];
  const held = await txn.events.getMany(parents);
  return parents
    .filter((id) => {
      const record = held.get(id);
      return !record || (record.outlier && !record.rejected);
    })
    .slice(0, limit);
}

/** The state before an event, as the peer holds it: `state`'s answer. */
export type StateFetcher = (eventId: string) => Promise<{ pdus: readonly unknown[]; authChain: readonly unknown[] }>;

export interface HistoryHost {
  readonly ctx: HomeserverContext;
  readonly keyOf: KeyOf;
  readonly caches: ReadCaches;
  /** Runs `fn` under the room's lock. */
  locked<T>(roomId: string, fn: () => Promise<T>): Promise<T>;
}

export interface HistoryOutcome {
  /** Events now in the timeline, oldest first. */
  stored: string[];
  /** Events stored as rejected outliers (failed auth). */
  rejected: number;
  /** Events dropped: malformed, badly signed, another room's, or with no state to judge them by. */
  dropped: number;
}

interface Accepted {
  eventId: string;
  event: PDU;
  before: StateMap;
  key?: string;
  /** Already stored as an outlier (a join's state): promoted rather than added. */
  outlier: boolean;
}

export async function importHistory(host: HistoryHost, room: RoomState, pdus: readonly unknown[], origin: string, fetchState: StateFetcher): Promise<HistoryOutcome> {
  const { ctx } = host;
  const version = room.version;
  const roomId = room.roomId;
  const outcome: HistoryOutcome = { stored: [], rejected: 0, dropped: 0 };
  const drop = (why: string) => {
    outcome.dropped++;
    ctx.log.warn(`backfill from ${origin} in ${roomId}: ${why}`);
  };

  // Format, IDs, duplicates, then signatures and content hashes concurrently.
  const formed = new Map<string, PDU>();
  for (const raw of pdus) {
    const result = checkFormat(raw, version);
    if ('failure' in result) {
      drop(`dropped a malformed event: ${result.failure}`);
      continue;
    }
    if (roomOf(result.wire, room) !== roomId) {
      drop(`dropped ${result.eventId}: not an event of this room`);
      continue;
    }
    formed.set(result.eventId, result.wire);
  }
  const known = await ctx.storage.read((t) => t.events.getMany([...formed.keys()]));
  const fresh = [...formed].filter(([id]) => {
    const record = known.get(id);
    return !record || (record.outlier && !record.rejected && !record.softFailed);
  });
  const verified = await Promise.all(fresh.map(([, event]) => verifySigned(host.keyOf, event, version)));
  const candidates: { eventId: string; event: PDU; outlier: boolean }[] = [];
  fresh.forEach(([eventId, event], i) => {
    const result = verified[i]!;
    if ('failure' in result) return drop(`dropped ${eventId}: ${result.failure}`);
    candidates.push({ eventId, event: result.contentHashOk ? event : (redactEvent(event, version) as PDU), outlier: known.has(eventId) });
  });
  // Oldest first: a parent is judged before its children. A lying depth only costs that event its place.
  candidates.sort((a, b) => (a.event.depth ?? 0) - (b.event.depth ?? 0) || a.event.origin_server_ts - b.event.origin_server_ts || (a.eventId < b.eventId ? -1 : 1));

  // Events this batch brings in, by ID, in auth form; stored ones are read on demand.
  const pending = new Map<string, PDU>();
  const loaded = new Map<string, PDU | undefined>();
  const getEvent = async (id: string): Promise<PDU | undefined> => {
    if (pending.has(id)) return pending.get(id);
    if (loaded.has(id)) return loaded.get(id);
    const record = await ctx.storage.read((t) => t.events.get(id));
    const pdu = record && !record.rejected && record.roomId === roomId ? authFormOf(record, version) : undefined;
    loaded.set(id, pdu);
    return pdu;
  };
  const stateAfter = new Map<string, StateMap>();
  const newOutliers = new Map<string, PDU>();
  const rejected: { eventId: string; event: PDU; reason: string; outlier: boolean }[] = [];
  const accepted: Accepted[] = [];
  let fetches = 0;

  for (const { eventId, event, outlier } of candidates) {
    const pdu: PDU = { ...event, event_id: eventId };
    // Auth against the event's own auth events.
    const authEvents: PDU[] = [];
    let missingAuth: string | undefined;
    for (const id of event.auth_events) {
      const auth = await getEvent(id);
      if (!auth) {
        missingAuth = id;
        break;
      }
      authEvents.push(auth);
    }
    if (missingAuth !== undefined) {
      drop(`dropped ${eventId}: auth event ${missingAuth} is not held here`);
      continue;
    }
    if (room.rules.roomIdFromCreateEvent) authEvents.push(room.createEvent);
    const own = checkEventAuth(pdu, authEvents, version);
    if (!own.allowed) {
      rejected.push({ eventId, event, reason: own.reason, outlier });
      continue;
    }

    // The state before it: its parents' (resolved), or the peer's answer at the batch's edge.
    let before = await parentsState(host, event.prev_events, stateAfter, version, getEvent);
    if (!before) {
      if (fetches >= MAX_STATE_FETCHES) {
        drop(`left ${eventId} for a later batch: no state for it here, and ${MAX_STATE_FETCHES} state answers asked already`);
        continue;
      }
      fetches++;
      before = await remoteState(host, room, eventId, origin, fetchState, pending, newOutliers, getEvent);
      if (!before) {
        drop(`dropped ${eventId}: no usable state from ${origin}`);
        continue;
      }
    }
    const lookup = new Map<string, PDU>();
    for (const [type, stateKey] of [['m.room.create', ''], ...authEventTypesFor(pdu, room.rules)] as [string, string][]) {
      const id = before.get(stateKeyOf(type, stateKey));
      const found = id === undefined ? undefined : await getEvent(id);
      if (found) lookup.set(stateKeyOf(type, stateKey), found);
    }
    const allowed = checkEventAuth(pdu, pickAuthEvents(pdu, (type, stateKey) => lookup.get(stateKeyOf(type, stateKey)), room.rules), version);
    if (!allowed.allowed) {
      rejected.push({ eventId, event, reason: allowed.reason, outlier });
      continue;
    }
    const key = typeof event.state_key === 'string' ? stateKeyOf(event.type, event.state_key) : undefined;
    const after = new Map(before);
    if (key !== undefined) after.set(key, eventId);
    stateAfter.set(eventId, after);
    pending.set(eventId, pdu);
    const replacedId = key === undefined ? undefined : before.get(key);
    const replaced = replacedId === undefined ? undefined : await getEvent(replacedId);
    const stored: PDU = replaced ? { ...event, unsigned: { prev_content: replaced.content, prev_sender: replaced.sender, replaces_state: replacedId } } : event;
    accepted.push({ eventId, event: stored, before, ...(key !== undefined ? { key } : {}), outlier });
  }
  for (const r of rejected) ctx.log.warn(`backfill from ${origin} in ${roomId}: ${r.eventId} rejected: ${r.reason}`);

  await host.locked(roomId, () =>
    ctx.storage.write(async (t) => {
      const present = await t.events.getMany([...newOutliers.keys(), ...rejected.map((r) => r.eventId), ...accepted.map((a) => a.eventId)]);
      for (const [eventId, event] of newOutliers) {
        if (!present.has(eventId)) await t.events.add({ eventId, roomId, event, outlier: true });
      }
      for (const r of rejected) {
        if (present.has(r.eventId)) continue;
        await t.events.add({ eventId: r.eventId, roomId, event: r.event, outlier: true, rejected: r.reason });
        outcome.rejected++;
      }
      // Positions downwards from the lowest handed out: the newest of the batch just below it, the oldest lowest.
      const lowest = (await t.meta.get<number>(HISTORY_POSITION_KEY)) ?? 0;
      const toStore = accepted.filter((a) => {
        const record = present.get(a.eventId);
        return !record || (a.outlier && record.outlier);
      });
      const groups = new Map<string, number>();
      for (let i = 0; i < toStore.length; i++) {
        const a = toStore[i]!;
        const position = lowest - (toStore.length - i);
        const parent = a.event.prev_events.length === 1 ? groups.get(a.event.prev_events[0]!) : undefined;
        const before = await t.stateGroups.createFromState(roomId, a.before, parent);
        const after = a.key === undefined ? before : await t.stateGroups.create(roomId, new Map([[a.key, a.eventId]]), before);
        if (a.outlier) {
          await t.events.update(a.eventId, { event: a.event, stateGroups: { before, after } });
          await t.events.promote(a.eventId, position);
        } else {
          await t.events.add({ eventId: a.eventId, roomId, event: a.event, historicalPosition: position, stateGroups: { before, after } });
        }
        groups.set(a.eventId, after);
        outcome.stored.push(a.eventId);
      }
      if (toStore.length > 0) await t.meta.put(HISTORY_POSITION_KEY, lowest - toStore.length);
    }),
  );
  return outcome;
}

/** The room an event is of: its room_id, or for a v12 create event the ID its hash gives. */
function roomOf(event: PDU, room: RoomState): string | undefined {
  if (typeof event.room_id === 'string') return event.room_id;
  if (event.type !== 'm.room.create' || event.state_key !== '' || !room.rules.roomIdFromCreateEvent) return undefined;
  try {
    return roomIdFromCreateEvent(event, room.version);
  } catch {
    return undefined;
  }
}

/** The state after all of `prevs`, resolved if they differ; undefined when any parent's state is unknown here. */
async function parentsState(
  host: HistoryHost,
  prevs: readonly string[],
  batch: ReadonlyMap<string, StateMap>,
  version: string,
  getEvent: (id: string) => Promise<PDU | undefined>,
): Promise<StateMap | undefined> {
  const states: StateMap[] = [];
  for (const prev of prevs) {
    const inBatch = batch.get(prev);
    if (inBatch) {
      states.push(inBatch);
      continue;
    }
    const stored = await host.ctx.storage.read(async (t) => {
      const record = await t.events.get(prev);
      if (!record || record.outlier || record.rejected) return undefined;
      const groups = await t.eventState.of(record);
      return groups ? host.caches.stateGroup(t, groups.after) : undefined;
    });
    if (!stored) return undefined;
    states.push(stored);
  }
  // No parents: the create event, before which there is nothing.
  if (prevs.length === 0) return new Map();
  return states.length === 1 ? states[0]! : resolveState(version, states, getEvent);
}

/**
 * The state before `eventId` as the peer answers it, each event checked (format, signature, content hash,
 * auth against its own auth events, which must be held or in the answer); new ones become outliers.
 */
async function remoteState(
  host: HistoryHost,
  room: RoomState,
  eventId: string,
  origin: string,
  fetchState: StateFetcher,
  pending: Map<string, PDU>,
  newOutliers: Map<string, PDU>,
  getEvent: (id: string) => Promise<PDU | undefined>,
): Promise<StateMap | undefined> {
  const version = room.version;
  let answer: { pdus: readonly unknown[]; authChain: readonly unknown[] };
  try {
    answer = await fetchState(eventId);
  } catch (error) {
    host.ctx.log.warn(`backfill from ${origin}: state at ${eventId} could not be had: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  const offered = new Map<string, PDU>();
  const inState = new Set<string>();
  const all = [...answer.authChain.map((raw) => [raw, false] as const), ...answer.pdus.map((raw) => [raw, true] as const)];
  const checked = await Promise.all(
    all.map(async ([raw]) => {
      const formed = checkFormat(raw, version);
      if ('failure' in formed) return undefined;
      if (roomOf(formed.wire, room) !== room.roomId) return undefined;
      const signed = await verifySigned(host.keyOf, formed.wire, version);
      if ('failure' in signed) return undefined;
      return { eventId: formed.eventId, event: signed.contentHashOk ? formed.wire : (redactEvent(formed.wire, version) as PDU) };
    }),
  );
  checked.forEach((c, i) => {
    if (!c) return;
    offered.set(c.eventId, c.event);
    if (all[i]![1]) inState.add(c.eventId);
  });
  // Each offered event against its own auth events, auth events first.
  const ok = new Map<string, PDU>();
  const judged = new Set<string>();
  const judge = async (id: string, path: Set<string>): Promise<boolean> => {
    if (judged.has(id)) return ok.has(id);
    const event = offered.get(id);
    if (!event) return (await getEvent(id)) !== undefined;
    if (path.has(id)) return false;
    path.add(id);
    const authEvents: PDU[] = [];
    for (const authId of event.auth_events) {
      if (!(await judge(authId, path))) {
        judged.add(id);
        return false;
      }
      const auth = ok.get(authId) ?? (await getEvent(authId));
      if (auth) authEvents.push(auth);
    }
    path.delete(id);
    judged.add(id);
    if (room.rules.roomIdFromCreateEvent && !(event.type === 'm.room.create' && event.state_key === '')) authEvents.push(room.createEvent);
    const pdu: PDU = { ...event, event_id: id };
    if (!checkEventAuth(pdu, authEvents, version).allowed) return false;
    ok.set(id, pdu);
    return true;
  };
  const state: StateMap = new Map();
  for (const id of offered.keys()) await judge(id, new Set());
  for (const id of inState) {
    const event = ok.get(id);
    if (!event || typeof event.state_key !== 'string') continue;
    state.set(stateKeyOf(event.type, event.state_key), id);
  }
  if (!state.has(stateKeyOf('m.room.create', ''))) return undefined;
  for (const [id, pdu] of ok) {
    if ((await host.ctx.storage.read((t) => t.events.has(id))) || pending.has(id)) continue;
    const { event_id: _id, ...event } = pdu;
    newOutliers.set(id, event as PDU);
    pending.set(id, pdu);
  }
  return state;
}
