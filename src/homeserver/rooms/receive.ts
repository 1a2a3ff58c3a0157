/**
 * The receive path: PDUs from peers, in any order and from any peer (origin
 * signatures make every copy trustworthy), through the spec's checks in the
 * spec's order, each ending in a WritePlan for persist.ts:
 *
 * 1. Format: the JSON ingress's shape bounds, then the core's validatePdu for
 *    the room's version (size, prev_events bound, identifiers). Unknown rooms
 *    and versions stop here.
 * 2. Event ID right after the format check, and known events dropped before
 *    any signature work: gossip and anti-entropy deliver many duplicates.
 * 3. Signatures of the sender's server (and of a restricted join's
 *    authorising server), all events of a batch verified concurrently.
 * 4. Content hash: a mismatch keeps the event, redacted.
 * 5. Auth against its auth_events, which must be stored: missing ones make
 *    the event `missingPrevs` like missing prev_events (nothing is fetched
 *    here; p2p fetches and calls again).
 * 6. Auth against the state before it (state resolution over its
 *    prev_events' states).
 * 7. Soft fail against current state.
 *
 * A batch is sorted topologically (prev_events among the batch first), so a
 * run of fetched events goes in parent-first whatever order it came in. What
 * fails steps 1–3 is dropped with a logged reason and nothing stored; what
 * fails 5–6 is stored as a rejected outlier so it is not fetched again.
 */
import {
  authEventTypesFor,
  checkEventAuth,
  CoreError,
  eventIdOf,
  pickAuthEvents,
  redactEvent,
  redactionPermitted,
  redactionTarget,
  resolveState,
  roomIdFromCreateEvent,
  roomVersionRules,
  SUPPORTED_ROOM_VERSIONS,
  serverNameOf,
  stateKeyOf,
  validatePdu,
  verifyEvent,
  type PDU,
  type StateMap,
} from '../../core/index.js';
import type { EventRecord } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import { checkJsonValue } from '../http/json-ingress.js';
import { MatrixError } from '../http/errors.js';
import type { KeyedLock } from './lock.js';
import type { WritePlan } from './persist.js';
import { authFormOf, type RoomState } from './room-state.js';
import type { KeyOf } from './server-keys.js';
import type { ReadCaches } from '../sync/room-reader.js';

export interface PduOutcome {
  eventId?: string;
  roomId?: string;
  outcome: 'accepted' | 'softFailed' | 'rejected' | 'duplicate' | 'invalid' | 'missingPrevs' | 'unknownRoom';
  /** For missingPrevs: the prev_events and auth_events not stored here. */
  missing?: string[];
  reason?: string;
}

/** What the receive path needs of the engine. */
export interface ReceiveHost {
  readonly ctx: HomeserverContext;
  readonly lock: KeyedLock;
  readonly keyOf: KeyOf;
  /** The homeserver's caches of immutable data: state groups are loaded through it. */
  readonly caches: ReadCaches;
  /** The cached room (taking its lock to load it). */
  room(roomId: string): Promise<RoomState | undefined>;
  /** The cached room, for callers holding its lock. */
  loadRoom(roomId: string): Promise<RoomState | undefined>;
  /** Writes a plan (persist.ts) under the room's lock. */
  persist(room: RoomState, plan: WritePlan): Promise<unknown>;
}

/** A PDU past steps 1–4. */
interface Checked {
  index: number;
  eventId: string;
  roomId: string;
  /** Signed wire form, redacted on a content-hash mismatch; no `unsigned`, no `event_id`. */
  event: PDU;
}

export async function receivePdus(host: ReceiveHost, pdus: readonly unknown[], origin: string): Promise<PduOutcome[]> {
  const { ctx } = host;
  const outcomes: PduOutcome[] = new Array(pdus.length);
  const drop = (i: number, outcome: PduOutcome) => {
    outcomes[i] = outcome;
    if (outcome.outcome === 'invalid' || outcome.outcome === 'unknownRoom') {
      ctx.log.warn(`pdu from ${origin} dropped (${outcome.outcome}): ${outcome.reason}`, { eventId: outcome.eventId, roomId: outcome.roomId });
    }
  };

  // 1–2. Format and event ID; duplicates within the batch.
  const formed: { index: number; eventId: string; roomId: string; version: string; wire: PDU }[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < pdus.length; i++) {
    const raw = pdus[i];
    const roomId = roomIdOf(raw);
    if (roomId === undefined) {
      drop(i, { outcome: 'invalid', reason: 'a PDU must be an object with a room_id (or a v12 create event)' });
      continue;
    }
    try {
      checkJsonValue(raw);
    } catch (error) {
      drop(i, { roomId, outcome: 'invalid', reason: error instanceof MatrixError ? error.message : String(error) });
      continue;
    }
    const room = await host.room(roomId);
    if (!room) {
      drop(i, { roomId, outcome: 'unknownRoom', reason: `room ${roomId} is not known here` });
      continue;
    }
    const formed1 = checkFormat(raw, room.version);
    if ('failure' in formed1) {
      drop(i, { roomId, outcome: 'invalid', reason: formed1.failure });
      continue;
    }
    const { wire, eventId } = formed1;
    if (seen.has(eventId)) {
      outcomes[i] = { eventId, roomId, outcome: 'duplicate' };
      continue;
    }
    seen.add(eventId);
    formed.push({ index: i, eventId, roomId, version: room.version, wire });
  }
  const known = await ctx.storage.read(async (t) => t.events.getMany(formed.map((f) => f.eventId)));

  // 3–4. Signatures and content hashes, concurrently.
  const fresh = formed.filter((f) => {
    if (!known.has(f.eventId)) return true;
    outcomes[f.index] = { eventId: f.eventId, roomId: f.roomId, outcome: 'duplicate' };
    return false;
  });
  const verified = await Promise.all(fresh.map((f) => verifySigned(host.keyOf, f.wire, f.version)));
  const byRoom = new Map<string, Checked[]>();
  fresh.forEach((f, n) => {
    const result = verified[n]!;
    if ('failure' in result) {
      drop(f.index, { eventId: f.eventId, roomId: f.roomId, outcome: 'invalid', reason: result.failure });
      return;
    }
    if (!result.contentHashOk) ctx.log.warn(`pdu ${f.eventId} from ${origin}: content hash mismatch, kept redacted`);
    const event = result.contentHashOk ? f.wire : (redactEvent(f.wire, f.version) as PDU);
    const list = byRoom.get(f.roomId) ?? [];
    list.push({ index: f.index, eventId: f.eventId, roomId: f.roomId, event });
    byRoom.set(f.roomId, list);
  });

  // 5–7, room by room, parents first.
  for (const [roomId, checked] of byRoom) {
    const { ordered, cyclic } = parentsFirst(checked);
    for (const c of cyclic) drop(c.index, { eventId: c.eventId, roomId, outcome: 'invalid', reason: 'prev_events form a cycle' });
    await host.lock.run(roomId, async () => {
      const room = await host.loadRoom(roomId);
      if (!room) throw new Error(`room ${roomId} vanished`);
      for (const c of ordered) {
        const outcome = await receiveOne(host, room, c);
        outcomes[c.index] = outcome;
        if (outcome.outcome === 'rejected' || outcome.outcome === 'softFailed') {
          ctx.log.warn(`pdu ${c.eventId} from ${origin} ${outcome.outcome}: ${outcome.reason}`);
        }
      }
    });
  }
  return outcomes;
}

/** The room a PDU is for: its room_id, or for a create event of a room version without one, the ID its hash gives. */
function roomIdOf(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const { room_id: roomId, type, state_key: stateKey, content } = raw as Record<string, unknown>;
  if (typeof roomId === 'string') return roomId;
  if (type !== 'm.room.create' || stateKey !== '' || content === null || typeof content !== 'object') return undefined;
  const version = (content as { room_version?: unknown }).room_version;
  if (typeof version !== 'string' || !SUPPORTED_ROOM_VERSIONS.includes(version) || !roomVersionRules(version).roomIdFromCreateEvent) return undefined;
  try {
    return roomIdFromCreateEvent(raw, version);
  } catch {
    return undefined;
  }
}

/** Step 1 and 2 for one parsed value: the core's format check, then the wire form (no unsigned, no claimed ID) and its event ID. */
export function checkFormat(raw: unknown, version: string): { wire: PDU; eventId: string } | { failure: string } {
  try {
    checkJsonValue(raw);
    validatePdu(raw, version);
  } catch (error) {
    if (error instanceof CoreError) return { failure: `${error.code}: ${error.message}` };
    if (error instanceof MatrixError) return { failure: error.message };
    throw error;
  }
  const { unsigned: _unsigned, event_id: _claimed, ...rest } = raw;
  const wire = rest as PDU;
  return { wire, eventId: eventIdOf(wire, version) };
}

/** Checks the signatures the event needs: its sender's server, and a restricted join's authorising server. */
export async function verifySigned(
  keyOf: KeyOf,
  event: PDU,
  version: string,
  also: readonly string[] = [],
): Promise<{ contentHashOk: boolean } | { failure: string }> {
  const servers = new Set([serverNameOf(event.sender), ...also]);
  const authoriser = event.content.join_authorised_via_users_server;
  if (event.type === 'm.room.member' && typeof authoriser === 'string') servers.add(serverNameOf(authoriser));
  let contentHashOk = false;
  for (const server of servers) {
    let ok = false;
    for (const keyId of Object.keys(event.signatures?.[server] ?? {})) {
      const key = await keyOf(server, keyId);
      if (!key) continue;
      const result = await verifyEvent(event, version, server, keyId, key);
      contentHashOk ||= result.contentHashOk;
      if (result.signatureOk) {
        ok = true;
        break;
      }
    }
    if (!ok) return { failure: `no valid signature of ${server}` + (server === serverNameOf(event.sender) ? " (the sender's server must sign its events)" : '') };
  }
  return { contentHashOk };
}

/** Kahn's algorithm over the batch's own prev_events edges; what never becomes ready lies on a cycle. */
function parentsFirst(events: Checked[]): { ordered: Checked[]; cyclic: Checked[] } {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const waiting = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const e of events) {
    let n = 0;
    for (const parent of new Set(e.event.prev_events)) {
      if (!byId.has(parent)) continue;
      n++;
      children.set(parent, [...(children.get(parent) ?? []), e.eventId]);
    }
    waiting.set(e.eventId, n);
  }
  const ready = events.filter((e) => waiting.get(e.eventId) === 0).sort(byDepth);
  const ordered: Checked[] = [];
  while (ready.length > 0) {
    const next = ready.shift()!;
    ordered.push(next);
    for (const child of children.get(next.eventId) ?? []) {
      const left = waiting.get(child)! - 1;
      waiting.set(child, left);
      if (left === 0) {
        ready.push(byId.get(child)!);
        ready.sort(byDepth);
      }
    }
  }
  const done = new Set(ordered.map((e) => e.eventId));
  return { ordered, cyclic: events.filter((e) => !done.has(e.eventId)) };
}

function byDepth(a: Checked, b: Checked): number {
  return (a.event.depth ?? 0) - (b.event.depth ?? 0) || a.event.origin_server_ts - b.event.origin_server_ts || (a.eventId < b.eventId ? -1 : 1);
}

/** Steps 5–7 for one event, under the room's lock; persists the plan. */
async function receiveOne(host: ReceiveHost, room: RoomState, c: Checked): Promise<PduOutcome> {
  const { ctx } = host;
  const { eventId, roomId, event } = c;
  const version = room.version;
  const pdu: PDU = { ...event, event_id: eventId };
  const depth = event.depth ?? 0;

  const lookupKeys: [string, string][] = [['m.room.create', ''], ...authEventTypesFor(pdu, room.rules)];
  const ownKey: [string, string] | undefined = typeof event.state_key === 'string' ? [event.type, event.state_key] : undefined;
  const loaded = await ctx.storage.read(async (t) => {
    if (await t.events.has(eventId)) return undefined;
    const auth = await t.events.getMany(event.auth_events);
    const prevRecords = await t.events.getMany(event.prev_events);
    const prevs: { id: string; group: number; state: StateMap }[] = [];
    for (const prevId of event.prev_events) {
      const groups = prevRecords.has(prevId) ? await t.eventState.get(prevId) : undefined;
      if (groups) prevs.push({ id: prevId, group: groups.after, state: await host.caches.stateGroup(t, groups.after) });
    }
    // With one parent the state before is that parent's: the events step 6 reads from it (and the state
    // event this one replaces) come in this same transaction instead of one read each.
    const wanted = prevs.length === 1 ? stateLookupIds(prevs[0]!.state, [...lookupKeys, ...(ownKey ? [ownKey] : [])]) : [];
    const stateEvents = wanted.length > 0 ? await t.events.getMany(wanted) : undefined;
    return { auth, prevRecords, prevs, wanted, stateEvents };
  });
  if (!loaded) return { eventId, roomId, outcome: 'duplicate' };
  const missing = [...event.prev_events.filter((id) => !loaded.prevRecords.has(id)), ...event.auth_events.filter((id) => !loaded.auth.has(id))];
  if (missing.length > 0) return { eventId, roomId, outcome: 'missingPrevs', missing: [...new Set(missing)] };

  const rejected = async (reason: string): Promise<PduOutcome> => {
    await host.persist(room, { eventId, event, pdu, depth, status: 'rejected', reason });
    return { eventId, roomId, outcome: 'rejected', reason };
  };

  // 5. Auth against the event's own auth events.
  const authEvents: PDU[] = [];
  for (const id of event.auth_events) {
    const record = loaded.auth.get(id)!;
    if (record.rejected) return rejected(`auth event ${id} was rejected`);
    if (record.roomId !== roomId) return rejected(`auth event ${id} is in another room`);
    authEvents.push(authFormOf(record, version));
  }
  if (room.rules.roomIdFromCreateEvent) authEvents.push(room.createEvent);
  const ownAuth = checkEventAuth(pdu, authEvents, version);
  if (!ownAuth.allowed) return rejected(ownAuth.reason);

  // 6. Auth against the state before the event (a resolution when it merges branches). Prev events known
  // only as outliers (from a join's auth chain) have no state here: the others' states stand in, or current
  // state when none has one.
  const getEvent = eventLoader(host, version, pdu, loaded.stateEvents && { ids: loaded.wanted, records: loaded.stateEvents });
  const states = loaded.prevs.length > 0 ? loaded.prevs.map((p) => p.state) : [room.stateIds()];
  const stateBefore = states.length === 1 ? states[0]! : await resolveState(version, states, getEvent);
  const beforeLookup = await stateLookup(stateBefore, lookupKeys, getEvent);
  const beforeAuth = checkEventAuth(pdu, pickAuthEvents(pdu, beforeLookup, room.rules), version);
  if (!beforeAuth.allowed) return rejected(beforeAuth.reason);

  const key = typeof event.state_key === 'string' ? stateKeyOf(event.type, event.state_key) : undefined;
  let unsigned: Record<string, unknown> | undefined;
  const replacedId = key === undefined ? undefined : stateBefore.get(key);
  if (replacedId !== undefined) {
    const replaced = await getEvent(replacedId);
    if (replaced) unsigned = { prev_content: replaced.content, prev_sender: replaced.sender, replaces_state: replacedId };
  }
  const stored: PDU = unsigned ? { ...event, unsigned } : event;
  const prevGroup = loaded.prevs[0]?.group;
  const before = loaded.prevs.length === 1 ? { group: prevGroup! } : { state: stateBefore, base: prevGroup ?? room.stateGroup };

  // 7. Soft fail against current state: kept (others may build on it) but not shown or built on.
  const currentAuth = checkEventAuth(pdu, pickAuthEvents(pdu, room.lookup, room.rules), version);
  if (!currentAuth.allowed) {
    await host.persist(room, { eventId, event: stored, pdu, depth, key, status: 'softFailed', before });
    return { eventId, roomId, outcome: 'softFailed', reason: currentAuth.reason };
  }

  // The forward extremities are the DAG's tips: this event replaces its parents; no other branch is dropped.
  const parents = new Set(event.prev_events);
  const extremities = new Map([...room.extremities].filter(([id]) => !parents.has(id)));
  const otherTips = [...extremities.keys()];
  extremities.set(eventId, depth);
  let resolved: WritePlan['resolved'];
  if (otherTips.length > 0) {
    const stateAfter: StateMap = new Map(stateBefore);
    if (key !== undefined) stateAfter.set(key, eventId);
    const tipStates = await ctx.storage.read(async (t) => {
      const out: StateMap[] = [];
      for (const id of otherTips) {
        const groups = await t.eventState.get(id);
        if (groups) out.push(await host.caches.stateGroup(t, groups.after));
      }
      return out;
    });
    const state = await resolveState(version, [stateAfter, ...tipStates], getEvent);
    const currentIds = room.stateIds();
    const brought = [...state].filter(([k, id]) => id !== eventId && currentIds.get(k) !== id).map(([, id]) => id);
    resolved = { state, records: await ctx.storage.read((t) => t.events.getMany(brought)) };
  }

  // A received redaction is carried out if the target is here and the rules allow it.
  const targetId = event.type === 'm.room.redaction' ? redactionTarget(event, version) : undefined;
  const inWrite =
    targetId === undefined
      ? undefined
      : async (t: Parameters<NonNullable<WritePlan['inWrite']>>[0]): Promise<EventRecord | undefined> => {
          const target = await t.events.get(targetId);
          if (!target || target.roomId !== roomId || target.redactedBy || target.event.type === 'm.room.create') return undefined;
          const levels = beforeLookup('m.room.power_levels', '');
          return redactionPermitted(event, target.event, levels, room.createEvent, version) ? target : undefined;
        };

  await host.persist(room, { eventId, event: stored, pdu, depth, key, status: 'timeline', before, extremities, resolved, inWrite });
  return { eventId, roomId, outcome: 'accepted' };
}

/** A cached loader of stored events in their auth form, for state resolution. */
function eventLoader(
  host: ReceiveHost,
  version: string,
  pending?: PDU,
  preloaded?: { ids: readonly string[]; records: ReadonlyMap<string, EventRecord> },
): (eventId: string) => Promise<PDU | undefined> {
  const cache = new Map<string, PDU | undefined>();
  for (const id of preloaded?.ids ?? []) {
    const record = preloaded!.records.get(id);
    cache.set(id, record && !record.rejected ? authFormOf(record, version) : undefined);
  }
  if (pending) cache.set(pending.event_id as string, pending);
  return async (eventId) => {
    if (cache.has(eventId)) return cache.get(eventId);
    const record = await host.ctx.storage.read((t) => t.events.get(eventId));
    const pdu = record && !record.rejected ? authFormOf(record, version) : undefined;
    cache.set(eventId, pdu);
    return pdu;
  };
}

/** The event IDs `keys` name in `state` (what stateLookup will load). */
function stateLookupIds(state: StateMap, keys: readonly [string, string][]): string[] {
  const ids = new Set<string>();
  for (const [type, stateKey] of keys) {
    const id = state.get(stateKeyOf(type, stateKey));
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}

/** A lookup over a state map, preloaded with the entries an auth check will ask for (`keys` includes the create event's). */
async function stateLookup(
  state: StateMap,
  keys: [string, string][],
  getEvent: (id: string) => Promise<PDU | undefined>,
): Promise<(type: string, stateKey: string) => PDU | undefined> {
  const found = new Map<string, PDU>();
  for (const [type, stateKey] of keys) {
    const k = stateKeyOf(type, stateKey);
    const id = state.get(k);
    const event = id === undefined ? undefined : await getEvent(id);
    if (event) found.set(k, event);
  }
  return (type, stateKey) => found.get(stateKeyOf(type, stateKey));
}
