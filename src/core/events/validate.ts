/**
 * The first check on receipt of a PDU: is it a well-formed event of its room
 * version at all? Owns the shape rules of the PDU schemas (pdu_v6 for room
 * version 10, pdu_v11, pdu_v12), the size limits of the client-server API
 * "Size limits" section, and the identifier grammar of senders and rooms.
 * An event that fails here is dropped, not stored as rejected; signatures,
 * hashes and auth rules come after (see the checks listed in DESIGN.md).
 */
import { canonicalJson, utf8Length } from '../canonical-json.js';
import { CoreError } from '../errors.js';
import { isDomainRoomId, isHashRoomId, isValidUserId, MAX_ID_BYTES } from '../identifiers.js';
import { isPlainObject } from '../json-util.js';
import { roomVersionRules } from '../room-versions.js';
import type { PDU } from '../types.js';

/** Largest event, in bytes of canonical JSON including signatures. */
export const MAX_PDU_BYTES = 65536;
export const MAX_PREV_EVENTS = 20;
export const MAX_AUTH_EVENTS = 10;

function malformed(reason: string): CoreError {
  return new CoreError('MALFORMED_EVENT', reason);
}

function checkEventIdList(event: Record<string, unknown>, key: 'prev_events' | 'auth_events', max: number): void {
  const list = event[key];
  if (!Array.isArray(list)) throw malformed(`\`${key}\` must be an array of event IDs`);
  if (list.length > max) throw malformed(`\`${key}\` lists ${list.length} events, at most ${max} are allowed`);
  for (let i = 0; i < list.length; i++) {
    const id = list[i];
    if (typeof id !== 'string' || id.charCodeAt(0) !== 0x24 /* $ */ || utf8Length(id) > MAX_ID_BYTES) {
      throw malformed(`\`${key}[${i}]\` is not an event ID`);
    }
  }
}

function checkIdString(event: Record<string, unknown>, key: string, required: boolean): void {
  const value = event[key];
  if (value === undefined && !required) return;
  if (typeof value !== 'string') throw malformed(`\`${key}\` must be a string`);
  if (utf8Length(value) > MAX_ID_BYTES) throw malformed(`\`${key}\` is longer than ${MAX_ID_BYTES} bytes`);
}

/**
 * Checks that `event` is a well-formed PDU of `roomVersion` and narrows its
 * type. Throws `CoreError('MALFORMED_EVENT', reason)` for a wrong shape,
 * `CoreError('TOO_LARGE')` for an event over 64 KiB of canonical JSON, and
 * `UNKNOWN_ROOM_VERSION` for a version we do not speak.
 *
 * Room IDs: every event of 10 and 11 has a `!opaque:server` room ID; in 12
 * the create event has none and every other event has `!` + a 43-character
 * hash. A top-level `event_id` is allowed (and size-checked) but not required.
 */
export function validatePdu(event: unknown, roomVersion: string): asserts event is PDU {
  const rules = roomVersionRules(roomVersion);
  if (!isPlainObject(event)) throw malformed('an event must be a JSON object');

  const type = event.type;
  if (typeof type !== 'string') throw malformed('`type` must be a string');
  if (utf8Length(type) > MAX_ID_BYTES) throw malformed(`\`type\` is longer than ${MAX_ID_BYTES} bytes`);

  if (!isValidUserId(event.sender)) throw malformed('`sender` is not a valid user ID');

  if (!isPlainObject(event.content)) throw malformed('`content` must be an object');

  const ts = event.origin_server_ts;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) throw malformed('`origin_server_ts` must be an integer');

  const depth = event.depth;
  if (typeof depth !== 'number' || !Number.isSafeInteger(depth) || depth < 0) {
    throw malformed('`depth` must be a non-negative integer');
  }

  checkEventIdList(event, 'prev_events', MAX_PREV_EVENTS);
  checkEventIdList(event, 'auth_events', MAX_AUTH_EVENTS);

  if (event.state_key !== undefined) {
    if (typeof event.state_key !== 'string') throw malformed('`state_key` must be a string');
    if (utf8Length(event.state_key) > MAX_ID_BYTES) throw malformed(`\`state_key\` is longer than ${MAX_ID_BYTES} bytes`);
  }
  checkIdString(event, 'event_id', false);

  const hashes = event.hashes;
  if (!isPlainObject(hashes) || typeof hashes.sha256 !== 'string') throw malformed('`hashes.sha256` must be a string');

  const signatures = event.signatures;
  if (!isPlainObject(signatures)) throw malformed('`signatures` must be an object');
  for (const server of Object.keys(signatures)) {
    const keys = signatures[server];
    if (!isPlainObject(keys)) throw malformed(`\`signatures[${JSON.stringify(server)}]\` must be an object`);
    for (const keyId of Object.keys(keys)) {
      if (typeof keys[keyId] !== 'string') throw malformed('signatures must be strings');
    }
  }

  if (event.unsigned !== undefined && !isPlainObject(event.unsigned)) throw malformed('`unsigned` must be an object');

  // Room ID presence and form.
  const isCreate = type === 'm.room.create' && event.state_key === '';
  if (rules.roomIdFromCreateEvent && isCreate) {
    if (Object.hasOwn(event, 'room_id')) throw malformed(`a room version ${rules.id} create event must not have a \`room_id\``);
  } else if (rules.roomIdFromCreateEvent) {
    if (!isHashRoomId(event.room_id)) throw malformed('`room_id` must be "!" and the create event\'s reference hash');
  } else if (!isDomainRoomId(event.room_id)) {
    throw malformed('`room_id` must be a room ID of the form "!opaque:server"');
  }

  // The v10 PDU schema types the top-level `redacts`; from v11 it is ordinary content.
  if (!rules.redactsInContent && event.redacts !== undefined && typeof event.redacts !== 'string') {
    throw malformed('`redacts` must be an event ID');
  }

  let text: string;
  try {
    text = canonicalJson(event);
  } catch (err) {
    if (err instanceof CoreError) throw malformed(err.message);
    throw err;
  }
  // Cheap bound first: UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (text.length * 3 > MAX_PDU_BYTES) {
    const size = utf8Length(text);
    if (size > MAX_PDU_BYTES) throw new CoreError('TOO_LARGE', `event is ${size} bytes of canonical JSON, at most ${MAX_PDU_BYTES} allowed`);
  }
}
