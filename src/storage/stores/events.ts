/**
 * Room events and their order: the events table (one row per event, PDU,
 * bookkeeping and state groups together), the timelines read from its stream
 * and depth indexes, and the DAG: children found through the multiEntry index
 * over each row's own prev_events (so the DAG never mentions an event that is
 * not stored), and each room's forward extremities. Storing an event is one
 * row, one request: a catch-up of thousands of events costs what its rows
 * cost, not a row per edge and another per state record beside each.
 */
import { StorageError } from '../errors.js';
import { EXTREMITIES_ROW, I, T } from '../schema.js';
import type {
  DagStore,
  EventPatch,
  EventRecord,
  EventsStore,
  NewEvent,
  StreamWindow,
  TimelineReader,
  TopologicalWindow,
} from '../types.js';
import { streamWindow, type TxnContext, windowQuery } from './context.js';
import { fromRow, fromRows, patched, toRow } from './rows.js';

export class Events implements EventsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(eventId: string): Promise<EventRecord | undefined> {
    return fromRow<EventRecord>(await this.ctx.t.get(T.events, [eventId]));
  }

  async getMany(eventIds: readonly string[]): Promise<Map<string, EventRecord>> {
    // Issued together: IndexedDB runs the requests in parallel within the transaction.
    const records = await Promise.all(eventIds.map((id) => this.get(id)));
    const found = new Map<string, EventRecord>();
    for (const record of records) if (record) found.set(record.eventId, record);
    return found;
  }

  async has(eventId: string): Promise<boolean> {
    return (await this.ctx.t.count(T.events, { prefix: [eventId] })) > 0;
  }

  async storedIds(eventIds: readonly string[]): Promise<Set<string>> {
    // Counts, issued together: IndexedDB answers them from the keys, without copying the rows out.
    const ids = [...new Set(eventIds)];
    const counts = await Promise.all(ids.map((id) => this.ctx.t.count(T.events, { prefix: [id] })));
    return new Set(ids.filter((_, i) => counts[i]! > 0));
  }

  async add(input: NewEvent): Promise<EventRecord> {
    this.ctx.assertWritable();
    // With a native insert the taken key fails the write itself: no read before it.
    const insert = this.ctx.t.insert;
    if (!insert && (await this.has(input.eventId))) throw new StorageError('EXISTS', `event ${input.eventId} is already stored`);
    const outlier = input.outlier ?? false;
    const record: EventRecord = {
      eventId: input.eventId,
      roomId: input.roomId,
      event: input.event,
      depth: input.depth ?? (typeof input.event.depth === 'number' ? input.event.depth : 0),
      outlier,
      rejected: input.rejected,
      softFailed: input.softFailed,
      stateGroups: input.stateGroups && { before: input.stateGroups.before, after: input.stateGroups.after },
    };
    const historical = input.historicalPosition;
    if (historical !== undefined && (outlier || !Number.isSafeInteger(historical) || historical >= 0)) {
      throw new StorageError('UNSTORABLE', `a historical position is a negative integer, on a timeline event (got ${historical})`);
    }
    if (!outlier) record.streamOrdering = historical ?? (await this.ctx.nextStreamPosition());
    const row = toRow(record);
    if (insert) await insert.call(this.ctx.t, T.events, row);
    else await this.ctx.t.put(T.events, row);
    // History is no news: /sync (woken by timeline notes) must not hear of it.
    if (historical === undefined) this.noteTimeline(record);
    this.ctx.noteEvent(row as unknown as EventRecord);
    return row as unknown as EventRecord;
  }

  async update(eventId: string, patch: EventPatch): Promise<EventRecord> {
    this.ctx.assertWritable();
    const record = await this.get(eventId);
    if (!record) throw new StorageError('NOT_FOUND', `event ${eventId} is not stored`);
    const next = patched(record, patch);
    await this.ctx.t.put(T.events, toRow(next));
    this.ctx.noteEvent(next);
    return next;
  }

  async promote(eventId: string, historicalPosition?: number): Promise<EventRecord> {
    this.ctx.assertWritable();
    if (historicalPosition !== undefined && (!Number.isSafeInteger(historicalPosition) || historicalPosition >= 0)) {
      throw new StorageError('UNSTORABLE', `a historical position is a negative integer (got ${historicalPosition})`);
    }
    const record = await this.get(eventId);
    if (!record) throw new StorageError('NOT_FOUND', `event ${eventId} is not stored`);
    if (!record.outlier) return record;
    const next: EventRecord = { ...record, outlier: false, streamOrdering: historicalPosition ?? (await this.ctx.nextStreamPosition()) };
    await this.ctx.t.put(T.events, toRow(next));
    if (historicalPosition === undefined) this.noteTimeline(next);
    this.ctx.noteEvent(next);
    return next;
  }

  private noteTimeline(record: EventRecord): void {
    if (record.streamOrdering === undefined) return;
    this.ctx.note({
      kind: 'event',
      roomId: record.roomId,
      eventId: record.eventId,
      streamOrdering: record.streamOrdering,
    });
  }
}

export class Timeline implements TimelineReader {
  constructor(private readonly ctx: TxnContext) {}

  async range(roomId: string, window: StreamWindow): Promise<EventRecord[]> {
    const query = windowQuery([roomId], 1, streamWindow(window));
    return fromRows<EventRecord>(await this.ctx.t.scan(T.events, { ...query, index: I.eventsByRoomStream }));
  }

  async rangeAll(window: StreamWindow): Promise<EventRecord[]> {
    const query = windowQuery([], 1, streamWindow(window));
    return fromRows<EventRecord>(await this.ctx.t.scan(T.events, { ...query, index: I.eventsByStream }));
  }

  async topological(roomId: string, window: TopologicalWindow): Promise<EventRecord[]> {
    const position = (p: TopologicalWindow['from']) => (p ? [p.depth, p.streamOrdering] : undefined);
    const query = windowQuery([roomId], 2, {
      dir: window.dir,
      from: position(window.from),
      to: position(window.to),
      limit: window.limit,
    });
    return fromRows<EventRecord>(await this.ctx.t.scan(T.events, { ...query, index: I.eventsByRoomDepth }));
  }
}

export class Dag implements DagStore {
  constructor(private readonly ctx: TxnContext) {}

  async prevEvents(eventId: string): Promise<string[] | undefined> {
    const record = fromRow<EventRecord>(await this.ctx.t.get(T.events, [eventId]));
    return record ? [...record.event.prev_events] : undefined;
  }

  async authEvents(eventId: string): Promise<string[] | undefined> {
    const record = fromRow<EventRecord>(await this.ctx.t.get(T.events, [eventId]));
    return record ? [...record.event.auth_events] : undefined;
  }

  async children(eventId: string): Promise<string[]> {
    const rows = await this.ctx.t.scan(T.events, { index: I.eventsByPrev, prefix: [eventId] });
    return rows.map((row) => row.eventId as string);
  }

  async extremities(roomId: string): Promise<string[]> {
    const row = await this.ctx.t.get(T.extremities, [roomId, EXTREMITIES_ROW]);
    return row ? [...(row.eventIds as string[])] : [];
  }

  async setExtremities(roomId: string, eventIds: readonly string[]): Promise<void> {
    this.ctx.assertWritable();
    if (eventIds.length === 0) {
      await this.ctx.t.delete(T.extremities, [roomId, EXTREMITIES_ROW]);
      return;
    }
    // Sorted by UTF-16 code units: the order of the keys of the one-row-per-event layout before migration 3.
    await this.ctx.t.put(T.extremities, { roomId, eventId: EXTREMITIES_ROW, eventIds: [...new Set(eventIds)].sort() });
  }
}
