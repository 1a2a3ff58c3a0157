/**
 * Mainline ordering (state resolution v2, step 3). The *mainline* of the
 * resolved power levels event P₀ is P₀, the power levels event among P₀'s auth
 * events, that one's, and so on back to the first. Every other event is placed
 * by the closest mainline event it reaches through the same chain of power
 * levels auth events: the deeper (older) that ancestor, the earlier the event
 * is replayed; events reaching none go first. Ties fall to `origin_server_ts`,
 * then to the event ID. Walks share a memo per power levels event, so sorting
 * many events that cite the same power levels costs one walk, not one each.
 */
import { isStateEventOf, type ResolutionContext } from './context.js';

/** The first power levels event among event i's auth events, or -1. */
function powerLevelsParent(ctx: ResolutionContext, i: number): number {
  const { authStart, authList, events } = ctx.graph;
  for (let k = authStart[i]!; k < authStart[i + 1]!; k++) {
    const a = authList[k]!;
    if (isStateEventOf(events[a]!, 'm.room.power_levels')) return a;
  }
  return -1;
}

export function mainlineOrder(ctx: ResolutionContext, remaining: readonly number[], powerLevels: number | undefined): number[] {
  if (remaining.length === 0) return [];
  const { events } = ctx.graph;
  const n = events.length;
  // Position 1 is the oldest mainline event; 0 stands for "reaches no mainline event".
  const onMainline = new Int32Array(n);
  const mainline: number[] = [];
  for (let p = powerLevels ?? -1; p >= 0; p = powerLevelsParent(ctx, p)) mainline.push(p);
  mainline.forEach((p, k) => (onMainline[p] = mainline.length - k));

  const memo = new Int32Array(n).fill(-1);
  const path: number[] = [];
  const position = new Int32Array(n);
  for (const e of remaining) {
    let found = 0;
    for (let cur = e; cur >= 0; cur = powerLevelsParent(ctx, cur)) {
      if (onMainline[cur]! > 0) {
        found = onMainline[cur]!;
        break;
      }
      if (memo[cur]! >= 0) {
        found = memo[cur]!;
        break;
      }
      path.push(cur);
    }
    for (const p of path) memo[p] = found;
    path.length = 0;
    position[e] = found;
  }

  const { idRank } = ctx;
  return remaining.slice().sort((x, y) => {
    if (position[x] !== position[y]) return position[x]! - position[y]!;
    const tx = events[x]!.origin_server_ts;
    const ty = events[y]!.origin_server_ts;
    if (tx !== ty) return tx < ty ? -1 : 1;
    return idRank[x]! - idRank[y]!;
  });
}
