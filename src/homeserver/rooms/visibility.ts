/**
 * History visibility: whether a user may see one event, from the room state
 * before the event (its m.room.history_visibility and the user's membership)
 * and the user's current membership. The spec's rules ("m.room.history_visibility",
 * server behaviour), with Synapse's reading of "membership at the event": the
 * user's own member event counts with its new membership, and a user who was
 * joined or invited may see the event that removed them.
 */
import type { PDU } from '../../core/index.js';

export interface VisibilityInput {
  userId: string;
  event: Pick<PDU, 'type' | 'state_key' | 'content'>;
  /** history_visibility in the state before the event (default "shared"). */
  historyVisibility: string | undefined;
  /** The user's membership in the state before the event. */
  membershipBefore: string | undefined;
  /** The user's membership now. */
  membershipNow: string | undefined;
}

export function isEventVisible(input: VisibilityInput): boolean {
  const visibility = input.historyVisibility ?? 'shared';
  if (visibility === 'world_readable') return true;

  let membership = input.membershipBefore;
  const { event } = input;
  if (event.type === 'm.room.member' && event.state_key === input.userId) {
    const next = typeof event.content.membership === 'string' ? event.content.membership : undefined;
    if (next === 'leave' || next === 'ban') {
      if (membership === 'join' || membership === 'invite') return true;
    }
    membership = next;
  }
  if (membership === 'join') return true;
  if (visibility === 'shared' && input.membershipNow === 'join') return true;
  if (visibility === 'invited' && membership === 'invite') return true;
  return false;
}
