/**
 * The authorization rules of room versions 10, 11 and 12, in the spec's order:
 *
 *  1. `m.room.create`: no prev_events; v10/11 room_id domain = sender domain,
 *     v12 no room_id; known `room_version`; v10 `creator`; v12 valid
 *     `additional_creators`.
 *  2. v12: room_id is derived from the create event.
 *  3. The auth event list: no duplicate (type, state_key), nothing the auth
 *     events selection would not pick, a create event, same room
 *     (auth-events.ts).
 *  4. `m.federate: false` keeps other servers out.
 *  5. `m.room.member` transitions (membership.ts).
 *  6. Everything else needs a joined sender; `m.room.third_party_invite`
 *     needs the invite level; every type needs its required power level; a
 *     state_key starting with '@' must be the sender's own ID.
 *  7. `m.room.power_levels` changes (power-levels.ts).
 *
 * `authEvents` is the state the check runs against: the event's resolved
 * auth_events on receipt, or state picked with `pickAuthEvents` for checks
 * against the state before the event, current state, or state resolution. The
 * create event must be among them in every version, v12 included, where it is
 * not in the event's auth_events but implied by its room_id. Pass it with its
 * `event_id`: the creator's first join needs it in v10/11, and in v12 it is
 * checked against the room_id (skipped if absent, i.e. the caller vouches).
 * The caller must not pass rejected events (rule "entries which were
 * themselves rejected"), and signatures and hashes are checked before this.
 * Redactions need nothing beyond their required power level here: the redact
 * level is applied when a redaction is carried out (see redaction.ts).
 */
import type { AuthResult, PDU } from '../types.js';
import { roomVersionRules, SUPPORTED_ROOM_VERSIONS, type RoomVersionRules } from '../room-versions.js';
import { isValidUserId } from '../identifiers.js';
import { indexAuthEvents } from './auth-events.js';
import { checkMemberEvent, type MemberSignatureVerifiers } from './membership.js';
import { actionPowerLevel, creatorsOf, powerLevelOf, powerLevelsChangeError, requiredPowerLevel } from './power-levels.js';
import { contentOf, domainOf, isObject, membershipOf } from './values.js';

/** Injected checks that need keys or crypto; see MemberSignatureVerifiers. */
export type AuthCheckOptions = MemberSignatureVerifiers;

const allow: AuthResult = { allowed: true };
const deny = (reason: string): AuthResult => ({ allowed: false, reason });

/** Is this event allowed by the authorization rules of `roomVersion`, given `authEvents`? Never throws. */
export function checkEventAuth(event: PDU, authEvents: PDU[], roomVersion: string, options: AuthCheckOptions = {}): AuthResult {
  if (!SUPPORTED_ROOM_VERSIONS.includes(roomVersion)) return deny(`unsupported room version ${JSON.stringify(roomVersion)}`);
  const rules = roomVersionRules(roomVersion);
  const malformed = shapeError(event);
  if (malformed) return deny(malformed);
  if (!Array.isArray(authEvents)) return deny('auth events must be a list');

  if (event.type === 'm.room.create') return checkCreate(event, rules);

  const index = indexAuthEvents(event, authEvents, rules);
  if (typeof index === 'string') return deny(index);
  const { create } = index;

  if (contentOf(create)['m.federate'] === false && domainOf(event.sender) !== domainOf(create.sender)) {
    return deny('room does not federate and sender is from another server than the creator');
  }

  const powerLevels = index.get('m.room.power_levels', '');
  const levelOf = (userId: string): number => powerLevelOf(userId, powerLevels, create, rules);

  if (event.type === 'm.room.member') return checkMemberEvent(event, { rules, authEvents: index, levelOf }, options);

  if (membershipOf(index.get('m.room.member', event.sender)) !== 'join') return deny('sender is not joined to the room');

  const senderLevel = levelOf(event.sender);
  if (event.type === 'm.room.third_party_invite') {
    const needed = actionPowerLevel('invite', powerLevels);
    if (senderLevel < needed) return deny(`power level too low to invite (needs ${needed}, has ${senderLevel})`);
    return allow;
  }

  const needed = requiredPowerLevel(event, powerLevels);
  if (needed > senderLevel) return deny(`power level too low to send ${event.type} (needs ${needed}, has ${senderLevel})`);

  if (typeof event.state_key === 'string' && event.state_key.startsWith('@') && event.state_key !== event.sender) {
    return deny("state_key starting with '@' must be the sender's own user ID");
  }

  if (event.type === 'm.room.power_levels') {
    const reason = powerLevelsChangeError(event, powerLevels, senderLevel, creatorsOf(create, rules), rules);
    if (reason) return deny(reason);
  }
  return allow;
}

/** The fields every rule reads, with their types; PDUs from peers are untrusted JSON. */
function shapeError(event: PDU): string | undefined {
  if (!isObject(event)) return 'event is not an object';
  if (typeof event.type !== 'string') return 'event has no type';
  if (typeof event.sender !== 'string') return 'event has no sender';
  if (!isObject(event.content)) return 'event content is not an object';
  if (event.state_key !== undefined && typeof event.state_key !== 'string') return 'event state_key is not a string';
  if (!Array.isArray(event.prev_events) || !event.prev_events.every((id) => typeof id === 'string')) {
    return 'event prev_events is not a list of event IDs';
  }
  if (event.type !== 'm.room.create' && typeof event.room_id !== 'string') return 'event has no room_id';
  return undefined;
}

function checkCreate(event: PDU, rules: RoomVersionRules): AuthResult {
  if (event.prev_events.length > 0) return deny('m.room.create event must not have prev_events');
  if (rules.roomIdFromCreateEvent) {
    if (event.room_id !== undefined) return deny('m.room.create event must not have a room_id in this room version');
  } else {
    const roomServer = domainOf(event.room_id);
    if (roomServer === undefined || roomServer !== domainOf(event.sender)) {
      return deny('m.room.create room_id domain does not match the sender domain');
    }
  }
  const content = event.content;
  // "Recognised" means a version this server can run; anything else could not be followed anyway.
  if (content.room_version !== undefined && !SUPPORTED_ROOM_VERSIONS.includes(content.room_version as string)) {
    return deny(`m.room.create has unrecognised room_version ${JSON.stringify(content.room_version)}`);
  }
  if (rules.privilegedCreators && content.additional_creators !== undefined) {
    const extra = content.additional_creators;
    if (!Array.isArray(extra) || !extra.every((id) => isValidUserId(id))) {
      return deny('m.room.create additional_creators must be a list of valid user IDs');
    }
  }
  if (!rules.implicitCreator && content.creator === undefined) return deny('m.room.create has no creator');
  return allow;
}
