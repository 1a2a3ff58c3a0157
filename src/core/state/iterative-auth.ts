/**
 * The iterative auth checks (state resolution v2, steps 2 and 4): replay a
 * sorted list of state events onto a state map, keeping each event only if the
 * authorization rules allow it *against that state*. The events a check
 * consults are the spec's auth types for the event (create, power levels, the
 * sender's and target's membership, join rules, a third-party invite, the
 * authoriser of a restricted join): each comes from the partially resolved
 * state when it has the key, else from the event's own auth events. An event
 * that fails is dropped and replay goes on. As in ruma and Synapse, rejected
 * events neither authorise others nor enter state. (A missing auth event
 * cannot occur here: the whole auth graph was loaded first, and loading fails
 * with MISSING_EVENT instead, so an answer never rests on absent history.)
 *
 * From room 12 on events no longer cite the create event; the one their room
 * ID names is used, whatever the partial state holds (as ruma does).
 */
import { pickAuthEvents } from '../auth/auth-events.js';
import { checkEventAuth } from '../auth/auth-rules.js';
import { CoreError } from '../errors.js';
import type { PDU } from '../types.js';
import type { PartialState, ResolutionContext } from './context.js';

/** Replays `list` onto `state`, keeping the events that pass auth. */
export function iterativeAuthChecks(ctx: ResolutionContext, list: readonly number[], state: PartialState): void {
  const { graph, rules } = ctx;
  const { events, authStart, authList } = graph;
  const own = new Map<string, number>();
  const accepted = (i: number | undefined): number | undefined => (i === undefined || ctx.rejected(i) ? undefined : i);
  const lookup = (type: string, stateKey: string): PDU | undefined => {
    const key = ctx.keyFor(type, stateKey);
    const impliedCreate = rules.roomIdFromCreateEvent && type === 'm.room.create' && stateKey === '';
    const chosen = impliedCreate
      ? (accepted(own.get(key)) ?? accepted(state.get(key)))
      : (accepted(state.get(key)) ?? accepted(own.get(key)));
    return chosen === undefined ? undefined : events[chosen];
  };

  for (const e of list) {
    const event = events[e]!;
    const key = ctx.stateKey(e);
    if (key === undefined) {
      throw new CoreError('MALFORMED_EVENT', `${graph.ids[e]} is in the auth chain of state but is not a state event`);
    }
    if (ctx.rejected(e)) continue;
    // The graph's auth lists include the implied v12 create event.
    own.clear();
    for (let k = authStart[e]!; k < authStart[e + 1]!; k++) {
      const a = authList[k]!;
      const authKey = ctx.stateKey(a);
      if (authKey !== undefined) own.set(authKey, a);
    }
    if (checkEventAuth(event, pickAuthEvents(event, lookup, rules), ctx.roomVersion).allowed) state.set(key, e);
  }
}
