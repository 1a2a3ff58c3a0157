/**
 * Checks on what local users ask the room engine to write, before anything is
 * built: identifier grammar (room IDs, aliases), the byte limits the spec puts
 * on event types and state keys, and the shapes of content the auth rules
 * would otherwise answer with a confusing 403 (power levels). Each failure is
 * a MatrixError with the errcode a client expects: wrong JSON types are
 * M_BAD_JSON, well-typed but invalid values M_INVALID_PARAM, over-long
 * identifiers M_TOO_LARGE (as Synapse's size checks answer).
 */
import { isValidServerName, isValidUserId, MAX_ID_BYTES, utf8Length } from '../../core/index.js';
import { badJson, invalidParam, tooLarge } from '../http/errors.js';

export interface ParsedAlias {
  alias: string;
  localpart: string;
  server: string;
}

/** Parses `#localpart:server`; undefined if it is not a valid room alias. */
export function parseRoomAlias(alias: unknown): ParsedAlias | undefined {
  if (typeof alias !== 'string' || !alias.startsWith('#') || utf8Length(alias) > MAX_ID_BYTES) return undefined;
  const colon = alias.indexOf(':');
  if (colon < 1) return undefined;
  const localpart = alias.slice(1, colon);
  const server = alias.slice(colon + 1);
  if (/[\s\0]/.test(localpart) || !isValidServerName(server)) return undefined;
  return { alias, localpart, server };
}

/** Rejects an event type or state key longer than the spec's 255 bytes. */
export function checkIdLength(what: string, value: string): void {
  if (utf8Length(value) > MAX_ID_BYTES) throw tooLarge(`'${what}' is longer than ${MAX_ID_BYTES} bytes`);
}

const INT_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

const isInt = (value: unknown): boolean => typeof value === 'number' && Number.isSafeInteger(value);

/**
 * The shape Synapse's power levels schema enforces on locally sent
 * m.room.power_levels content: integer levels, maps of integers, user IDs as
 * keys of `users`. (Strings that parse as integers are refused: room
 * versions 10+ need real integers.)
 */
export function checkPowerLevelsContent(content: Record<string, unknown>): void {
  for (const key of INT_KEYS) {
    if (content[key] !== undefined && !isInt(content[key])) throw badJson(`power levels '${key}' must be an integer`);
  }
  for (const map of ['events', 'notifications', 'users'] as const) {
    const value = content[map];
    if (value === undefined) continue;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badJson(`power levels '${map}' must be an object`);
    for (const [key, level] of Object.entries(value)) {
      if (!isInt(level)) throw badJson(`power levels '${map}.${key}' must be an integer`);
      if (map === 'users' && !isValidUserId(key)) throw badJson(`power levels 'users' key ${JSON.stringify(key)} is not a user ID`);
    }
  }
}

/** Reads an optional string `reason` from a request body. */
export function optionalReason(body: Record<string, unknown>): string | undefined {
  const reason = body.reason;
  if (reason === undefined) return undefined;
  if (typeof reason !== 'string') throw badJson("'reason' must be a string");
  return reason;
}

/** A user ID from a request body or path, as M_INVALID_PARAM when malformed. */
export function requireUserId(value: unknown, what = 'user_id'): string {
  if (typeof value !== 'string') throw badJson(`'${what}' must be a string`);
  if (!isValidUserId(value)) throw invalidParam(`Invalid ${what}: ${value}`);
  return value;
}
