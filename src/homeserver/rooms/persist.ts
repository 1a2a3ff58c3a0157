/**
 * The one write step of the room engine (Conduit's append_pdu, Synapse's
 * persist_events): a local send (build, sign, authorise) and a received event
 * (the receive checks in receive.ts) each end in a WritePlan, and `persist`
 * writes it in one storage transaction: the event and its DAG edges, its
 * state groups, forward extremities, current state, memberships, a
 * redaction, the client's transaction ID and the outbox entries that carry a
 * local event to the other servers in the room. Only after the write commits
 * does it bring the room's in-memory state (room-state.ts) up to date, so a
 * failed write leaves storage and cache as they were.
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
  before?: { group: number } | { state: StateMap; base?: number };
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

/** The event as it travels between servers: no `unsigned` (it is each server's own annotation). */
export function federationForm(event: PDU): PDU {
  const { unsigned: _unsigned, event_id: _eventId, ...wire } = event;
  return wire as PDU;
}

export async function persist(ctx: HomeserverContext, room: RoomState, plan: WritePlan, txns: ClientTxnMemory): Promise<Persisted> {
  const { eventId, key } = plan;
  const roomId = room.roomId;
  if (plan.status === 'rejected') {
    const record = await ctx.storage.write((t) =>
      t.events.add({ eventId, roomId, event: plan.event, depth: plan.depth, outlier: true, rejected: plan.reason ?? 'rejected' }),
    );
    return { record };
  }

  // The change to current state: the resolved state's difference, or this event's own key.
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
  const memberPdu = (id: string): PDU | undefined => {
    if (id === eventId) return plan.pdu;
    const record = plan.resolved?.records.get(id);
    return record && authFormOf(record, room.version);
  };

  const outcome = await ctx.storage
    .write(async (t) => {
      const target = plan.inWrite ? await plan.inWrite(t) : undefined;
      const spec = plan.before!;
      const before = 'group' in spec ? spec.group : await t.stateGroups.createFromState(roomId, spec.state, spec.base);
      const outlier = plan.status === 'softFailed';
      const record = await t.events.add({ eventId, roomId, event: plan.event, depth: plan.depth, ...(outlier ? { outlier, softFailed: true } : {}) });
      const after = key === undefined ? before : await t.stateGroups.create(roomId, new Map([[key, eventId]]), before);
      await t.eventState.set({ eventId, before, after });
      if (outlier) return { replayed: false as const, record, current: undefined, redacted: undefined };

      await t.dag.setExtremities(roomId, [...plan.extremities!.keys()]);
      const current = plan.resolved ? await t.stateGroups.createFromState(roomId, plan.resolved.state, after) : after;
      if (delta.size > 0) {
        await t.currentState.apply(roomId, delta);
        for (const [k, id] of delta) {
          if (id === null || splitStateKey(k)[0] !== 'm.room.member') continue;
          const member = memberPdu(id);
          if (member) await recordMembership(ctx, t, room, member);
        }
      }
      const redacted = target ? await t.events.update(target.eventId, { redactedBy: eventId }) : undefined;
      for (const destination of plan.destinations ?? []) {
        await t.outbound.enqueue(destination, { pdu: federationForm(plan.event) } as never);
      }
      // Fails the write with EXISTS if the client's transaction ID was used already (no read first).
      if (plan.txn) await t.transactionIds.add({ ...plan.txn, eventId, response: { event_id: eventId } });
      return { replayed: false as const, record, current, redacted };
    })
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
  if (plan.status !== 'timeline') return { record: outcome.record };

  // Committed: bring the cache up to date.
  room.stateGroup = outcome.current;
  room.extremities.clear();
  for (const [id, depth] of plan.extremities!) room.extremities.set(id, depth);
  for (const [k, id] of delta) {
    if (id === null) room.state.delete(k);
    else if (id === eventId) room.state.set(k, stateEntryOf(outcome.record, room.version));
    else {
      const record = plan.resolved?.records.get(id);
      if (record) room.state.set(k, stateEntryOf(record, room.version));
    }
  }
  if (outcome.redacted) refreshRedacted(room, outcome.redacted);
  if (plan.txn) txns.remember(eventId, plan.txn);
  return { record: outcome.record };
}

/** Records the membership a member event sets; a local user coming back un-forgets the room. */
async function recordMembership(ctx: HomeserverContext, t: WriteTxn, room: RoomState, pdu: PDU): Promise<void> {
  const userId = pdu.state_key as string;
  const membership = pdu.content.membership;
  if (typeof membership !== 'string') return;
  const before = room.membershipOf(userId);
  await t.memberships.set({ roomId: room.roomId, userId, membership: membership as Membership, eventId: pdu.event_id as string });
  const local = userId.slice(userId.indexOf(':') + 1) === ctx.serverName;
  if ((before === 'leave' || before === 'ban') && MEMBER_PROFILE_MEMBERSHIPS.has(membership) && local) {
    await t.meta.delete(forgottenRoomKey(userId, room.roomId));
  }
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
