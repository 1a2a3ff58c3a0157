/**
 * Auth events: which state an event is authorised against. `authEventTypesFor`
 * is the spec's "auth events selection" (what a server lists in `auth_events`
 * when it builds an event); `pickAuthEvents` gathers those events, plus the
 * create event, from a state lookup for `checkEventAuth`; `indexAuthEvents`
 * applies the rules about the auth event list itself (no duplicates, nothing
 * unexpected, a create event, same room) and files what is left by
 * (type, state_key) for the rules that follow.
 */
import type { PDU } from '../types.js';
import { roomVersionRules, type RoomVersionRules } from '../room-versions.js';
import { stateKeyOf } from '../state-key.js';
import { isObject } from './values.js';

export type AuthEventKey = [type: string, stateKey: string];

/** The fields auth event selection looks at; a full PDU fits. */
export interface AuthEventSelectionInput {
  type: string;
  sender: string;
  state_key?: string;
  content: Record<string, unknown>;
}

function rulesOf(roomVersion: string | RoomVersionRules): RoomVersionRules {
  return typeof roomVersion === 'string' ? roomVersionRules(roomVersion) : roomVersion;
}

/**
 * The (type, state_key) pairs an event's `auth_events` may name, in the
 * spec's order. Empty for `m.room.create`. In v12 the create event is not
 * among them (the room ID stands for it); callers of `checkEventAuth` must
 * still pass it, see `pickAuthEvents`.
 */
export function authEventTypesFor(event: AuthEventSelectionInput, roomVersion: string | RoomVersionRules): AuthEventKey[] {
  if (event.type === 'm.room.create') return [];
  const rules = rulesOf(roomVersion);
  const keys: AuthEventKey[] = [];
  const add = (type: string, stateKey: string): void => {
    if (!keys.some(([t, s]) => t === type && s === stateKey)) keys.push([type, stateKey]);
  };
  if (!rules.roomIdFromCreateEvent) add('m.room.create', '');
  add('m.room.power_levels', '');
  add('m.room.member', event.sender);
  if (event.type !== 'm.room.member' || typeof event.state_key !== 'string') return keys;

  const content = isObject(event.content) ? event.content : {};
  const membership = content.membership;
  add('m.room.member', event.state_key);
  if (membership === 'join' || membership === 'invite' || (membership === 'knock' && rules.knocking)) {
    add('m.room.join_rules', '');
  }
  if (membership === 'invite' && isObject(content.third_party_invite)) {
    const signed = content.third_party_invite.signed;
    if (isObject(signed) && typeof signed.token === 'string') add('m.room.third_party_invite', signed.token);
  }
  const authoriser = content.join_authorised_via_users_server;
  if (membership === 'join' && rules.restrictedJoins && typeof authoriser === 'string') {
    add('m.room.member', authoriser);
  }
  return keys;
}

/**
 * The events `checkEventAuth` needs for `event`, looked up in some state
 * (current state, state before the event, or a state resolution step). The
 * create event always comes first, in every room version.
 */
export function pickAuthEvents(
  event: AuthEventSelectionInput,
  lookup: (type: string, stateKey: string) => PDU | undefined,
  roomVersion: string | RoomVersionRules,
): PDU[] {
  const rules = rulesOf(roomVersion);
  const keys = authEventTypesFor(event, rules);
  if (rules.roomIdFromCreateEvent && event.type !== 'm.room.create') keys.unshift(['m.room.create', '']);
  const picked: PDU[] = [];
  for (const [type, stateKey] of keys) {
    const found = lookup(type, stateKey);
    if (found) picked.push(found);
  }
  return picked;
}

/** Auth events filed by (type, state_key), after the list itself passed its rules. */
export interface AuthEventIndex {
  readonly create: PDU;
  get(type: string, stateKey: string): PDU | undefined;
}

/** The v12 create event's ID, from the room ID it defines ("!x" -> "$x"). */
export function createEventIdFromRoomId(roomId: string): string | undefined {
  return roomId.startsWith('!') && roomId.length > 1 ? `$${roomId.slice(1)}` : undefined;
}

/**
 * The auth-event-list rules (v10/11 rule 2, v12 rules 2-3) over the events the
 * caller supplied. Whether those events were themselves rejected is not
 * knowable here: callers must not pass rejected events.
 */
export function indexAuthEvents(event: PDU, authEvents: readonly PDU[], rules: RoomVersionRules): AuthEventIndex | string {
  const byKey = new Map<string, PDU>();
  for (const authEvent of authEvents) {
    if (!isObject(authEvent) || typeof authEvent.type !== 'string') return 'auth event is malformed (no type)';
    if (typeof authEvent.state_key !== 'string') return `auth event ${authEvent.type} is not a state event`;
    if (!isObject(authEvent.content)) return `auth event (${authEvent.type}, ${authEvent.state_key}) has no content object`;
    const key = stateKeyOf(authEvent.type, authEvent.state_key);
    if (byKey.has(key)) return `duplicate auth events for (${authEvent.type}, ${JSON.stringify(authEvent.state_key)})`;
    byKey.set(key, authEvent);
  }

  const create = byKey.get(stateKeyOf('m.room.create', ''));
  if (!create) return 'no m.room.create event among the auth events';

  if (rules.roomIdFromCreateEvent) {
    // v12 rule 2: the room ID *is* the create event's ID. The check needs the
    // create event's ID; stores carry it beside the event. Without it the
    // caller vouches that `create` belongs to this room.
    const roomId = event.room_id;
    if (typeof roomId !== 'string' || !roomId.startsWith('!')) return 'event has no valid room_id';
    if (create.room_id !== undefined) return 'm.room.create event must not have a room_id in this room version';
    if (typeof create.event_id === 'string' && createEventIdFromRoomId(roomId) !== create.event_id) {
      return `room_id ${roomId} is not derived from the m.room.create event ${create.event_id}`;
    }
    // v12 rule 3.2: the create event is implied by room_id and must not be listed.
    const impliedCreateId = createEventIdFromRoomId(roomId);
    if (Array.isArray(event.auth_events) && event.auth_events.some((id) => id === impliedCreateId || id === create.event_id)) {
      return 'auth_events must not list the m.room.create event in this room version';
    }
  }

  const allowed = authEventTypesFor(event, rules);
  if (rules.roomIdFromCreateEvent) allowed.push(['m.room.create', '']);
  for (const authEvent of byKey.values()) {
    const stateKey = authEvent.state_key as string;
    if (!allowed.some(([type, key]) => type === authEvent.type && key === stateKey)) {
      return `unexpected auth event (${authEvent.type}, ${JSON.stringify(stateKey)}) for ${event.type}`;
    }
    if (authEvent === create && rules.roomIdFromCreateEvent) continue;
    if (authEvent.room_id !== event.room_id) {
      return `auth event (${authEvent.type}, ${JSON.stringify(stateKey)}) is from another room`;
    }
  }

  return { create, get: (type, stateKey) => byKey.get(stateKeyOf(type, stateKey)) };
}
