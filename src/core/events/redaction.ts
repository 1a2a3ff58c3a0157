/**
 * The redaction algorithm (room versions 10, 11 and 12): what survives when an
 * event is redacted. It is also the first step of event IDs and event
 * signatures, so every server must get it byte-for-byte identical.
 *
 * v10 (spec fragment v9-redactions) keeps the top-level `origin`,
 * `membership` and `prev_state` and, in content: member `membership`,
 * `join_authorised_via_users_server`; create `creator`; join_rules
 * `join_rule`, `allow`; power_levels `ban events events_default kick redact
 * state_default users users_default`; history_visibility `history_visibility`.
 *
 * v11 and v12 (fragment v11-redactions; MSC2176, MSC3821, MSC3989) drop those
 * three top-level keys, keep create content whole, add power_levels `invite`,
 * redaction `redacts`, and member `third_party_invite.signed`. Like Synapse
 * (whose event IDs we must match), a `third_party_invite` object without
 * `signed` redacts to `{}` and a non-object one is dropped.
 *
 * `unsigned` never survives.
 */
import { MAX_CANONICAL_DEPTH } from '../canonical-json.js';
import { CoreError } from '../errors.js';
import { roomVersionRules, type RoomVersionRules } from '../room-versions.js';
import { isPlainObject, setOwn } from '../json-util.js';

const TOP_LEVEL_V11 = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
] as const;
const TOP_LEVEL_V10 = [...TOP_LEVEL_V11, 'prev_state', 'origin', 'membership'] as const;

const POWER_LEVELS_V10 = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

const CONTENT_V10: Readonly<Record<string, readonly string[]>> = {
  'm.room.member': ['membership', 'join_authorised_via_users_server'],
  'm.room.create': ['creator'],
  'm.room.join_rules': ['join_rule', 'allow'],
  'm.room.power_levels': POWER_LEVELS_V10,
  'm.room.history_visibility': ['history_visibility'],
};

const CONTENT_V11: Readonly<Record<string, readonly string[]>> = {
  'm.room.member': ['membership', 'join_authorised_via_users_server'],
  'm.room.join_rules': ['join_rule', 'allow'],
  'm.room.power_levels': [...POWER_LEVELS_V10, 'invite'],
  'm.room.history_visibility': ['history_visibility'],
  'm.room.redaction': ['redacts'],
};

function copyKeys(from: Record<string, unknown>, keys: readonly string[], to: Record<string, unknown>): void {
  for (const key of keys) {
    if (Object.hasOwn(from, key)) to[key] = from[key];
  }
}

/** The top-level keys the redaction algorithm of these rules keeps (`content` is always written). @internal */
export function redactionTopLevelKeys(rules: RoomVersionRules): readonly string[] {
  return rules.redactionV11 ? TOP_LEVEL_V11 : TOP_LEVEL_V10;
}

/**
 * The event's `content` (undefined reads as `{}`), checked as the redaction
 * algorithm needs it: throws `CoreError` for a non-string `type` or non-object `content`.
 * @internal
 */
export function contentForRedaction(event: Record<string, unknown>): Record<string, unknown> {
  if (typeof event.type !== 'string') throw new CoreError('MALFORMED_EVENT', 'event has no string `type`');
  const content = event.content === undefined ? {} : event.content;
  if (!isPlainObject(content)) throw new CoreError('MALFORMED_EVENT', 'event `content` must be an object');
  return content;
}

/**
 * What survives of `content` (from `contentForRedaction`) in an event of
 * this type, sharing values with it; the content itself where all of it survives.
 * @internal
 */
export function redactedContent(type: string, content: Record<string, unknown>, rules: RoomVersionRules): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  if (rules.redactionV11) {
    if (type === 'm.room.create') return content;
    const keys = Object.hasOwn(CONTENT_V11, type) ? CONTENT_V11[type] : undefined;
    if (keys) copyKeys(content, keys, kept);
    if (type === 'm.room.member' && Object.hasOwn(content, 'third_party_invite')) {
      const invite = content.third_party_invite;
      if (isPlainObject(invite)) kept.third_party_invite = Object.hasOwn(invite, 'signed') ? { signed: invite.signed } : {};
    }
  } else {
    const keys = Object.hasOwn(CONTENT_V10, type) ? CONTENT_V10[type] : undefined;
    if (keys) copyKeys(content, keys, kept);
  }
  return kept;
}

/**
 * The redacted form, sharing nested values with the input (no copies): for
 * hashing and signing, where the result is serialised at once. Callers that
 * keep the result use `redactEvent`.
 */
export function redactShared(event: object, rules: RoomVersionRules): Record<string, unknown> {
  if (!isPlainObject(event)) throw new CoreError('MALFORMED_EVENT', 'an event must be a JSON object');
  const content = contentForRedaction(event);
  const out: Record<string, unknown> = {};
  copyKeys(event, redactionTopLevelKeys(rules), out);
  // Always present, as in Synapse: the redacted form of an event has a content object.
  out.content = redactedContent(event.type as string, content, rules);
  return out;
}

/** A deep copy of JSON data that keeps `__proto__` as an ordinary key. */
function cloneJson(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_CANONICAL_DEPTH) throw new CoreError('NOT_CANONICAL', `nesting deeper than ${MAX_CANONICAL_DEPTH}`);
  if (Array.isArray(value)) return value.map((v) => cloneJson(v, depth + 1));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      setOwn(out, key, cloneJson(value[key], depth + 1));
    }
    return out;
  }
  return value;
}

/**
 * The event as the redaction algorithm of `roomVersion` leaves it: a new
 * object that shares nothing with the input. Throws `CoreError` for a
 * non-object event, a missing `type`, non-object `content`, or an unknown
 * room version.
 */
export function redactEvent(event: object, roomVersion: string): Record<string, unknown> {
  return cloneJson(redactShared(event, roomVersionRules(roomVersion))) as Record<string, unknown>;
}
