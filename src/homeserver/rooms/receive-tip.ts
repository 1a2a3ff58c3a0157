/**
 * The receive path's lane for the commonest push: one PDU whose only parent
 * is the room's only forward extremity (a peer's next message in a room that
 * is not forked). Everything the receive checks read is then in memory, so
 * the event costs one storage transaction, its write, and no read:
 *
 * - whether it is known: every event stored or updated since boot is
 *   remembered (RecentEvents, bounded, fed by the storage's write observer);
 * - its parent: the room's tip, written since boot, so remembered too;
 * - the state before it: the room's current state, which with one extremity
 *   is the state after that extremity (RoomState.load relies on the same);
 * - its auth events and the state events the auth rules look up: entries of
 *   that current state.
 *
 * The checks are receive.ts's own, in the same order (format and event ID,
 * known events dropped before any signature work, signatures and content
 * hash, auth against auth events, against the state before, soft fail), run
 * by `checkInBatch` against a view of the room that answers from memory and
 * gives up (MemoryMiss) where memory cannot answer; persist.ts writes the
 * plan. Whatever this lane does not take — several PDUs, a fork, a parent
 * not written since boot, an auth event outside current state, a bad
 * signature or content hash, a failed write — goes the general path
 * (`receivePdus`), which reuses the format and signature checks done here.
 *
 * An event not remembered may still be stored (before boot, or evicted), but
 * with the room's tip as its parent only as an outlier (a timeline event
 * would have replaced its parent as the tip): a rejected or soft-failed
 * event sent again. Its write then fails on the taken event ID, and the
 * general path reports the duplicate.
 */
import type { PDU, StateMap } from '../../core/index.js';
import type { EventRecord, Storage } from '../../storage/types.js';
import type { ClientTxnMemory } from './client-txns.js';
import { persist, type GroupRef, type WritePlan } from './persist.js';
import { checkFormatOnce, checkInBatch, roomIdOf, verifyAhead, type CheckView, type PduOutcome, type ReceiveHost } from './receive.js';
import type { RoomState, StateEntry } from './room-state.js';

/** Events stored or updated since boot, newest last, at most `limit` of them. */
export class RecentEvents {
  private readonly records = new Map<string, EventRecord>();

  constructor(private readonly limit = 1_024) {}

  /** Remembers what each committed write stored; returns the unsubscribe function (a no-op without an observer). */
  follow(storage: Storage): () => void {
    return storage.observe?.((written) => this.remember(written.events)) ?? (() => undefined);
  }

  remember(records: readonly EventRecord[]): void {
    for (const record of records) {
      this.records.delete(record.eventId);
      this.records.set(record.eventId, record);
    }
    while (this.records.size > this.limit) this.records.delete(this.records.keys().next().value!);
  }

  get(eventId: string): EventRecord | undefined {
    return this.records.get(eventId);
  }
}

/** What memory cannot answer: the event goes the general path. */
class MemoryMiss extends Error {}

/** The single tip whose child `event` is, when the room is not forked and that tip is remembered. */
function tipParent(room: RoomState, recent: RecentEvents, event: PDU): EventRecord | undefined {
  if (room.extremities.size !== 1 || room.stateGroup === undefined || event.prev_events.length !== 1) return undefined;
  const parent = event.prev_events[0]!;
  return room.extremities.has(parent) ? recent.get(parent) : undefined;
}

/** The room as checkInBatch sees it, answered from memory: the cached room, its current state and the tip. */
class MemoryView implements CheckView {
  /** Current state by event ID. */
  private readonly byId = new Map<string, StateEntry>();
  plan: WritePlan | undefined;

  constructor(
    readonly current: RoomState,
    private readonly tip: EventRecord,
  ) {
    for (const entry of current.state.values()) this.byId.set(entry.record.eventId, entry);
  }

  get currentGroup(): GroupRef | undefined {
    return this.current.stateGroup;
  }

  async recordsOf(ids: readonly string[]): Promise<Map<string, EventRecord>> {
    const out = new Map<string, EventRecord>();
    for (const id of ids) {
      const record = this.byId.get(id)?.record ?? (id === this.tip.eventId ? this.tip : undefined);
      if (!record) throw new MemoryMiss(id);
      out.set(id, record);
    }
    return out;
  }

  async statesAfter(ids: readonly string[]): Promise<{ id: string; state: StateMap; ref: GroupRef }[]> {
    return ids.map((id) => {
      // With one extremity, the state after it is the current state.
      if (id !== this.tip.eventId || this.current.stateGroup === undefined) throw new MemoryMiss(id);
      return { id, state: this.current.stateIds(), ref: this.current.stateGroup };
    });
  }

  /** The auth rules' form of a current state event (the only events the checks of a child of the tip look up). */
  readonly getEvent = async (eventId: string): Promise<PDU | undefined> => {
    const entry = this.byId.get(eventId);
    if (!entry) throw new MemoryMiss(eventId);
    return entry.pdu;
  };

  add(plan: WritePlan): void {
    if (this.plan) throw new Error('one plan per view');
    this.plan = plan;
  }
}

/**
 * Receives one PDU from memory and one write, or answers undefined: then the
 * general path takes it (see the module header for which ones).
 */
export async function receiveOnTip(host: ReceiveHost, recent: RecentEvents, txns: ClientTxnMemory, raw: unknown, origin: string): Promise<PduOutcome | undefined> {
  const roomId = roomIdOf(raw);
  if (roomId === undefined) return undefined;
  const cached = await host.room(roomId);
  if (!cached) return undefined;
  const formed = checkFormatOnce(raw as object, cached.version);
  if ('failure' in formed) return undefined;
  const { wire, eventId } = formed;
  if (recent.get(eventId)) return { eventId, roomId, outcome: 'duplicate' };
  if (!tipParent(cached, recent, wire)) return undefined;

  const verified = await verifyAhead(host.keyOf, raw as object, wire, cached.version);
  // Refused or redacted events are the general path's (which takes this verification's result).
  if ('failure' in verified || !verified.contentHashOk) return undefined;

  return host.lock.run(roomId, async () => {
    const room = await host.loadRoom(roomId);
    if (!room) return undefined;
    if (recent.get(eventId)) return { eventId, roomId, outcome: 'duplicate' } as PduOutcome;
    // The room may have moved on while the signature was checked.
    const tip = tipParent(room, recent, wire);
    if (!tip) return undefined;
    const view = new MemoryView(room, tip);
    let outcome: PduOutcome;
    try {
      outcome = await checkInBatch(view, { index: 0, eventId, roomId, event: wire });
    } catch (error) {
      if (error instanceof MemoryMiss) return undefined;
      throw error;
    }
    if (!view.plan) return undefined;
    try {
      await persist(host.ctx, room, view.plan, txns);
    } catch {
      // Nothing was written (a stored outlier's taken ID, a failed write): the general path decides.
      return undefined;
    }
    if (outcome.outcome !== 'accepted') host.ctx.log.warn(`pdu ${eventId} from ${origin} ${outcome.outcome}: ${outcome.reason}`);
    return outcome;
  });
}
