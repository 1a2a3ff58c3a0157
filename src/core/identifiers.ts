/**
 * Grammar of the identifiers events carry (spec appendix "Identifier
 * Grammar"): server names, user IDs, room IDs and event IDs, with the byte
 * limits the spec puts on them. Received events are judged by the historical
 * user ID grammar, which servers must still accept over federation.
 */
import { utf8Length } from './canonical-json.js';
import { CoreError } from './errors.js';

/** Longest user ID, room ID, event ID, event type or state key, in UTF-8 bytes. */
export const MAX_ID_BYTES = 255;

const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?$/;
const STRICT_LOCALPART = /^[a-z0-9._=\-/+]+$/;

/** `hostname [":" port]` where hostname is a DNS name, IPv4 literal or bracketed IPv6 literal. */
export function isValidServerName(name: string): boolean {
  return typeof name === 'string' && SERVER_NAME.test(name);
}

/**
 * Whether `id` is a user ID that must be accepted in events: `@`, a localpart
 * of any characters but `:` and NUL (the historical grammar; empty allowed),
 * `:`, a valid server name, at most 255 bytes in all. `strict` applies the
 * grammar for new user IDs instead (localpart of `a-z 0-9 . _ = - / +`).
 */
export function isValidUserId(id: unknown, opts?: { strict?: boolean }): id is string {
  if (typeof id !== 'string' || id.length < 3 || id.charCodeAt(0) !== 0x40 /* @ */) return false;
  const colon = id.indexOf(':');
  if (colon < 0) return false;
  const localpart = id.slice(1, colon);
  if (opts?.strict ? !STRICT_LOCALPART.test(localpart) : localpart.includes('\0')) return false;
  return isValidServerName(id.slice(colon + 1)) && utf8Length(id) <= MAX_ID_BYTES;
}

/**
 * The server name of a user ID (or any `&localpart:domain` identifier): the
 * text after the first colon, since localparts cannot contain one while server
 * names can (ports, IPv6). Throws `CoreError('MALFORMED_EVENT')` if there is none.
 */
export function serverNameOf(id: string): string {
  const colon = typeof id === 'string' ? id.indexOf(':') : -1;
  if (colon < 1 || colon === id.length - 1) {
    throw new CoreError('MALFORMED_EVENT', `${JSON.stringify(id)} has no server name`);
  }
  return id.slice(colon + 1);
}

const HASH_ID = /^[A-Za-z0-9_-]{43}$/;

/** An event ID of room versions 4+: `$` and the URL-safe unpadded base64 of a sha256 (43 characters). */
export function isHashEventId(id: unknown): id is string {
  return typeof id === 'string' && id.length === 44 && id.charCodeAt(0) === 0x24 /* $ */ && HASH_ID.test(id.slice(1));
}

/** A room ID of room version 12: `!` and the create event's reference hash. */
export function isHashRoomId(id: unknown): id is string {
  return typeof id === 'string' && id.length === 44 && id.charCodeAt(0) === 0x21 /* ! */ && HASH_ID.test(id.slice(1));
}

/** A room ID with a domain (room versions up to 11): `!opaque:server`, at most 255 bytes. */
export function isDomainRoomId(id: unknown): id is string {
  if (typeof id !== 'string' || id.charCodeAt(0) !== 0x21 /* ! */) return false;
  const colon = id.indexOf(':');
  return colon > 0 && !id.slice(1, colon).includes('\0') && isValidServerName(id.slice(colon + 1)) && utf8Length(id) <= MAX_ID_BYTES;
}
