/**
 * The shape of a filter (spec "Filtering": Filter, RoomFilter, EventFilter,
 * RoomEventFilter), checked when a client uploads one and reusable for the
 * inline filters /sync accepts. Unknown keys are allowed (clients send
 * unstable ones); keys the spec defines must have the spec's types.
 */
import type { JsonObject } from '../../core/index.js';
import { badJson } from '../http/errors.js';
import { isJsonObject } from '../http/params.js';

type Json = Record<string, unknown>;

function fail(path: string, what: string): never {
  throw badJson(`Invalid filter: ${path} must be ${what}`);
}

function checkStrings(value: unknown, path: string, prefix?: string): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) fail(path, 'an array');
  for (const item of value) {
    if (typeof item !== 'string' || (prefix !== undefined && !item.startsWith(prefix))) {
      fail(path, prefix ? `an array of IDs starting with "${prefix}"` : 'an array of strings');
    }
  }
}

function checkBoolean(value: unknown, path: string): void {
  if (value !== undefined && typeof value !== 'boolean') fail(path, 'a boolean');
}

function checkEventFilter(value: unknown, path: string): void {
  if (value === undefined) return;
  if (!isJsonObject(value)) fail(path, 'an object');
  // Zero is allowed although the spec says "greater than 0": clients send it to mean "nothing".
  if (value.limit !== undefined && !(Number.isSafeInteger(value.limit) && (value.limit as number) >= 0)) {
    fail(`${path}.limit`, 'a non-negative integer');
  }
  checkStrings(value.types, `${path}.types`);
  checkStrings(value.not_types, `${path}.not_types`);
  checkStrings(value.senders, `${path}.senders`, '@');
  checkStrings(value.not_senders, `${path}.not_senders`, '@');
}

function checkRoomEventFilter(value: unknown, path: string): void {
  checkEventFilter(value, path);
  if (value === undefined) return;
  const filter = value as Json;
  checkStrings(filter.rooms, `${path}.rooms`, '!');
  checkStrings(filter.not_rooms, `${path}.not_rooms`, '!');
  for (const key of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications']) {
    checkBoolean(filter[key], `${path}.${key}`);
  }
}

/** Throws M_BAD_JSON naming the first key that breaks the filter grammar; returns the filter otherwise. */
export function checkFilter(value: unknown): JsonObject {
  if (!isJsonObject(value)) fail('filter', 'an object');
  checkStrings(value.event_fields, 'event_fields');
  if (value.event_format !== undefined && value.event_format !== 'client' && value.event_format !== 'federation') {
    fail('event_format', '"client" or "federation"');
  }
  checkEventFilter(value.presence, 'presence');
  checkEventFilter(value.account_data, 'account_data');
  const room = value.room;
  if (room !== undefined) {
    if (!isJsonObject(room)) fail('room', 'an object');
    checkStrings(room.rooms, 'room.rooms', '!');
    checkStrings(room.not_rooms, 'room.not_rooms', '!');
    checkBoolean(room.include_leave, 'room.include_leave');
    for (const key of ['ephemeral', 'state', 'timeline', 'account_data']) checkRoomEventFilter(room[key], `room.${key}`);
  }
  return value as JsonObject;
}
