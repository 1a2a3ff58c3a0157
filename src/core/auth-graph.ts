/**
 * The auth DAG of a set of events, loaded once and held as dense integer
 * indices. Every event names the events that authorised it in `auth_events`;
 * following those edges from a set of roots reaches their auth chains. State
 * resolution and the DAG helpers walk this graph many times, so it is fetched
 * breadth-first (one `getEvent` call per event, all calls of a layer issued
 * together so an async store can batch them), then frozen into arrays with a
 * topological order (ancestors first) that doubles as the cycle check: Kahn's
 * algorithm only finishes when the edges form no cycle.
 *
 * Room version 12 no longer lists the create event in `auth_events`; its ID is
 * implied by the room ID (`!x` -> `$x`). With `implicitCreate` the loader adds
 * that edge, so auth chains look the same in every version (as in Synapse).
 */
import { CoreError } from './errors.js';
import type { GetEvent, PDU } from './types.js';

export interface AuthGraph {
  /** Index -> event ID; the roots come first, in the order given. */
  readonly ids: readonly string[];
  readonly events: readonly PDU[];
  readonly index: ReadonlyMap<string, number>;
  /**
   * Auth edges in compressed rows: the auth events of event i (deduplicated,
   * implied create included) are authList[authStart[i] .. authStart[i + 1]).
   * One flat array instead of one per event keeps loading free of garbage.
   */
  readonly authStart: Int32Array;
  readonly authList: Int32Array;
  /** Every index once, each after all of its auth events. */
  readonly order: Int32Array;
}

export interface LoadAuthGraphOptions {
  /** Add the create event implied by the room ID (room version 12). */
  implicitCreate: boolean;
  /** Refuse (CoreError TOO_LARGE) rather than load more events than this. */
  maxEvents: number;
}

/** The create event ID a v12 room ID implies, or undefined for create events and other room IDs. */
export function impliedCreateEventId(event: PDU): string | undefined {
  if (event.type === 'm.room.create' && event.state_key === '') return undefined;
  const roomId = event.room_id;
  return typeof roomId === 'string' && roomId.startsWith('!') ? `$${roomId.slice(1)}` : undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

function checkShape(id: string, event: unknown): PDU {
  if (event === undefined || event === null) throw new CoreError('MISSING_EVENT', `event ${id} is not available`);
  const e = event as PDU;
  const ok =
    typeof e === 'object' &&
    typeof e.type === 'string' &&
    typeof e.sender === 'string' &&
    typeof e.origin_server_ts === 'number' &&
    typeof e.content === 'object' &&
    e.content !== null &&
    (e.state_key === undefined || typeof e.state_key === 'string') &&
    Array.isArray(e.auth_events);
  let refsOk = ok;
  for (let k = 0; refsOk && k < e.auth_events.length; k++) refsOk = typeof e.auth_events[k] === 'string';
  if (!refsOk) throw new CoreError('MALFORMED_EVENT', `event ${id} lacks type, sender, origin_server_ts, content or auth_events`);
  return e;
}

/** Loads `roots` and everything reachable from them through `auth_events`. */
export async function loadAuthGraph(
  roots: Iterable<string>,
  getEvent: GetEvent,
  options: LoadAuthGraphOptions,
): Promise<AuthGraph> {
  const index = new Map<string, number>();
  const ids: string[] = [];
  const events: PDU[] = [];
  const starts: number[] = [0];
  const edges: number[] = [];
  const enqueue = (id: string): number => {
    let i = index.get(id);
    if (i === undefined) {
      if (ids.length >= options.maxEvents) {
        throw new CoreError('TOO_LARGE', `more than ${options.maxEvents} events in the auth chains`);
      }
      i = ids.length;
      index.set(id, i);
      ids.push(id);
    }
    return i;
  };
  const addEdge = (from: number, to: number): void => {
    for (let k = starts[from]!; k < edges.length; k++) if (edges[k] === to) return;
    edges.push(to);
  };
  for (const id of roots) enqueue(id);

  // Indices are handed out in request order, never in arrival order, so the
  // graph (and everything derived from it) is the same for any store timing.
  // Events are completed in index order, which lets edges fill the rows in turn.
  let next = 0;
  while (next < ids.length) {
    const end = ids.length;
    const batch: unknown[] = new Array(end - next);
    let pending = false;
    for (let i = next; i < end; i++) {
      const got = getEvent(ids[i]!);
      if (isThenable(got)) pending = true;
      batch[i - next] = got;
    }
    const fetched = pending ? await Promise.all(batch) : batch;
    for (let i = next; i < end; i++) {
      const event = checkShape(ids[i]!, fetched[i - next]);
      events[i] = event;
      for (const ref of event.auth_events) addEdge(i, enqueue(ref));
      if (options.implicitCreate) {
        const create = impliedCreateEventId(event);
        if (create !== undefined) addEdge(i, enqueue(create));
      }
      starts.push(edges.length);
    }
    next = end;
  }

  const n = ids.length;
  const authStart = Int32Array.from(starts);
  const authList = Int32Array.from(edges);
  // Citers in compressed rows too, for Kahn's algorithm.
  const citerStart = new Int32Array(n + 1);
  for (let k = 0; k < authList.length; k++) citerStart[authList[k]! + 1]++;
  for (let j = 0; j < n; j++) citerStart[j + 1] += citerStart[j]!;
  const citers = new Int32Array(authList.length);
  const fill = citerStart.slice(0, n);
  for (let i = 0; i < n; i++) {
    for (let k = authStart[i]!; k < authStart[i + 1]!; k++) citers[fill[authList[k]!]++] = i;
  }

  const remaining = new Int32Array(n);
  const order = new Int32Array(n);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < n; i++) {
    remaining[i] = authStart[i + 1]! - authStart[i]!;
    if (remaining[i] === 0) order[tail++] = i;
  }
  while (head < tail) {
    const j = order[head++]!;
    for (let c = citerStart[j]!; c < citerStart[j + 1]!; c++) {
      const i = citers[c]!;
      if (--remaining[i] === 0) order[tail++] = i;
    }
  }
  if (tail < n) {
    let stuck = 0;
    while (remaining[stuck] === 0) stuck++;
    throw new CoreError('AUTH_CYCLE', `auth_events form a cycle at or above ${ids[stuck]}`);
  }
  return { ids, events, index, authStart, authList, order };
}
