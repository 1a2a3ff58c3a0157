/**
 * Paging through a room's history: GET /rooms/{roomId}/messages and
 * GET /rooms/{roomId}/context/{eventId} (spec "Getting events for a room").
 *
 * Both walk the room in topological order (depth, then stream ordering) with
 * the gap tokens of tokens.ts, so pages meet exactly: a page's `end` is the
 * gap after the last event it consumed, and the next page starts there. Pages
 * skip events the filter or history visibility hides, reading on until the
 * page is full or the room ends, so an empty chunk only ever comes without
 * `end`. Who may read the room and up to where, and which events they may
 * see, is access/room-access.ts's to say: a former member reads up to their
 * departure (the grant's horizon), a user who never joined only a
 * world_readable room.
 */
import { stateKeyOf, type StateMap } from '../../core/index.js';
import type { EventRecord, ReadTxn, TopologicalPosition, TopologicalWindow } from '../../storage/types.js';
import { notFound } from '../http/errors.js';
import { checkUserMayRead, visibleEvents, withinHorizon, type MembershipView } from '../access/room-access.js';
import type { EventFilter } from './filters.js';
import { RoomReader } from './room-reader.js';
import { filterable, type SyncService } from './sync.js';
import {
  compareTopo,
  formatTopoToken,
  gapAfter,
  gapBefore,
  parsePaginationToken,
  ROOM_START,
  type PaginationToken,
} from './tokens.js';

type Json = Record<string, unknown>;

/** Largest page /messages and /context return, whatever `limit` asks. */
export const MAX_PAGE = 1000;
/** Events examined at most for one page of a sparse filter; the page then ends early with an `end` token. */
const SCAN_LIMIT = 5000;

export interface MessagesParams {
  dir: 'b' | 'f';
  from?: string;
  to?: string;
  limit: number;
  filter: EventFilter;
}

/** Converts a token to a topological gap in this room. */
async function positionOf(txn: ReadTxn, roomId: string, token: PaginationToken): Promise<TopologicalPosition> {
  if (token.kind === 'topo') return token.position;
  // A sync token: the gap after the room's last event at or before that stream position.
  const [last] = await txn.timeline.range(roomId, { dir: 'b', from: token.stream, limit: 1 });
  return last ? gapAfter(last) : ROOM_START;
}

/** The gap after the room's topologically last event. */
async function roomEnd(txn: ReadTxn, roomId: string): Promise<TopologicalPosition> {
  const [last] = await txn.timeline.topological(roomId, { dir: 'b', limit: 1 });
  return last ? gapAfter(last) : ROOM_START;
}

const minTopo = (a: TopologicalPosition, b: TopologicalPosition) => (compareTopo(a, b) <= 0 ? a : b);

/**
 * Up to `limit` events the user may see and the filter passes, walking from
 * `from` towards `to`. Returns them in walking order, the gap after the last
 * event consumed, and whether the walk may continue.
 */
async function walk(
  reader: RoomReader,
  roomId: string,
  view: MembershipView,
  dir: 'b' | 'f',
  from: TopologicalPosition,
  to: TopologicalPosition | undefined,
  limit: number,
  filter: EventFilter,
): Promise<{ events: EventRecord[]; position: TopologicalPosition; more: boolean }> {
  const events: EventRecord[] = [];
  let position = from;
  let scanned = 0;
  if (limit <= 0) {
    const window: TopologicalWindow = { dir, from: position, to, limit: 1 };
    return { events, position, more: (await reader.txn.timeline.topological(roomId, window)).length > 0 };
  }
  for (;;) {
    const batchSize = Math.min(limit - events.length + 1, 500);
    const batch = await reader.txn.timeline.topological(roomId, { dir, from: position, to, limit: batchSize });
    reader.remember(batch);
    const visible = new Set(await visibleEvents(reader, roomId, view, batch.filter((r) => filter.matches(filterable(r)))));
    for (const record of batch) {
      if (visible.has(record)) {
        // Full page with an event still to give: stop before it.
        if (events.length === limit) return { events, position, more: true };
        events.push(record);
      }
      position = dir === 'b' ? gapBefore(record) : gapAfter(record);
    }
    scanned += batch.length;
    if (batch.length < batchSize) return { events, position, more: false };
    if (events.length === limit) {
      // The page is full and the batch's extra event was hidden: say whether anything lies beyond.
      const [next] = await reader.txn.timeline.topological(roomId, { dir, from: position, to, limit: 1 });
      return { events, position, more: next !== undefined };
    }
    if (scanned >= SCAN_LIMIT) return { events, position, more: true };
  }
}

/** The member events of the senders, from the given state (lazy-loading members). */
async function senderMembers(reader: RoomReader, state: StateMap | undefined, events: EventRecord[]): Promise<EventRecord[]> {
  if (!state) return [];
  const ids = new Set<string>();
  for (const event of events) {
    const id = state.get(stateKeyOf('m.room.member', event.event.sender));
    if (id) ids.add(id);
  }
  return [...(await reader.getEvents(ids)).values()];
}

export async function roomMessages(sync: SyncService, now: number, userId: string, roomId: string, params: MessagesParams): Promise<Json> {
  const fromToken = params.from !== undefined ? parsePaginationToken(params.from, 'from') : undefined;
  const toToken = params.to !== undefined ? parsePaginationToken(params.to, 'to') : undefined;
  return sync.readRooms(async (txn) => {
    const reader = new RoomReader(txn, sync.caches, now);
    const { view, horizon } = await checkUserMayRead(reader, roomId, userId);
    const until = horizon && gapAfter(horizon);
    let from = fromToken ? await positionOf(txn, roomId, fromToken) : params.dir === 'b' ? await roomEnd(txn, roomId) : ROOM_START;
    let to = toToken ? await positionOf(txn, roomId, toToken) : undefined;
    if (until) {
      if (params.dir === 'b') from = minTopo(from, until);
      else to = to ? minTopo(to, until) : until;
    }
    let result: { events: EventRecord[]; position: TopologicalPosition; more: boolean };
    if (params.dir === 'f' && to && compareTopo(from, to) >= 0) result = { events: [], position: from, more: false };
    else if (params.dir === 'b' && to && compareTopo(from, to) <= 0) result = { events: [], position: from, more: false };
    else result = await walk(reader, roomId, view, params.dir, from, to, Math.min(params.limit, MAX_PAGE), params.filter);

    const response: Json = {
      start: params.from ?? formatTopoToken(from),
      chunk: await reader.format(result.events),
    };
    if (result.more) response.end = formatTopoToken(result.position);
    if (params.filter.lazyLoadMembers && result.events.length > 0) {
      const state = params.dir === 'b' ? await reader.stateAfter(result.events[0]) : await reader.stateBefore(result.events[0]);
      response.state = await reader.format(await senderMembers(reader, state, result.events));
    }
    return response;
  });
}

export interface ContextParams {
  limit: number;
  filter: EventFilter;
}

export async function eventContext(sync: SyncService, now: number, userId: string, roomId: string, eventId: string, params: ContextParams): Promise<Json> {
  return sync.readRooms(async (txn) => {
    const reader = new RoomReader(txn, sync.caches, now);
    const grant = await checkUserMayRead(reader, roomId, userId);
    const { view } = grant;
    const until = grant.horizon && gapAfter(grant.horizon);
    const event = await reader.getEvent(eventId);
    const inRoom = event && event.roomId === roomId && event.streamOrdering !== undefined && !event.outlier;
    if (!inRoom || !withinHorizon(grant, event) || (await visibleEvents(reader, roomId, view, [event])).length === 0) {
      throw notFound('Event not found');
    }
    const limit = Math.min(params.limit, MAX_PAGE);
    const beforeLimit = Math.floor(limit / 2);
    const afterLimit = limit - beforeLimit;
    const before = await walk(reader, roomId, view, 'b', gapBefore(event), undefined, beforeLimit, params.filter);
    const after = await walk(reader, roomId, view, 'f', gapAfter(event), until, afterLimit, params.filter);

    const last = after.events.length > 0 ? after.events[after.events.length - 1] : event;
    const stateMap = (await reader.stateAfter(last)) ?? new Map<string, string>();
    let stateRecords: EventRecord[];
    if (params.filter.lazyLoadMembers) {
      stateRecords = await senderMembers(reader, stateMap, [...before.events, event, ...after.events]);
    } else {
      const records = await reader.getEvents(stateMap.values());
      stateRecords = [...records.values()].filter((r) => params.filter.matches(filterable(r)));
    }
    return {
      start: formatTopoToken(before.position),
      end: formatTopoToken(after.position),
      event: (await reader.format([event]))[0],
      events_before: await reader.format(before.events),
      events_after: await reader.format(after.events),
      state: await reader.format(stateRecords),
    };
  });
}

