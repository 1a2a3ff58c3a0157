/**
 * The opaque tokens of the read side of the client-server API.
 *
 * Sync tokens, `s{stream}_{typing}`: the storage stream position everything up
 * to which the client has seen (timeline, receipts, account data, to-device,
 * device lists all share that one counter), and the in-memory typing serial.
 *
 * Pagination tokens, `t{depth}_{stream}`: a gap in a room's topological order
 * (depth, then stream ordering). The token (d, s) is the gap right after the
 * event whose key is (d, s), so paginating backwards from it returns events with
 * key <= (d, s) and forwards events with key > (d, s), exactly the storage's
 * topological window rules. The gap before an event (d, s) is (d, s - 1): no
 * key lies between the two; backfilled history has negative stream positions,
 * so `s` may be negative. /messages also accepts sync tokens (`from=next_batch`)
 * and converts them to the gap after the room's last event at that position.
 */
import { MatrixError } from '../http/errors.js';
import type { EventRecord, TopologicalPosition } from '../../storage/types.js';

export interface SyncToken {
  stream: number;
  typing: number;
}

const SYNC_TOKEN = /^s(\d{1,15})_(\d{1,15})$/;
const TOPO_TOKEN = /^t(\d{1,15})_(-?\d{1,15})$/;

export function formatSyncToken(token: SyncToken): string {
  return `s${token.stream}_${token.typing}`;
}

/** Parses a sync token; undefined if it is not one. */
export function parseSyncToken(raw: string): SyncToken | undefined {
  const m = SYNC_TOKEN.exec(raw);
  if (!m) return undefined;
  return { stream: Number(m[1]), typing: Number(m[2]) };
}

export function formatTopoToken(position: TopologicalPosition): string {
  return `t${position.depth}_${position.streamOrdering}`;
}

/** A pagination token: a topological gap, or a sync token's stream position. */
export type PaginationToken = { kind: 'topo'; position: TopologicalPosition } | { kind: 'stream'; stream: number };

/** Parses a /messages or /context token; throws M_INVALID_PARAM for anything else. */
export function parsePaginationToken(raw: string, name: string): PaginationToken {
  const topo = TOPO_TOKEN.exec(raw);
  if (topo) return { kind: 'topo', position: { depth: Number(topo[1]), streamOrdering: Number(topo[2]) } };
  const sync = parseSyncToken(raw);
  if (sync) return { kind: 'stream', stream: sync.stream };
  throw new MatrixError(400, 'M_INVALID_PARAM', `Invalid pagination token in '${name}'`);
}

/** The gap right after a timeline event. */
export function gapAfter(record: EventRecord): TopologicalPosition {
  return { depth: record.depth, streamOrdering: record.streamOrdering ?? 0 };
}

/** The gap right before a timeline event. */
export function gapBefore(record: EventRecord): TopologicalPosition {
  // Backfilled history has negative stream positions (storage's historicalPosition): the gap goes below zero too.
  return { depth: record.depth, streamOrdering: (record.streamOrdering ?? 0) - 1 };
}

/** The gap before every event of a room. */
export const ROOM_START: TopologicalPosition = { depth: 0, streamOrdering: 0 };

/** Orders two topological positions. */
export function compareTopo(a: TopologicalPosition, b: TopologicalPosition): number {
  return a.depth - b.depth || a.streamOrdering - b.streamOrdering;
}
