/**
 * The one write step of the room engine (Conduit's append_pdu, Synapse's
 * persist_events): a local send (build, sign, authorise) and a received event
 * (the receive checks in receive.ts) each end in a WritePlan, and `persist`
 * writes it in one storage transaction: the event (its row carries its DAG
 * edges and state groups), new state groups, forward extremities, current
 * state, memberships, a redaction, the client's transaction ID and the outbox
 * entries that carry a local event to the other servers in the room. Only
 * after the write commits does it bring the room's in-memory state
 * (room-state.ts) up to date, so a failed write leaves storage and cache as
 * they were.
 *
 * Rejected and soft-failed events are written too, as outliers (kept so they
 * are not fetched again, never shown or built on), by the same function.
 */
import { splitStateKey, stateKeyOf, type PDU, type StateMap } from '../../core/index.js';
import type { EventRecord, Membership, WriteTxn } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import type { ClientTxnMemory, TxnKey } from './client-txns.js';
import { authFormOf, stateEntryOf, type RoomState } from './room-state.js';
import { forgottenRoomKey } from './types.js';

const MEMBER_PROFILE_MEMBERSHIPS = new Set(['join', 'invite', 'knock']);

export interface WritePlan {
  eventId: string;
  /** The event as it will be stored: signed, `unsigned` included, no `event_id`. */
  event: PDU;
  /** The auth rules' view: `event_id` attached, no `unsigned`. */
  pdu: PDU;
  depth: number;
  /** `stateKeyOf(type, state_key)` for state events. */
  key?: string;
  /** timeline: part of the room. softFailed / rejected: stored as an outlier only. */
  status: 'timeline' | 'softFailed' | 'rejected';
  /** Why a rejected event failed auth. */
  reason?: string;
  /**
   * The state before the event: a stored group, or a state map stored as a
   * delta against `base` (a merge point, or a local send on a forked room).
   * Absent for rejected events, which get no state.
   */
  before?: { group: GroupRef } | { state: StateMap; base?: GroupRef };
  /** timeline: the room's forward extremities after the event, with depths. */
  extremities?: Map<string, number>;
  /**
   * timeline: the room's current state after the event when it is not "the
   * state after this event" (the event joined a fork whose other tips stay:
   * state resolution over all tips), with the records it brings in.
   */
  resolved?: { state: StateMap; records: Map<string, EventRecord> };
  /** Runs first inside the write: local rules that read storage; returns a redaction target to mark. */
  inWrite?: (t: WriteTxn) => Promise<EventRecord | undefined>;
  /** The client transaction of a local send (recorded; a replay answers with the first event). */
  txn?: TxnKey;
  /** Servers the event goes to through the outbox (local events: the other servers with joined members). */
  destinations?: readonly string[];
}

export type Persisted = { record: EventRecord } | { replayedEventId: string };

/**
 * A stored state group, or one a write in progress creates: the state after
 * a batch event (`after`), or the room's current state once that event is
 * written (`current`: a resolution over several tips). Received batches
 * (receive.ts) refer to groups of events written earlier in the same write.
 */
export type GroupRef = number | { after: string } | { current: string };

/** The state groups a write created, by event ID, for resolving GroupRefs of later events. */
export type CreatedGroups = Map<string, { after: number; current?: number }>;

/** A plan with what it changes, computed against the room's state just before it. */
export interface Staged {
  plan: WritePlan;
  /** The change to current state (timeline events only). */
  delta: Map<string, string | null>;
  /** Member rows to write, and whether each un-forgets the room for a local user. */
  memberships: { userId: string; membership: Membership; eventId: string; unforget: boolean }[];
}

/** What one plan's write produced. */
export interface Written {
  record: EventRecord;
  /** The room's current state group after it (timeline events). */
  current?: number;
  /** The event a redaction redacted. */
  redacted?: EventRecord;
}

/** The event as it travels between servers: no `unsigned` (it is each server's own annotation). */
export function federationForm(event: PDU): PDU {
  const { unsigned: _unsigned, event_id: _eventId, ...wire } = event;
  return wire as PDU;
}

export function resolveGroup(ref: GroupRef, created: CreatedGroups): number {
  if (typeof ref === 'number') return ref;
  const groups = created.get('after' in ref ? ref.after : ref.current);
  const group = groups && ('after' in ref ? groups.after : groups.current);
  if (group === undefined) throw new Error(`state group of ${JSON.stringify(ref)} is not written yet`);
  return group;
}

/** Computes a plan's change to current state (against `room` as it stands before the plan) and the member rows it writes. */
export function stage(ctx: HomeserverContext, room: RoomState, plan: WritePlan): Staged {
  const { eventId, key } = plan;
  const delta = new Map<string, string | null>();
  if (plan.status === 'timeline') {
    if (plan.resolved) {
      const currentIds = room.stateIds();
      for (const [k, id] of plan.resolved.state) if (currentIds.get(k) !== id) delta.set(k, id);
      for (const k of currentIds.keys()) if (!plan.resolved.state.has(k)) delta.set(k, null);
    } else if (key !== undefined) {
      delta.set(key, eventId);
    }
  }
  const memberships: Staged['memberships'] = [];
  for (const [k, id] of delta) {
    if (id === null || splitStateKey(k)[0] !== 'm.room.member') continue;
    const pdu = id === eventId ? plan.pdu : recordPdu(plan.resolved?.records.get(id), room.version);
    const membership = pdu?.content.membership;
    if (!pdu || typeof membership !== 'string') continue;
    const userId = pdu.state_key as string;
    const before = room.membershipOf(userId);
    const local = userId.slice(userId.indexOf(':') + 1) === ctx.serverName;
    const unforget = (before === 'leave' || before === 'ban') && MEMBER_PROFILE_MEMBERSHIPS.has(membership) && local;
    memberships.push({ userId, membership: membership as Membership, eventId: id, unforget });
  }
  return { plan, delta, memberships };
}

function recordPdu(record: EventRecord | undefined, version: string): PDU | undefined {
  return record && authFormOf(record, version);
}

/**
 * Whether a plan's writes touch nothing another plan's do (no state group, current state, membership,
 * redaction, outbox or counter other than the stream's): such plans of a batch are issued together, so
 * IndexedDB gets their requests without a round trip between each.
 */
export function writesIndependently(staged: Staged): boolean {
  const { plan } = staged;
  return (
    plan.key === undefined &&
    !plan.resolved &&
    !plan.inWrite &&
    !plan.txn &&
    !plan.destinations?.length &&
    staged.memberships.length === 0 &&
    (plan.status === 'rejected' || 'group' in plan.before!)
  );
}

/**
 * Writes one staged plan inside `t`; groups it creates go into `created`. `extremities: false` leaves the
 * room's forward extremities to a later plan of the same write.
 */
export async function writeStaged(t: WriteTxn, roomId: string, staged: Staged, created: CreatedGroups, options: { extremities?: boolean } = {}): Promise<Written> {
  const { plan, delta } = staged;
  const { eventId, key } = plan;
  if (plan.status === 'rejected') {
    const record = await t.events.add({ eventId, roomId, event: plan.event, depth: plan.depth, outlier: true, rejected: plan.reason ?? 'rejected' });
    return { record };
  }
  const target = plan.inWrite ? await plan.inWrite(t) : undefined;
  const spec = plan.before!;
  const before =
    'group' in spec ? resolveGroup(spec.group, created) : await t.stateGroups.createFromState(roomId, spec.state, spec.base === undefined ? undefined : resolveGroup(spec.base, created));
  // Known at once for an event that changes no state: later plans issued alongside this one may build on it.
  if (key === undefined && !plan.resolved) created.set(eventId, { after: before, current: before });
  const outlier = plan.status === 'softFailed';
  const after = key === undefined ? before : await t.stateGroups.create(roomId, new Map([[key, eventId]]), before);
  // The state groups ride on the event's row: one request for a message event.
  const stateGroups = { before, after };
  const record = await t.events.add({ eventId, roomId, event: plan.event, depth: plan.depth, stateGroups, ...(outlier ? { outlier, softFailed: true } : {}) });
  created.set(eventId, { after });
  if (outlier) return { record };

  if (options.extremities !== false) await t.dag.setExtremities(roomId, [...plan.extremities!.keys()]);
  const current = plan.resolved ? await t.stateGroups.createFromState(roomId, plan.resolved.state, after) : after;
  created.set(eventId, { after, current });
  if (delta.size > 0) await t.currentState.apply(roomId, delta);
  for (const m of staged.memberships) {
    await t.memberships.set({ roomId, userId: m.userId, membership: m.membership, eventId: m.eventId });
    if (m.unforget) await t.meta.delete(forgottenRoomKey(m.userId, roomId));
  }
  const redacted = target ? await t.events.update(target.eventId, { redactedBy: eventId }) : undefined;
  for (const destination of plan.destinations ?? []) {
    await t.outbound.enqueue(destination, { pdu: federationForm(plan.event) } as never);
  }
  // Fails the write with EXISTS if the client's transaction ID was used already (no read first).
  if (plan.txn) await t.transactionIds.add({ ...plan.txn, eventId, response: { event_id: eventId } });
  return { record, current, redacted };
}

/**
 * Brings a room's in-memory state up to date with a staged timeline plan
 * once written (or, for a batch in progress, once planned). `recordOf` gives
 * the record of each event the plan puts into current state.
 */
export function applyStaged(room: RoomState, staged: Staged, recordOf: (eventId: string) => EventRecord | undefined, redacted?: EventRecord): void {
  const { plan, delta } = staged;
  if (plan.status !== 'timeline') return;
  room.extremities.clear();
  for (const [id, depth] of plan.extremities!) room.extremities.set(id, depth);
  for (const [k, id] of delta) {
    if (id === null) room.state.delete(k);
    else {
      const record = recordOf(id) ?? plan.resolved?.records.get(id);
      if (record) room.state.set(k, stateEntryOf(record, room.version));
    }
  }
  if (redacted) refreshRedacted(room, redacted);
}

export async function persist(ctx: HomeserverContext, room: RoomState, plan: WritePlan, txns: ClientTxnMemory): Promise<Persisted> {
  const staged = stage(ctx, room, plan);
  const outcome = await ctx.storage
    .write(async (t) => ({ replayed: false as const, written: await writeStaged(t, room.roomId, staged, new Map()) }))
    .catch(async (error: unknown) => {
      // A replay the in-memory map no longer knows: the earlier event is the answer.
      const txn = plan.txn;
      if (txn && (error as { code?: unknown } | null)?.code === 'EXISTS') {
        const priorId = (await ctx.storage.read((t) => t.transactionIds.get(txn.userId, txn.deviceId, txn.txnId)))?.eventId;
        if (priorId !== undefined) return { replayed: true as const, eventId: priorId };
      }
      throw error;
    });
  if (outcome.replayed) return { replayedEventId: outcome.eventId };
  const { record, current, redacted } = outcome.written;
  if (plan.status !== 'timeline') return { record };

  // Committed: bring the cache up to date.
  room.stateGroup = current;
  applyStaged(room, staged, (id) => (id === plan.eventId ? record : undefined), redacted);
  if (plan.txn) txns.remember(plan.eventId, plan.txn);
  return { record };
}

/** After a redaction committed: a redacted current-state event is seen redacted by the auth rules. */
export function refreshRedacted(room: RoomState, redacted: EventRecord): void {
  const { type, state_key: stateKey } = redacted.event;
  if (typeof stateKey !== 'string') return;
  const key = stateKeyOf(type, stateKey);
  if (room.state.get(key)?.record.eventId === redacted.eventId) room.state.set(key, stateEntryOf(redacted, room.version));
}

/** The other servers with joined members in the room: where a local event goes. */
export function remoteServersOf(room: RoomState, ownServer: string, extra: readonly string[] = []): string[] {
  const servers = new Set<string>();
  for (const userId of [...room.members('join'), ...extra]) {
    const server = userId.slice(userId.indexOf(':') + 1);
    if (server !== ownServer) servers.add(server);
  }
  return [...servers];
}
