/**
 * Room state: state groups (each a delta against an earlier group, so events
 * that share a state share one row, and a chain longer than
 * STATE_DELTA_CHAIN_LIMIT is cut by a full snapshot), which groups each event
 * sits between (on the event's row, or apart for events stored before
 * migration 6), and the room's current state as one row per (type, state_key)
 * for cheap reads of single entries.
 */
import { splitStateKey, stateKeyOf, type StateMap } from '../../core/index.js';
import { StorageError } from '../errors.js';
import { T } from '../schema.js';
import {
  type CurrentStateStore,
  type EventRecord,
  type EventStateGroups,
  type EventStateRecord,
  type EventStateStore,
  STATE_DELTA_CHAIN_LIMIT,
  type StateGroupRecord,
  type StateGroupsStore,
} from '../types.js';
import type { TxnContext } from './context.js';
import { fromRow, toRow } from './rows.js';

interface StateGroupRow {
  id: number;
  roomId: string;
  prevGroupId?: number;
  /** Deltas between here and the nearest snapshot (0 for a snapshot). */
  chainLength: number;
  delta: [string, string | null][];
}

export class StateGroups implements StateGroupsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(groupId: number): Promise<StateGroupRecord | undefined> {
    const row = await this.row(groupId);
    if (!row) return undefined;
    const record: StateGroupRecord = { id: row.id, roomId: row.roomId, delta: new Map(row.delta) };
    if (row.prevGroupId !== undefined) record.prevGroupId = row.prevGroupId;
    return record;
  }

  async load(groupId: number): Promise<StateMap> {
    const chain: StateGroupRow[] = [];
    let row = await this.requireRow(groupId);
    chain.push(row);
    while (row.prevGroupId !== undefined) {
      row = await this.requireRow(row.prevGroupId);
      chain.push(row);
    }
    const state: StateMap = new Map();
    for (let i = chain.length - 1; i >= 0; i--) applyDelta(state, chain[i].delta);
    return state;
  }

  async create(roomId: string, delta: Map<string, string | null>, prevGroupId?: number): Promise<number> {
    this.ctx.assertWritable();
    if (prevGroupId === undefined) return this.insert(roomId, snapshotOf(delta));
    const prev = await this.requireRow(prevGroupId);
    if (prev.chainLength < STATE_DELTA_CHAIN_LIMIT) return this.insert(roomId, [...delta], prev);
    const state = await this.load(prevGroupId);
    applyDelta(state, delta);
    return this.insert(roomId, [...state]);
  }

  async createFromState(roomId: string, state: StateMap, prevGroupId?: number): Promise<number> {
    this.ctx.assertWritable();
    if (prevGroupId === undefined) return this.insert(roomId, [...state]);
    const prev = await this.requireRow(prevGroupId);
    const before = await this.load(prevGroupId);
    const delta: [string, string | null][] = [];
    for (const [key, eventId] of state) if (before.get(key) !== eventId) delta.push([key, eventId]);
    for (const key of before.keys()) if (!state.has(key)) delta.push([key, null]);
    if (delta.length === 0) return prevGroupId;
    if (prev.chainLength < STATE_DELTA_CHAIN_LIMIT) return this.insert(roomId, delta, prev);
    return this.insert(roomId, [...state]);
  }

  /** Writes a group: a delta against `prev`, or a snapshot when there is none. */
  private async insert(roomId: string, delta: [string, string | null][], prev?: StateGroupRow): Promise<number> {
    const id = await this.ctx.nextId('state_group');
    const row: StateGroupRow = prev
      ? { id, roomId, prevGroupId: prev.id, chainLength: prev.chainLength + 1, delta }
      : { id, roomId, chainLength: 0, delta };
    await this.ctx.t.put(T.stateGroups, toRow(row));
    return id;
  }

  private async row(groupId: number): Promise<StateGroupRow | undefined> {
    return fromRow<StateGroupRow>(await this.ctx.t.get(T.stateGroups, [groupId]));
  }

  private async requireRow(groupId: number): Promise<StateGroupRow> {
    const row = await this.row(groupId);
    if (!row) throw new StorageError('NOT_FOUND', `state group ${groupId} is not stored`);
    return row;
  }
}

function applyDelta(state: StateMap, delta: Iterable<[string, string | null]>): void {
  for (const [key, eventId] of delta) {
    if (eventId === null) state.delete(key);
    else state.set(key, eventId);
  }
}

/** A delta with nothing to build on is a whole state: removals mean nothing there. */
function snapshotOf(delta: Map<string, string | null>): [string, string][] {
  const entries: [string, string][] = [];
  for (const [key, eventId] of delta) if (eventId !== null) entries.push([key, eventId]);
  return entries;
}

/**
 * An event's state groups: on its events row (`stateGroups`) for events stored since migration 6, in an
 * event_state row for those stored before. The row's pair wins: `set` on a stored event writes the row.
 */
export class EventState implements EventStateStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(eventId: string): Promise<EventStateRecord | undefined> {
    const record = fromRow<EventRecord>(await this.ctx.t.get(T.events, [eventId]));
    const groups = record?.stateGroups ?? (await this.stored(eventId));
    return groups && { eventId, before: groups.before, after: groups.after };
  }

  async of(record: EventRecord): Promise<EventStateGroups | undefined> {
    return record.stateGroups ?? (await this.stored(record.eventId));
  }

  async set(state: EventStateRecord): Promise<void> {
    this.ctx.assertWritable();
    const { eventId, before, after } = state;
    const record = fromRow<EventRecord>(await this.ctx.t.get(T.events, [eventId]));
    if (!record) {
      await this.ctx.t.put(T.eventState, toRow({ eventId, before, after }));
      return;
    }
    const next: EventRecord = { ...record, stateGroups: { before, after } };
    await this.ctx.t.put(T.events, toRow(next));
    this.ctx.noteEvent(next);
  }

  /** The pair kept apart (events stored before migration 6, or recorded before their event). */
  private async stored(eventId: string): Promise<EventStateGroups | undefined> {
    const row = fromRow<EventStateRecord>(await this.ctx.t.get(T.eventState, [eventId]));
    return row && { before: row.before, after: row.after };
  }
}

interface CurrentStateRow {
  roomId: string;
  type: string;
  stateKey: string;
  eventId: string;
}

export class CurrentState implements CurrentStateStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(roomId: string, type: string, stateKey: string): Promise<string | undefined> {
    const row = fromRow<CurrentStateRow>(await this.ctx.t.get(T.currentState, [roomId, type, stateKey]));
    return row?.eventId;
  }

  async load(roomId: string): Promise<StateMap> {
    const rows = (await this.ctx.t.scan(T.currentState, { prefix: [roomId] })) as unknown as CurrentStateRow[];
    return new Map(rows.map((row) => [stateKeyOf(row.type, row.stateKey), row.eventId]));
  }

  async ofType(roomId: string, type: string): Promise<Map<string, string>> {
    const rows = (await this.ctx.t.scan(T.currentState, { prefix: [roomId, type] })) as unknown as CurrentStateRow[];
    return new Map(rows.map((row) => [row.stateKey, row.eventId]));
  }

  async apply(roomId: string, delta: Map<string, string | null>): Promise<void> {
    this.ctx.assertWritable();
    for (const [key, eventId] of delta) {
      const [type, stateKey] = splitStateKey(key);
      if (eventId === null) await this.ctx.t.delete(T.currentState, [roomId, type, stateKey]);
      else await this.ctx.t.put(T.currentState, toRow({ roomId, type, stateKey, eventId } satisfies CurrentStateRow));
    }
  }

  async replace(roomId: string, state: StateMap): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.currentState, { prefix: [roomId] });
    await this.apply(roomId, state);
  }
}
