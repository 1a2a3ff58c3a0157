/**
 * Which events state resolution has to replay. The input state sets agree on
 * some entries: a key mapped to the same event in every set is *unconflicted*
 * and kept as is; every other value is in the *conflicted state set*. Replaying
 * only those would miss history one side has seen and the other has not, so the
 * *full conflicted set* adds the *auth difference*: the events in some but not
 * all of the sets' auth chains (∪Cᵢ − ∩Cᵢ, Cᵢ being the union of the auth
 * chains of the events of set i, the events themselves excluded, as the spec
 * defines an auth chain). Room version 12 (MSC4297) also adds the *conflicted
 * state subgraph*: every event on an auth path from one conflicted event down
 * to another, so state sets that name an old event still replay what lies
 * between it and the newer one.
 *
 * Both are linear passes over the loaded auth graph: chain membership of all
 * sets at once as bitsets pushed from descendants to ancestors, and the
 * subgraph as "below a conflicted event" ∧ "above a conflicted event".
 */
import type { AuthGraph } from '../auth-graph.js';
import type { StateMap } from '../types.js';

export interface Split {
  unconflicted: StateMap;
  /** Keys not mapped to the same event by every set. */
  conflictedKeys: string[];
  /** Every event ID under a conflicted key, each once. */
  conflicted: string[];
}

export function splitStateSets(stateSets: readonly StateMap[]): Split {
  const unconflicted: StateMap = new Map();
  const keys = new Set<string>();
  const [first, ...others] = stateSets;
  if (first) {
    for (const [key, id] of first) {
      let same = true;
      for (let s = 0; s < others.length && same; s++) same = others[s]!.get(key) === id;
      if (same) unconflicted.set(key, id);
      else keys.add(key);
    }
    for (const other of others) for (const key of other.keys()) if (!first.has(key)) keys.add(key);
  }
  const conflicted = new Set<string>();
  for (const key of keys) {
    for (const set of stateSets) {
      const id = set.get(key);
      if (id !== undefined) conflicted.add(id);
    }
  }
  return { unconflicted, conflictedKeys: [...keys], conflicted: [...conflicted] };
}

/**
 * Marks the auth difference of the state sets: `everywhere` are the graph
 * indices of the events every set holds (the unconflicted ones), `own[s]`
 * those of set s's other events. Shared events are not repeated per set, so
 * the cost grows with the conflicts, not with sets × state size.
 */
export function markAuthDifference(
  graph: AuthGraph,
  everywhere: readonly number[],
  own: readonly (readonly number[])[],
  out: Uint8Array,
): void {
  const n = graph.ids.length;
  const sets = own.length;
  if (sets === 0) return;
  const words = (sets + 31) >>> 5;
  const lastMask = sets & 31 ? 2 ** (sets & 31) - 1 : 0xffffffff;
  // inChain[e] has bit s when e is in the auth chain of set s; inSet likewise for membership.
  const inChain = new Uint32Array(n * words);
  const inSet = new Uint32Array(n * words);
  for (const e of everywhere) {
    for (let w = 0; w < words; w++) inSet[e * words + w] = w === words - 1 ? lastMask : 0xffffffff;
  }
  own.forEach((list, s) => {
    for (const e of list) inSet[e * words + (s >>> 5)] |= 1 << (s & 31);
  });
  const { order, authStart, authList } = graph;
  // Descendants before ancestors: an event's bits are final when it is reached.
  for (let k = n - 1; k >= 0; k--) {
    const e = order[k]!;
    const base = e * words;
    for (let p = authStart[e]!; p < authStart[e + 1]!; p++) {
      const pb = authList[p]! * words;
      for (let w = 0; w < words; w++) inChain[pb + w] |= inChain[base + w]! | inSet[base + w]!;
    }
  }
  for (let e = 0; e < n; e++) {
    const base = e * words;
    let any = 0;
    let all = true;
    for (let w = 0; w < words; w++) {
      const bits = inChain[base + w]!;
      any |= bits;
      if (bits !== (w === words - 1 ? lastMask : 0xffffffff)) all = false;
    }
    if (any !== 0 && !all) out[e] = 1;
  }
}

/** Marks the conflicted state subgraph (MSC4297) beyond the conflicted events themselves. */
export function markConflictedSubgraph(graph: AuthGraph, conflicted: Uint8Array, out: Uint8Array): void {
  const n = graph.ids.length;
  const { order, authStart, authList } = graph;
  // below[e]: reachable from a conflicted event by at least one auth edge.
  const below = new Uint8Array(n);
  for (let k = n - 1; k >= 0; k--) {
    const e = order[k]!;
    if (!below[e] && !conflicted[e]) continue;
    for (let p = authStart[e]!; p < authStart[e + 1]!; p++) below[authList[p]!] = 1;
  }
  // above[e]: reaches a conflicted event by at least one auth edge.
  const above = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const e = order[k]!;
    for (let p = authStart[e]!; p < authStart[e + 1]!; p++) {
      const a = authList[p]!;
      if (above[a] || conflicted[a]) {
        above[e] = 1;
        break;
      }
    }
  }
  for (let e = 0; e < n; e++) if (below[e] && above[e]) out[e] = 1;
}
