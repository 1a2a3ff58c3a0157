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
 *    A catch-up page, whose signatures identifyPdus began ahead, is not read
 *    for them: its write's inserts refuse a stored event, and the batch is
 *    then checked again with the read.
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
 * run of fetched events goes in parent-first whatever order it came in, and
 * each room's part of it is checked against a working copy of the room and
 * written in one storage write (receiveBatch below). What
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
import { applyStaged, stage, writesIndependently, writeStaged, type CreatedGroups, type GroupRef, type Staged, type WritePlan, type Written } from './persist.js';
import { authFormOf, RoomState } from './room-state.js';
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
}

/** A PDU past steps 1–2: `raw` is the caller's parsed object, `wire` its signed form. */
interface Formed {
  index: number;
  eventId: string;
  roomId: string;
  version: string;
  wire: PDU;
  raw: object;
}

/**
 * What the batch knows of its own events' storage before it takes the room's lock: none was stored when
 * receivePdus read them (or, `assumed`, none is taken to be: see receivePdus), and `storedSince` holds those a
 * write stored since (the storage's observer).
 */
interface BatchAbsence {
  storedSince: ReadonlyMap<string, EventRecord>;
  /** Not read: the write's inserts refuse an event stored after all (EXISTS), and the batch is then redone with a read. */
  assumed?: boolean;
}

/** A PDU past steps 1–4. */
export interface Checked {
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
  const formed: Formed[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < pdus.length; i++) {
    const raw = pdus[i];
    const roomId = roomIdOf(raw);
    if (roomId === undefined) {
      drop(i, { outcome: 'invalid', reason: 'a PDU must be an object with a room_id (or a v12 create event)' });
      continue;
    }
    try {
      if (!formatChecked.has(raw as object)) checkJsonValue(raw);
    } catch (error) {
      drop(i, { roomId, outcome: 'invalid', reason: error instanceof MatrixError ? error.message : String(error) });
      continue;
    }
    const room = await host.room(roomId);
    if (!room) {
      drop(i, { roomId, outcome: 'unknownRoom', reason: `room ${roomId} is not known here` });
      continue;
    }
    const formed1 = checkFormatOnce(raw as object, room.version);
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
    formed.push({ index: i, eventId, roomId, version: room.version, wire, raw: raw as object });
  }
  // Events another write stores from now on (the outbox's /send of the same events, a concurrent chunk): with
  // the read below, the batch knows under the room's lock which of its events are stored without reading them
  // again. Without the storage's observer the batch reads them again under the lock.
  const storedSince = ctx.storage.observe ? new Map<string, EventRecord>() : undefined;
  const unobserve = storedSince && ctx.storage.observe?.((written) => {
    for (const record of written.events) storedSince.set(record.eventId, record);
  });
  try {
    // Signatures begun ahead (a catch-up page, identifyPdus) leave the read of which events are stored nothing to
    // save: it is skipped, one request per event less, and the write's inserts refuse what is stored after all.
    const ahead = new Map(formed.map((f) => [f, verifiedAhead(f.raw, f.version)]));
    const assumed = storedSince !== undefined && formed.length > 0 && [...ahead.values()].every((v) => v !== undefined);
    const known = assumed ? new Set<string>() : await ctx.storage.read(async (t) => t.events.storedIds(formed.map((f) => f.eventId)));

    // 3–4. Signatures and content hashes, concurrently (begun already for a catch-up page: verifyAhead).
    const fresh = formed.filter((f) => {
      if (!known.has(f.eventId)) return true;
      outcomes[f.index] = { eventId: f.eventId, roomId: f.roomId, outcome: 'duplicate' };
      return false;
    });
    const verified = await Promise.all(fresh.map((f) => ahead.get(f) ?? verifySigned(host.keyOf, f.wire, f.version)));
    const absent = storedSince && { storedSince, assumed };
    await receiveChecked(host, fresh, verified, absent, origin, outcomes, drop);
  } finally {
    unobserve?.();
  }
  return outcomes;
}

/** Steps 5–7 for the PDUs that passed 1–4, room by room; `absent`: the batch's events were not stored but for `storedSince`. */
async function receiveChecked(
  host: ReceiveHost,
  fresh: readonly Formed[],
  verified: readonly Awaited<ReturnType<typeof verifySigned>>[],
  absent: BatchAbsence | undefined,
  origin: string,
  outcomes: PduOutcome[],
  drop: (i: number, outcome: PduOutcome) => void,
): Promise<void> {
  const { ctx } = host;
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

  // 5–7, room by room, parents first, each room's batch in one write.
  for (const [roomId, checked] of byRoom) {
    const { ordered, cyclic } = parentsFirst(checked);
    for (const c of cyclic) drop(c.index, { eventId: c.eventId, roomId, outcome: 'invalid', reason: 'prev_events form a cycle' });
    await host.lock.run(roomId, async () => {
      const room = await host.loadRoom(roomId);
      if (!room) throw new Error(`room ${roomId} vanished`);
      let results: Map<string, PduOutcome>;
      try {
        results = await receiveBatch(host, room, ordered, absent).catch((error: unknown) => {
          // Some event of the batch was stored after all (taken as absent unread): again, reading which.
          if (!absent?.assumed || (error as { code?: unknown } | null)?.code !== 'EXISTS') throw error;
          return receiveBatch(host, room, ordered, undefined);
        });
      } catch (error) {
        // The batch's write failed: nothing of it was stored (but what a redaction's early write kept). Each event
        // on its own then, so one that cannot be stored does not sink the others.
        ctx.log.warn(`batch of ${ordered.length} PDUs from ${origin} in ${roomId} failed as a whole; writing them one by one`, error);
        results = new Map();
        const known = absent?.assumed ? undefined : absent;
        for (const c of ordered) {
          try {
            for (const [id, outcome] of await receiveBatch(host, room, [c], known)) results.set(id, outcome);
          } catch (single) {
            results.set(c.eventId, { eventId: c.eventId, roomId, outcome: 'invalid', reason: `not stored: ${single instanceof Error ? single.message : String(single)}` });
          }
        }
      }
      for (const c of ordered) {
        const outcome = results.get(c.eventId)!;
        outcomes[c.index] = outcome;
        if (outcome.outcome === 'rejected' || outcome.outcome === 'softFailed' || outcome.outcome === 'invalid') {
          ctx.log.warn(`pdu ${c.eventId} from ${origin} ${outcome.outcome}: ${outcome.reason}`);
        }
      }
    });
  }
}

/**
 * Steps 1–2 already run on a parsed PDU, by its object: catch-up asks for the
 * IDs of the events it fetched (identifyPdus) before it hands the same
 * objects to receivePdus, which then does not check and hash them twice.
 * The objects are the caller's parsed JSON, not changed in between.
 */
const formatChecked = new WeakMap<object, { version: string; result: ReturnType<typeof checkFormat> }>();

export function checkFormatOnce(raw: object, version: string): ReturnType<typeof checkFormat> {
  const hit = formatChecked.get(raw);
  if (hit && hit.version === version) return hit.result;
  const result = checkFormat(raw, version);
  formatChecked.set(raw, { version, result });
  return result;
}

/**
 * The event ID of each PDU of the room (steps 1–2, nothing stored), undefined where the format check fails.
 * Steps 3–4 (signatures, content hash) of the well-formed ones begin here too, without being awaited: catch-up
 * asks for the IDs of each page as it arrives, so a page's signatures are checked while the next page is on
 * the wire, where the walk back would otherwise leave this tab idle; receivePdus takes the results.
 */
export async function identifyPdus(host: ReceiveHost, roomId: string, pdus: readonly unknown[]): Promise<(string | undefined)[]> {
  const room = await host.room(roomId);
  return pdus.map((raw) => {
    if (!room || roomIdOf(raw) !== roomId) return undefined;
    const formed = checkFormatOnce(raw as object, room.version);
    if ('failure' in formed) return undefined;
    verifyAhead(host.keyOf, raw as object, formed.wire, room.version);
    return formed.eventId;
  });
}

/** Signature checks begun by identifyPdus, by the caller's parsed object (which is not changed in between, as for formatChecked). */
const verifications = new WeakMap<object, { version: string; result: ReturnType<typeof verifySigned> }>();

export function verifyAhead(keyOf: KeyOf, raw: object, wire: PDU, version: string): ReturnType<typeof verifySigned> {
  const hit = verifications.get(raw);
  if (hit?.version === version) return hit.result;
  const result = verifySigned(keyOf, wire, version);
  // Awaited (and its failure seen) by receivePdus; an event never handed on must not leave an unhandled rejection.
  result.catch(() => undefined);
  verifications.set(raw, { version, result });
  return result;
}

/** The signature check identifyPdus began for this object, if any; taken once. */
function verifiedAhead(raw: object, version: string): ReturnType<typeof verifySigned> | undefined {
  const hit = verifications.get(raw);
  if (!hit || hit.version !== version) return undefined;
  verifications.delete(raw);
  return hit.result;
}

/** The room a PDU is for: its room_id, or for a create event of a room version without one, the ID its hash gives. */
export function roomIdOf(raw: unknown): string | undefined {
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

/** How a batch event looks to the batch's later events: its record (not yet written) and the state after it. */
interface BatchEntry {
  record: EventRecord;
  /** Absent for rejected events, which get no state. */
  after?: { state: StateMap; ref: GroupRef };
}

/**
 * Steps 5–7 for a room's batch, under the room's lock, in one write. The
 * events are checked in order against a working copy of the room (current
 * state, extremities) that each accepted event moves on, and against the
 * states of earlier batch events held in memory; what lies outside the batch
 * (stored parents, their states, the state events the auth checks read) is
 * read once up front, and lazily for whatever a merge needs beyond it. The
 * plans are written in one storage write, after which the cached room takes
 * the working copy's place: nothing is visible before the commit. A
 * redaction ends a write (its effect on state must be seen by later checks).
 */
async function receiveBatch(host: ReceiveHost, room: RoomState, ordered: readonly Checked[], absent: BatchAbsence | undefined): Promise<Map<string, PduOutcome>> {
  const batch = new RoomBatch(host, room);
  await batch.preload(ordered, absent);
  const results = new Map<string, PduOutcome>();
  for (const c of ordered) {
    if (batch.stored(c.eventId)) {
      results.set(c.eventId, { eventId: c.eventId, roomId: c.roomId, outcome: 'duplicate' });
      continue;
    }
    const outcome = await checkInBatch(batch, c);
    results.set(c.eventId, outcome);
    if (outcome.outcome === 'accepted' && c.event.type === 'm.room.redaction') await batch.flush();
  }
  await batch.flush();
  return results;
}

class RoomBatch {
  private readonly ctx: HomeserverContext;
  /** The room as the batch has moved it on so far; the cached room changes only after the write. */
  private work: RoomState;
  /** The state group of `work`'s current state. */
  private group: GroupRef | undefined;
  private readonly entries = new Map<string, BatchEntry>();
  /** Stored events outside the batch, by ID (null: not stored). */
  private readonly records = new Map<string, EventRecord | null>();
  /** State after stored events (null: none recorded: an outlier). */
  private readonly states = new Map<string, { state: StateMap; ref: GroupRef } | null>();
  private readonly authForms = new Map<string, PDU | undefined>();
  private staged: Staged[] = [];
  private readonly created: CreatedGroups = new Map();
  private readonly committed = new Map<string, EventRecord>();

  constructor(
    private readonly host: ReceiveHost,
    private readonly room: RoomState,
  ) {
    this.ctx = host.ctx;
    this.work = workingCopy(room);
    this.group = room.stateGroup;
  }

  get current(): RoomState {
    return this.work;
  }

  get currentGroup(): GroupRef | undefined {
    return this.group;
  }

  /** Stored before this batch (or by a concurrent writer before the lock was taken). */
  stored(eventId: string): boolean {
    return !this.entries.has(eventId) && !!this.records.get(eventId);
  }

  /**
   * One read: which batch events are stored already (unless `absent` says:
   * receivePdus read them before the lock and watched the writes since), the
   * stored events they name, the states after their stored parents and the
   * room's tips, and the state events the auth checks will read from those
   * states.
   */
  async preload(events: readonly Checked[], absent: BatchAbsence | undefined): Promise<void> {
    const inBatch = new Set(events.map((e) => e.eventId));
    if (absent) for (const id of inBatch) this.records.set(id, absent.storedSince.get(id) ?? null);
    const outside = new Set<string>();
    const parents = new Set<string>();
    const keys = new Map<string, [string, string]>();
    for (const { event } of events) {
      for (const id of event.prev_events) {
        if (inBatch.has(id)) continue;
        outside.add(id);
        parents.add(id);
      }
      for (const id of event.auth_events) if (!inBatch.has(id)) outside.add(id);
      const pdu = event as PDU;
      for (const k of [['m.room.create', ''] as [string, string], ...authEventTypesFor(pdu, this.work.rules)]) keys.set(stateKeyOf(k[0], k[1]), k);
      if (typeof event.state_key === 'string') keys.set(stateKeyOf(event.type, event.state_key), [event.type, event.state_key]);
    }
    for (const id of this.work.extremities.keys()) if (!inBatch.has(id)) parents.add(id);
    await this.ctx.storage.read(async (t) => {
      const unread = absent ? [...outside] : [...inBatch, ...outside];
      const found = await t.events.getMany(unread);
      for (const id of unread) this.records.set(id, found.get(id) ?? null);
      const wanted = new Set<string>();
      for (const id of parents) {
        if (this.states.has(id)) continue;
        const record = found.get(id);
        const groups = record ? await t.eventState.of(record) : this.work.extremities.has(id) ? await t.eventState.get(id) : undefined;
        const state = groups ? await this.host.caches.stateGroup(t, groups.after) : undefined;
        this.states.set(id, groups && state ? { state, ref: groups.after } : null);
        if (state) for (const id2 of stateLookupIds(state, [...keys.values()])) if (!this.records.has(id2)) wanted.add(id2);
      }
      if (wanted.size > 0) {
        const lookups = await t.events.getMany([...wanted]);
        for (const id of wanted) this.records.set(id, lookups.get(id) ?? null);
      }
    });
  }

  /** Records of the named events among the batch's and the stored ones (one read for those not seen yet). */
  async recordsOf(ids: readonly string[]): Promise<Map<string, EventRecord>> {
    const unseen = ids.filter((id) => !this.entries.has(id) && !this.records.has(id));
    if (unseen.length > 0) {
      const found = await this.ctx.storage.read((t) => t.events.getMany(unseen));
      for (const id of unseen) this.records.set(id, found.get(id) ?? null);
    }
    const out = new Map<string, EventRecord>();
    for (const id of ids) {
      const record = this.entries.get(id)?.record ?? this.records.get(id);
      if (record) out.set(id, record);
    }
    return out;
  }

  /** The states after the named events, where recorded (batch events in memory; stored ones in one read). */
  async statesAfter(ids: readonly string[]): Promise<{ id: string; state: StateMap; ref: GroupRef }[]> {
    const unseen = ids.filter((id) => !this.entries.has(id) && !this.states.has(id));
    if (unseen.length > 0) {
      await this.ctx.storage.read(async (t) => {
        for (const id of unseen) {
          const record = this.records.get(id);
          const groups = record ? await t.eventState.of(record) : await t.eventState.get(id);
          const state = groups ? await this.host.caches.stateGroup(t, groups.after) : undefined;
          this.states.set(id, groups && state ? { state, ref: groups.after } : null);
        }
      });
    }
    const out: { id: string; state: StateMap; ref: GroupRef }[] = [];
    for (const id of ids) {
      const after = this.entries.has(id) ? this.entries.get(id)!.after : this.states.get(id);
      if (after) out.push({ id, ...after });
    }
    return out;
  }

  /** An event in its auth form, for state resolution and the auth checks (rejected ones read as absent). */
  readonly getEvent = async (eventId: string): Promise<PDU | undefined> => {
    if (this.authForms.has(eventId)) return this.authForms.get(eventId);
    const record = (await this.recordsOf([eventId])).get(eventId);
    const pdu = record && !record.rejected ? authFormOf(record, this.work.version) : undefined;
    this.authForms.set(eventId, pdu);
    return pdu;
  };

  /** Adds a checked event's plan to the write; later events of the batch see it (and `work` moves on). */
  add(plan: WritePlan, stateAfter?: StateMap): void {
    const staged = stage(this.ctx, this.work, plan);
    this.staged.push(staged);
    const { eventId } = plan;
    const record: EventRecord = {
      eventId,
      roomId: this.work.roomId,
      event: plan.event,
      depth: plan.depth,
      outlier: plan.status !== 'timeline',
      ...(plan.status === 'rejected' ? { rejected: plan.reason ?? 'rejected' } : {}),
      ...(plan.status === 'softFailed' ? { softFailed: true } : {}),
    };
    this.entries.set(eventId, { record, ...(stateAfter && plan.status !== 'rejected' ? { after: { state: stateAfter, ref: { after: eventId } } } : {}) });
    this.authForms.delete(eventId);
    if (plan.status !== 'timeline') return;
    applyStaged(this.work, staged, (id) => this.entries.get(id)?.record ?? this.records.get(id) ?? undefined);
    this.group = plan.resolved ? { current: eventId } : { after: eventId };
  }

  /** Writes what the batch planned in one storage write; then the cached room takes the changes. */
  async flush(): Promise<void> {
    if (this.staged.length === 0) return;
    const staged = this.staged;
    this.staged = [];
    const roomId = this.room.roomId;
    let lastTimeline = -1;
    staged.forEach((s, i) => {
      if (s.plan.status === 'timeline') lastTimeline = i;
    });
    const written = await this.ctx.storage.write(async (t) => {
      // Runs of plans that write independently go out together (one IndexedDB round trip for the run, not one per
      // request); a plan that depends on earlier writes waits for them. The extremities are written once, last.
      const out: Promise<Written>[] = [];
      for (const [i, s] of staged.entries()) {
        const options = { extremities: i === lastTimeline };
        if (!writesIndependently(s)) await Promise.all(out);
        const writing = writeStaged(t, roomId, s, this.created, options);
        writing.catch(() => undefined);
        out.push(writing);
        if (!writesIndependently(s)) await writing;
      }
      return Promise.all(out);
    });
    staged.forEach((s, i) => {
      this.committed.set(s.plan.eventId, written[i]!.record);
      const entry = this.entries.get(s.plan.eventId);
      if (entry) entry.record = written[i]!.record;
    });
    for (const { redacted } of written) {
      if (!redacted) continue;
      const entry = this.entries.get(redacted.eventId);
      if (entry) entry.record = redacted;
      else this.records.set(redacted.eventId, redacted);
      if (this.committed.has(redacted.eventId)) this.committed.set(redacted.eventId, redacted);
    }
    const recordOf = (id: string) => this.committed.get(id) ?? this.records.get(id) ?? undefined;
    staged.forEach((s, i) => {
      if (s.plan.status !== 'timeline') return;
      this.room.stateGroup = written[i]!.current;
      applyStaged(this.room, s, recordOf, written[i]!.redacted);
    });
    this.work = workingCopy(this.room);
    this.group = this.room.stateGroup;
    this.authForms.clear();
  }
}

function workingCopy(room: RoomState): RoomState {
  const copy = new RoomState(room.roomId, room.version, room.creator);
  for (const [k, entry] of room.state) copy.state.set(k, entry);
  for (const [id, depth] of room.extremities) copy.extremities.set(id, depth);
  copy.stateGroup = room.stateGroup;
  return copy;
}

/** What steps 5–7 read and where they put the plan: a batch (RoomBatch), or memory alone (receive-tip.ts). */
export type CheckView = Pick<RoomBatch, 'current' | 'currentGroup' | 'recordsOf' | 'statesAfter' | 'getEvent' | 'add'>;

/** Steps 5–7 for one event of a batch: adds its plan to the batch's write. */
export async function checkInBatch(batch: CheckView, c: Checked): Promise<PduOutcome> {
  const room = batch.current;
  const { eventId, roomId, event } = c;
  const version = room.version;
  const pdu: PDU = { ...event, event_id: eventId };
  const depth = event.depth ?? 0;
  const lookupKeys: [string, string][] = [['m.room.create', ''], ...authEventTypesFor(pdu, room.rules)];

  const prevRecords = await batch.recordsOf(event.prev_events);
  const auth = await batch.recordsOf(event.auth_events);
  const missing = [...event.prev_events.filter((id) => !prevRecords.has(id)), ...event.auth_events.filter((id) => !auth.has(id))];
  if (missing.length > 0) return { eventId, roomId, outcome: 'missingPrevs', missing: [...new Set(missing)] };

  const rejected = (reason: string): PduOutcome => {
    batch.add({ eventId, event, pdu, depth, status: 'rejected', reason });
    return { eventId, roomId, outcome: 'rejected', reason };
  };

  // 5. Auth against the event's own auth events.
  const authEvents: PDU[] = [];
  for (const id of event.auth_events) {
    const record = auth.get(id)!;
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
  const getEvent = (id: string) => (id === eventId ? Promise.resolve(pdu) : batch.getEvent(id));
  const prevs = await batch.statesAfter(event.prev_events.filter((id) => prevRecords.has(id)));
  const states = prevs.length > 0 ? prevs.map((p) => p.state) : [room.stateIds()];
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
  const prevGroup = prevs[0]?.ref;
  const before: WritePlan['before'] = prevs.length === 1 ? { group: prevGroup! } : { state: stateBefore, base: prevGroup ?? batch.currentGroup };
  // The state after, shared with the state before when the event changes no state.
  const stateAfter: StateMap = key === undefined ? stateBefore : new Map(stateBefore).set(key, eventId);

  // 7. Soft fail against current state: kept (others may build on it) but not shown or built on.
  const currentAuth = checkEventAuth(pdu, pickAuthEvents(pdu, room.lookup, room.rules), version);
  if (!currentAuth.allowed) {
    batch.add({ eventId, event: stored, pdu, depth, key, status: 'softFailed', before }, stateAfter);
    return { eventId, roomId, outcome: 'softFailed', reason: currentAuth.reason };
  }

  // The forward extremities are the DAG's tips: this event replaces its parents; no other branch is dropped.
  const parents = new Set(event.prev_events);
  const extremities = new Map([...room.extremities].filter(([id]) => !parents.has(id)));
  const otherTips = [...extremities.keys()];
  extremities.set(eventId, depth);
  let resolved: WritePlan['resolved'];
  if (otherTips.length > 0) {
    const tipStates = (await batch.statesAfter(otherTips)).map((s) => s.state);
    const state = await resolveState(version, [stateAfter, ...tipStates], getEvent);
    const currentIds = room.stateIds();
    const brought = [...state].filter(([k, id]) => id !== eventId && currentIds.get(k) !== id).map(([, id]) => id);
    resolved = { state, records: await batch.recordsOf(brought) };
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

  batch.add({ eventId, event: stored, pdu, depth, key, status: 'timeline', before, extremities, resolved, inWrite }, stateAfter);
  return { eventId, roomId, outcome: 'accepted' };
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
