/**
 * State resolution v2 (rooms 10 and 11) and v2.1 (room 12, MSC4297): given
 * the room states at the tips of a forked DAG, compute the one state every
 * server agrees on, from the events alone.
 *
 * 1. Split the state sets: keys with the same event everywhere are the
 *    *unconflicted state map*; all other values form the *conflicted state
 *    set*. Nothing conflicted: the unconflicted map is the answer.
 * 2. The *full conflicted set* is the conflicted state set plus the *auth
 *    difference* (events in some but not all of the sets' auth chains), plus in
 *    v2.1 the *conflicted state subgraph* (events on auth paths between two
 *    conflicted events). See conflicts.ts.
 * 3. Order its power events (and their conflicted auth ancestry) by the
 *    reverse topological power ordering (power-ordering.ts) and replay them with
 *    the iterative auth checks (iterative-auth.ts), starting from the
 *    unconflicted state map in v2 and from an *empty* map in v2.1.
 * 4. Order the remaining events by the mainline of the power levels event that
 *    step 3 produced (mainline.ts) and replay them on top.
 * 5. Put the unconflicted state map back over the result.
 *
 * Events come from an injected `getEvent` (sync or async), each fetched once
 * per call: the state events and their whole auth graph are loaded first
 * (auth-graph.ts), then the steps above run synchronously over integer indices.
 * Every event the algorithm needs must be available: a missing one is
 * CoreError MISSING_EVENT (ruma and Synapse skip some missing events instead,
 * which silently changes the answer); an auth_events cycle is AUTH_CYCLE.
 */
import { loadAuthGraph } from '../auth-graph.js';
import { roomVersionRules } from '../room-versions.js';
import type { GetEvent, StateMap } from '../types.js';
import { markAuthDifference, markConflictedSubgraph, splitStateSets } from './conflicts.js';
import { POWER_LEVELS_KEY, PartialState, createContext } from './context.js';
import { iterativeAuthChecks } from './iterative-auth.js';
import { mainlineOrder } from './mainline.js';
import { reverseTopologicalPowerOrder } from './power-ordering.js';

export interface ResolveStateOptions {
  /**
   * Most events (state events and their auth chains) one resolution may load;
   * beyond it CoreError TOO_LARGE. @default 1_000_000
   */
  maxEvents?: number;
  /**
   * Whether the server rejected an event: rejected events neither enter state
   * nor authorise others. @default every event counts as accepted
   */
  isRejected?: (eventId: string) => boolean;
}

export async function resolveState(
  roomVersion: string,
  stateSets: readonly StateMap[],
  getEvent: GetEvent,
  options: ResolveStateOptions = {},
): Promise<StateMap> {
  const rules = roomVersionRules(roomVersion);
  const { unconflicted, conflictedKeys, conflicted } = splitStateSets(stateSets);
  if (conflicted.length === 0) return unconflicted;

  const graph = await loadAuthGraph([...unconflicted.values(), ...conflicted], getEvent, {
    implicitCreate: rules.roomIdFromCreateEvent,
    maxEvents: options.maxEvents ?? 1_000_000,
  });
  const n = graph.ids.length;
  const at = (id: string): number => graph.index.get(id)!;

  const isConflicted = new Uint8Array(n);
  for (const id of conflicted) isConflicted[at(id)] = 1;
  const full = isConflicted.slice();
  const own = stateSets.map((set) => {
    const list: number[] = [];
    for (const key of conflictedKeys) {
      const id = set.get(key);
      if (id !== undefined) list.push(at(id));
    }
    return list;
  });
  markAuthDifference(graph, Array.from(unconflicted.values(), at), own, full);
  if (rules.stateResolution === 'v2.1') markConflictedSubgraph(graph, isConflicted, full);
  const fullList: number[] = [];
  for (let e = 0; e < n; e++) if (full[e]) fullList.push(e);

  const ctx = createContext(graph, roomVersion, rules, fullList, options.isRejected);
  const powerOrdered = reverseTopologicalPowerOrder(ctx, full);
  const state = new PartialState(rules.stateResolution === 'v2' ? unconflicted : new Map(), graph.index);
  iterativeAuthChecks(ctx, powerOrdered, state);

  const replayed = new Uint8Array(n);
  for (const e of powerOrdered) replayed[e] = 1;
  const rest = fullList.filter((e) => !replayed[e]);
  iterativeAuthChecks(ctx, mainlineOrder(ctx, rest, state.get(POWER_LEVELS_KEY)), state);

  const result: StateMap = new Map(unconflicted);
  for (const [key, e] of state.replayed) if (!unconflicted.has(key)) result.set(key, graph.ids[e]!);
  return result;
}
