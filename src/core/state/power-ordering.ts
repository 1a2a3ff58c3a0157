/**
 * The reverse topological power ordering (state resolution v2, step 1). The
 * *power events* of the full conflicted set (power levels, join rules, the
 * create event, and kicks and bans: leaves or bans sent by someone other than
 * their target) are the ones that can take rights away, so they are replayed
 * first. Together with the events of the full conflicted set that authorise
 * them (walking `auth_events` only through members of that set, as Synapse
 * and ruma do) they form a DAG whose edges point from an event to its auth
 * events. Kahn's algorithm emits events whose auth events are all emitted,
 * picking among the ready ones the sender with the *highest* power level, then
 * the earliest `origin_server_ts`, then the smallest event ID; a binary heap
 * keeps each pick O(log n).
 *
 * A sender's power level here is read from the event's own auth events (its
 * `m.room.power_levels`, else the creator's implicit 100), not from resolved
 * state: the order must be known before any state is resolved. From room 12 on
 * the creators (create sender and `additional_creators`) outrank everyone.
 */
import { powerLevelOf } from '../auth/power-levels.js';
import { MinHeap } from '../heap.js';
import type { PDU } from '../types.js';
import { isStateEventOf, type ResolutionContext } from './context.js';

export function isPowerEvent(event: PDU): boolean {
  if (event.state_key === '') {
    if (event.type === 'm.room.power_levels' || event.type === 'm.room.join_rules' || event.type === 'm.room.create') {
      return true;
    }
  }
  if (event.type === 'm.room.member' && event.state_key !== undefined && event.state_key !== event.sender) {
    const membership = event.content.membership;
    return membership === 'leave' || membership === 'ban';
  }
  return false;
}

/** The power of event i's sender according to event i's own auth events. */
export function senderPowerLevel(ctx: ResolutionContext, i: number): number {
  const { events, authStart, authList } = ctx.graph;
  let powerLevels: PDU | undefined;
  let create: PDU | undefined;
  for (let k = authStart[i]!; k < authStart[i + 1]!; k++) {
    const candidate = events[authList[k]!]!;
    if (!powerLevels && isStateEventOf(candidate, 'm.room.power_levels')) powerLevels = candidate;
    else if (!create && isStateEventOf(candidate, 'm.room.create')) create = candidate;
  }
  return powerLevelOf(events[i]!.sender, powerLevels, create, ctx.rules);
}

/** Power events of the full conflicted set and their conflicted auth ancestry, replay order first. */
export function reverseTopologicalPowerOrder(ctx: ResolutionContext, full: Uint8Array): number[] {
  const { events, authStart, authList } = ctx.graph;
  const n = events.length;
  const inGraph = new Uint8Array(n);
  const outDegree = new Int32Array(n);
  const citers: (number[] | undefined)[] = [];
  const nodes: number[] = [];
  const stack: number[] = [];
  for (let e = 0; e < n; e++) {
    if (full[e] && isPowerEvent(events[e]!)) {
      inGraph[e] = 1;
      stack.push(e);
    }
  }
  while (stack.length > 0) {
    const e = stack.pop()!;
    nodes.push(e);
    for (let k = authStart[e]!; k < authStart[e + 1]!; k++) {
      const a = authList[k]!;
      if (!full[a]) continue;
      outDegree[e]++;
      (citers[a] ??= []).push(e);
      if (!inGraph[a]) {
        inGraph[a] = 1;
        stack.push(a);
      }
    }
  }

  const power = new Float64Array(n);
  for (const e of nodes) power[e] = senderPowerLevel(ctx, e);
  const { idRank } = ctx;
  const heap = new MinHeap<number>((x, y) => {
    if (power[x] !== power[y]) return power[x]! > power[y]!;
    const tx = events[x]!.origin_server_ts;
    const ty = events[y]!.origin_server_ts;
    if (tx !== ty) return tx < ty;
    return idRank[x]! < idRank[y]!;
  });
  for (const e of nodes) if (outDegree[e] === 0) heap.push(e);
  const sorted: number[] = [];
  for (let e = heap.pop(); e !== undefined; e = heap.pop()) {
    sorted.push(e);
    for (const c of citers[e] ?? []) if (--outDegree[c] === 0) heap.push(c);
  }
  return sorted;
}
