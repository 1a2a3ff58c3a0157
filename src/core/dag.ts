/**
 * Helpers over the two DAGs of a room. `prev_events` edges form the timeline
 * DAG: its *forward extremities* (events nobody lists as a parent yet) are
 * what the next event names as parents, and a topological order of it is a
 * replay order in which every event comes after its parents. `auth_events`
 * edges form the auth DAG: an event's *auth chain* is everything reachable
 * from it there, and the *auth difference* of several chains is what some but
 * not all of them hold (the history state resolution must replay).
 *
 * Everything is iterative (deep rooms would overflow a recursive walk), and
 * orders are decided by a binary heap with a total tiebreak, so the same
 * events always give the same answer, whatever order they were passed in.
 */
import { loadAuthGraph } from './auth-graph.js';
import { CoreError } from './errors.js';
import { compareCodePoints } from './canonical-json.js';
import { MinHeap } from './heap.js';
import { roomVersionRules } from './room-versions.js';
import type { GetEvent, PDU } from './types.js';

function idOf(event: PDU): string {
  if (typeof event.event_id !== 'string') throw new CoreError('MALFORMED_EVENT', 'event has no event_id');
  return event.event_id;
}

function parentsOf(event: PDU): string[] {
  if (!Array.isArray(event.prev_events)) throw new CoreError('MALFORMED_EVENT', `event ${idOf(event)} has no prev_events list`);
  return event.prev_events;
}

/** IDs of the events that no other given event names in `prev_events`, in input order. */
export function forwardExtremities(events: readonly PDU[]): string[] {
  const referenced = new Set<string>();
  for (const event of events) for (const parent of parentsOf(event)) referenced.add(parent);
  const seen = new Set<string>();
  const tips: string[] = [];
  for (const event of events) {
    const id = idOf(event);
    if (!referenced.has(id) && !seen.has(id)) tips.push(id);
    seen.add(id);
  }
  return tips;
}

/** The `prev_events` of the given events that are neither among them nor `have`, each once. */
export function missingParents(events: readonly PDU[], have: (eventId: string) => boolean): string[] {
  const given = new Set(events.map(idOf));
  const missing = new Set<string>();
  for (const event of events) {
    for (const parent of parentsOf(event)) if (!given.has(parent) && !missing.has(parent) && !have(parent)) missing.add(parent);
  }
  return [...missing];
}

export interface AuthChainOptions {
  /** In room 12 events imply the create event instead of listing it; pass the version to follow that edge. */
  roomVersion?: string;
  /** CoreError TOO_LARGE beyond this many events. @default 1_000_000 */
  maxEvents?: number;
}

/**
 * Every event reachable from `eventIds` through `auth_events`, the starting
 * events excluded unless one is an ancestor of another. CoreError
 * MISSING_EVENT if any is unavailable, AUTH_CYCLE if the edges loop.
 */
export async function authChain(eventIds: Iterable<string>, getEvent: GetEvent, options: AuthChainOptions = {}): Promise<Set<string>> {
  const starts = [...new Set(eventIds)];
  const implicitCreate = options.roomVersion === undefined ? false : roomVersionRules(options.roomVersion).roomIdFromCreateEvent;
  const graph = await loadAuthGraph(starts, getEvent, { implicitCreate, maxEvents: options.maxEvents ?? 1_000_000 });
  const reached = new Uint8Array(graph.ids.length);
  const stack: number[] = [];
  for (const start of starts) stack.push(graph.index.get(start)!);
  const chain = new Set<string>();
  while (stack.length > 0) {
    const e = stack.pop()!;
    for (let k = graph.authStart[e]!; k < graph.authStart[e + 1]!; k++) {
      const a = graph.authList[k]!;
      if (reached[a]) continue;
      reached[a] = 1;
      chain.add(graph.ids[a]!);
      stack.push(a);
    }
  }
  return chain;
}

/** Events in some but not all of the given auth chains (∪ − ∩). */
export function authDifference(chains: readonly ReadonlySet<string>[]): Set<string> {
  const counts = new Map<string, number>();
  for (const chain of chains) for (const id of chain) counts.set(id, (counts.get(id) ?? 0) + 1);
  const difference = new Set<string>();
  for (const [id, count] of counts) if (count < chains.length) difference.add(id);
  return difference;
}

/**
 * The events in an order where each comes after its `prev_events` that are
 * among them; ready events go by depth, then origin_server_ts, then event ID.
 * A `prev_events` cycle is CoreError MALFORMED_EVENT.
 */
export function topologicalOrder(events: readonly PDU[]): PDU[] {
  const byId = new Map<string, number>();
  events.forEach((event, i) => {
    if (!byId.has(idOf(event))) byId.set(idOf(event), i);
  });
  const unique = [...byId.values()];
  const waiting = new Int32Array(events.length);
  const children: number[][] = events.map(() => []);
  for (const i of unique) {
    for (const parent of new Set(parentsOf(events[i]!))) {
      const p = byId.get(parent);
      if (p === undefined) continue;
      waiting[i]++;
      children[p]!.push(i);
    }
  }
  const depth = (e: PDU): number => (typeof e.depth === 'number' ? e.depth : 0);
  const heap = new MinHeap<number>((x, y) => {
    const a = events[x]!;
    const b = events[y]!;
    if (depth(a) !== depth(b)) return depth(a) < depth(b);
    if (a.origin_server_ts !== b.origin_server_ts) return a.origin_server_ts < b.origin_server_ts;
    return compareCodePoints(a.event_id!, b.event_id!) < 0;
  });
  for (const i of unique) if (waiting[i] === 0) heap.push(i);
  const ordered: PDU[] = [];
  for (let i = heap.pop(); i !== undefined; i = heap.pop()) {
    ordered.push(events[i]!);
    for (const child of children[i]!) if (--waiting[child] === 0) heap.push(child);
  }
  if (ordered.length < unique.length) throw new CoreError('MALFORMED_EVENT', 'prev_events form a cycle');
  return ordered;
}
