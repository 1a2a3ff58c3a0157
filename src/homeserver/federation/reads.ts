/**
 * What another server may read of a room, over the access module (the one
 * place that decides visibility): the room gate is serverMayRead (one of its
 * users joined now), each event is filtered by isEventVisibleToServer judged
 * on the state before it. Also the DAG walks the read routes share: auth
 * chains, backward walks for backfill and get_missing_events.
 */
import { serverNameOf, splitStateKey, stateKeyOf, type PDU, type StateMap } from '../../core/index.js';
import type { EventRecord, ReadTxn } from '../../storage/types.js';
import { isEventVisibleToServer, serverMayRead } from '../access/room-access.js';
import type { HomeserverContext } from '../context.js';
import { forbidden } from '../http/errors.js';
import { federationForm } from '../rooms/persist.js';
import { ReadCaches, RoomReader } from '../sync/room-reader.js';

export class FederationReads {
  private readonly caches = new ReadCaches();

  constructor(private readonly ctx: HomeserverContext) {}

  /** Runs `fn` in one read, after checking the server may read the room (403 otherwise). */
  async inRoom<T>(roomId: string, server: string, fn: (reader: RoomReader) => Promise<T>): Promise<T> {
    return this.ctx.storage.read(async (txn) => {
      const reader = new RoomReader(txn, this.caches, this.ctx.clock.now());
      if (!(await serverMayRead(reader, roomId, server))) throw forbidden(`Server ${server} is not in room ${roomId}`);
      return fn(reader);
    });
  }

  /** The records the server may see, in the order given (Synapse's filter_events_for_server). */
  async visible(reader: RoomReader, server: string, records: readonly EventRecord[]): Promise<EventRecord[]> {
    const out: EventRecord[] = [];
    // Events of a run share their state before (the cache hands out one map per state group): decided once per map.
    const decided = new WeakMap<StateMap, boolean>();
    const befores = await statesBefore(reader, records);
    for (const [i, record] of records.entries()) {
      if (record.rejected) continue;
      const before = befores[i];
      if (!before) {
        // Outliers (a join's auth chain) carry no state here; auth events are never secret.
        out.push(record);
        continue;
      }
      const known = decided.get(before);
      if (known !== undefined) {
        if (known) out.push(record);
        continue;
      }
      const historyVisibility = await reader.stateValue(before.get(stateKeyOf('m.room.history_visibility', '')), 'history_visibility');
      const memberships: (string | undefined)[] = [];
      for (const [key, id] of before) {
        const [type, stateKey] = splitStateKey(key);
        if (type === 'm.room.member' && serverNameOf(stateKey) === server) memberships.push(await reader.stateValue(id, 'membership'));
      }
      const visible = isEventVisibleToServer({ historyVisibility, memberships });
      decided.set(before, visible);
      if (visible) out.push(record);
    }
    return out;
  }
}

/**
 * The state before each record (undefined for rejected ones and outliers). An event whose only parent is an
 * accepted non-state event just before it among `records` has that parent's state before (its state after is
 * the same map): a run of messages costs one state read, not one each. The others are read together (one
 * storage round trip for all).
 */
async function statesBefore(reader: RoomReader, records: readonly EventRecord[]): Promise<(StateMap | undefined)[]> {
  const index = new Map<string, number>();
  /** For each record, the earlier record whose state before it shares, or -1 when its own must be read. */
  const sameAs = records.map((record, i) => {
    index.set(record.eventId, i);
    const prevs = record.event.prev_events;
    const parent = prevs.length === 1 ? index.get(prevs[0]!) : undefined;
    if (record.rejected || parent === undefined) return -1;
    const p = records[parent]!;
    return p.rejected || p.event.state_key !== undefined ? -1 : parent;
  });
  const read = await Promise.all(records.map((record, i) => (record.rejected || sameAs[i] !== -1 ? undefined : reader.stateBefore(record))));
  const out: (StateMap | undefined)[] = [];
  const orphans: number[] = [];
  records.forEach((record, i) => {
    const parent = sameAs[i]!;
    out.push(record.rejected ? undefined : parent === -1 ? read[i] : out[parent]);
    // A parent with no state recorded here (an outlier) says nothing of its child's: read the child's own.
    if (parent !== -1 && out[i] === undefined) orphans.push(i);
  });
  const late = await Promise.all(orphans.map((i) => reader.stateBefore(records[i]!)));
  orphans.forEach((i, n) => (out[i] = late[n]));
  return out;
}

/** The stored event in federation form. */
export function pduOf(record: EventRecord): PDU {
  return federationForm(record.event);
}

/** The auth chain of some events (their auth events, transitively), stored ones only. */
export async function authChainOf(txn: ReadTxn, eventIds: Iterable<string>, limit = 50_000): Promise<EventRecord[]> {
  const seen = new Set<string>();
  const out: EventRecord[] = [];
  let frontier = [...eventIds];
  const start = new Set(frontier);
  while (frontier.length > 0 && out.length < limit) {
    const records = await txn.events.getMany(frontier.filter((id) => !seen.has(id)));
    const next: string[] = [];
    for (const id of frontier) {
      if (seen.has(id)) continue;
      seen.add(id);
      const record = records.get(id);
      if (!record) continue;
      if (!start.has(id)) out.push(record);
      for (const authId of record.event.auth_events) if (!seen.has(authId)) next.push(authId);
    }
    frontier = next;
  }
  return out;
}

/** Range reads of the timeline one walk makes ahead of itself, and how many events beyond its limit each covers. */
const MAX_READS_AHEAD = 8;
const READ_AHEAD_SLACK = 16;

/**
 * Events reached walking prev_events backwards from `from` (included when `includeStart`), breadth first,
 * deepest first, stopping at `stopAt` and after `limit` events.
 */
export async function walkBack(
  txn: ReadTxn,
  roomId: string,
  from: readonly string[],
  options: { limit: number; stopAt?: ReadonlySet<string>; includeStart: boolean; minDepth?: number },
): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  const seen = new Set<string>([...(options.stopAt ?? []), ...from]);
  let frontier = [...from];
  let first = true;
  // Read ahead: a long walk is mostly a chain, one event per level, and one read per event would cost a storage
  // round trip each. The room's timeline just below the level reached comes in one range read instead; events it
  // does not hold (outliers, other branches) are read by ID.
  const ahead = new Map<string, EventRecord>();
  let readsAhead = 0;
  let lowestAhead = Infinity;
  while (frontier.length > 0 && out.length < options.limit) {
    const unread = frontier.filter((id) => !ahead.has(id));
    const records = unread.length > 0 ? await txn.events.getMany(unread) : new Map<string, EventRecord>();
    const level: EventRecord[] = [];
    for (const id of frontier) {
      const record = ahead.get(id) ?? records.get(id);
      if (record && record.roomId === roomId) level.push(record);
    }
    const deepest = level.reduce((max, r) => Math.max(max, r.depth), -Infinity);
    if (unread.length > 0 && level.length > 0 && readsAhead < MAX_READS_AHEAD && deepest <= lowestAhead && options.limit - out.length > 1) {
      readsAhead++;
      const window = await txn.timeline.topological(roomId, { dir: 'b', from: { depth: deepest, streamOrdering: Number.MAX_SAFE_INTEGER }, limit: options.limit - out.length + READ_AHEAD_SLACK });
      for (const record of window) {
        ahead.set(record.eventId, record);
        lowestAhead = Math.min(lowestAhead, record.depth);
      }
    }
    level.sort((a, b) => b.depth - a.depth);
    const next: string[] = [];
    for (const record of level) {
      if (!first || options.includeStart) {
        if (out.length >= options.limit) break;
        if (options.minDepth !== undefined && record.depth < options.minDepth) continue;
        out.push(record);
      }
      for (const prev of record.event.prev_events) {
        if (seen.has(prev)) continue;
        seen.add(prev);
        next.push(prev);
      }
    }
    first = false;
    frontier = next;
  }
  return out;
}
