/**
 * Event IDs and (room version 12) room IDs: both are the event's reference
 * hash (server-server API "Calculating the reference hash for an event"), the
 * sha256 of the redacted event without `signatures` and `unsigned`, written
 * as URL-safe unpadded base64 behind a `$` or `!` sigil.
 *
 * An `event_id` key on the object is ignored: in these room versions it is
 * not part of the event (it cannot be, it is the event's own hash), but
 * stores and tests often carry it alongside.
 */
import { encodeBase64 } from '../base64.js';
import { canonicalJsonBytes } from '../canonical-json.js';
import { sha256 } from '../crypto.js';
import { CoreError } from '../errors.js';
import { roomVersionRules } from '../room-versions.js';
import { redactShared } from './redaction.js';

/** The raw reference hash of an event. */
export function referenceHash(event: object, roomVersion: string): Uint8Array {
  const { signatures: _s, event_id: _e, ...hashed } = redactShared(event, roomVersionRules(roomVersion));
  return sha256(canonicalJsonBytes(hashed));
}

/** `$` + the URL-safe unpadded base64 reference hash (44 characters). */
export function eventIdOf(event: object, roomVersion: string): string {
  return '$' + encodeBase64(referenceHash(event, roomVersion), { urlSafe: true });
}

/**
 * The room ID a create event defines in room versions whose IDs come from it
 * (12): `!` + its reference hash. `CoreError('MALFORMED_EVENT')` for other
 * event types or a create event that has a `room_id`; `UNKNOWN_ROOM_VERSION`
 * for versions whose room IDs are chosen freely.
 */
export function roomIdFromCreateEvent(createEvent: object, roomVersion: string): string {
  const rules = roomVersionRules(roomVersion);
  if (!rules.roomIdFromCreateEvent) {
    throw new CoreError('UNKNOWN_ROOM_VERSION', `room IDs of room version ${roomVersion} are not derived from the create event`);
  }
  const ev = createEvent as Record<string, unknown>;
  if (typeof createEvent !== 'object' || createEvent === null || ev.type !== 'm.room.create') {
    throw new CoreError('MALFORMED_EVENT', 'room IDs are derived from m.room.create events only');
  }
  if (Object.hasOwn(ev, 'room_id')) {
    throw new CoreError('MALFORMED_EVENT', `a room version ${roomVersion} create event has no room_id`);
  }
  return '!' + encodeBase64(referenceHash(createEvent, roomVersion), { urlSafe: true });
}
