/**
 * What the steps of one state resolution share: the loaded auth graph, the
 * room version's rules, and per-event facts computed once (state keys, ID
 * ranks) so the sorts compare integers instead of re-reading events.
 */
import type { AuthGraph } from '../auth-graph.js';
import { compareCodePoints } from '../canonical-json.js';
import type { RoomVersionRules } from '../room-versions.js';
import { stateKeyOf } from '../state-key.js';
import type { PDU, StateMap } from '../types.js';

export const POWER_LEVELS_KEY = stateKeyOf('m.room.power_levels', '');

export interface ResolutionContext {
  readonly graph: AuthGraph;
  readonly roomVersion: string;
  readonly rules: RoomVersionRules;
  /** State map key of event i, or undefined for a non-state event. */
  stateKey(i: number): string | undefined;
  /**
   * stateKeyOf, memoised: the same key string object comes back each time, so
   * maps hash it once instead of on every lookup of a fresh JSON string.
   */
  keyFor(type: string, stateKey: string): string;
  /** Whether event i was rejected (then it neither enters state nor authorises others). */
  rejected(i: number): boolean;
  /** Rank of event i's ID in code point order among the full conflicted set. */
  readonly idRank: Int32Array;
}

export function isStateEventOf(event: PDU, type: string): boolean {
  return event.type === type && event.state_key === '';
}

export function createContext(
  graph: AuthGraph,
  roomVersion: string,
  rules: RoomVersionRules,
  ranked: readonly number[],
  isRejected: ((eventId: string) => boolean) | undefined,
): ResolutionContext {
  const keys: (string | undefined | null)[] = new Array(graph.ids.length).fill(null);
  const byType = new Map<string, Map<string, string>>();
  const keyFor = (type: string, stateKey: string): string => {
    let byStateKey = byType.get(type);
    if (!byStateKey) byType.set(type, (byStateKey = new Map()));
    let key = byStateKey.get(stateKey);
    if (key === undefined) byStateKey.set(stateKey, (key = stateKeyOf(type, stateKey)));
    return key;
  };
  const idRank = new Int32Array(graph.ids.length);
  const sorted = ranked.slice().sort((a, b) => compareCodePoints(graph.ids[a]!, graph.ids[b]!));
  sorted.forEach((e, rank) => (idRank[e] = rank));
  return {
    graph,
    roomVersion,
    rules,
    idRank,
    keyFor,
    stateKey(i) {
      let key = keys[i];
      if (key === null) {
        const event = graph.events[i]!;
        key = keys[i] = event.state_key === undefined ? undefined : keyFor(event.type, event.state_key);
      }
      return key;
    },
    rejected: isRejected ? (i) => isRejected(graph.ids[i]!) : () => false,
  };
}

/**
 * The partially resolved state of steps 2–4: the replayed events over a base
 * map of event IDs (the unconflicted state in v2, nothing in v2.1), so the
 * base is never copied.
 */
export class PartialState {
  readonly replayed = new Map<string, number>();

  constructor(
    private readonly base: StateMap,
    private readonly index: ReadonlyMap<string, number>,
  ) {}

  get(key: string): number | undefined {
    const e = this.replayed.get(key);
    if (e !== undefined) return e;
    const id = this.base.get(key);
    return id === undefined ? undefined : this.index.get(id);
  }

  set(key: string, e: number): void {
    this.replayed.set(key, e);
  }
}
