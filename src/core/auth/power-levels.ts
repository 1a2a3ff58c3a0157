/**
 * Power levels: who the room creators are, what level a user has, what level
 * an action or event type requires (with the spec's defaults when the
 * `m.room.power_levels` event or one of its keys is missing), and the rules an
 * `m.room.power_levels` event must pass to replace the current one. In room
 * version 12 the creators (create event sender plus `additional_creators`)
 * have an infinite level that no power levels event can grant or take away.
 */
import type { PDU } from '../types.js';
import { roomVersionRules, type RoomVersionRules } from '../room-versions.js';
import { isValidUserId } from '../identifiers.js';
import { contentOf, isInteger, isObject } from './values.js';

export type PowerLevelAction = 'invite' | 'kick' | 'ban' | 'redact';

/** Spec defaults for a missing key, whether or not a power levels event exists. */
const ACTION_DEFAULTS: Readonly<Record<PowerLevelAction, number>> = { invite: 0, kick: 50, ban: 50, redact: 50 };
const STATE_DEFAULT = 50;
const EVENTS_DEFAULT = 0;
const USERS_DEFAULT = 0;
/** Without any power levels event, v10/11 give the creator this level. */
const CREATOR_LEVEL_WITHOUT_POWER_LEVELS = 100;
const NOTIFICATION_DEFAULTS: Readonly<Record<string, number>> = { room: 50 };

/** The integer keys whose changes rule "power levels" checks one by one. */
export const POWER_LEVEL_INT_KEYS = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

function rulesOf(roomVersion: string | RoomVersionRules): RoomVersionRules {
  return typeof roomVersion === 'string' ? roomVersionRules(roomVersion) : roomVersion;
}

/**
 * The room creators. v12: the create event's sender plus any valid
 * `additional_creators`. v11: the sender. v10: `content.creator` (the sender
 * is not consulted, the v10 rules only name `creator`).
 */
export function creatorsOf(createEvent: PDU | undefined, roomVersion: string | RoomVersionRules): string[] {
  if (!createEvent) return [];
  const rules = rulesOf(roomVersion);
  if (rules.privilegedCreators) {
    const extra = contentOf(createEvent).additional_creators;
    const additional = Array.isArray(extra) ? extra.filter((id): id is string => isValidUserId(id)) : [];
    return [createEvent.sender, ...additional];
  }
  if (rules.implicitCreator) return [createEvent.sender];
  const creator = contentOf(createEvent).creator;
  return typeof creator === 'string' ? [creator] : [];
}

export function isCreator(userId: string, createEvent: PDU | undefined, roomVersion: string | RoomVersionRules): boolean {
  return creatorsOf(createEvent, roomVersion).includes(userId);
}

/**
 * A user's power level. Infinity for v12 creators. Otherwise `users[userId]`,
 * else `users_default`, else 0; with no power levels event at all, 100 for the
 * creator of a v10/11 room. Non-integer values count as absent: accepted v10+
 * power levels events cannot contain them, so this only matters for garbage.
 */
export function powerLevelOf(
  userId: string,
  powerLevelsEvent: PDU | undefined,
  createEvent: PDU | undefined,
  roomVersion: string | RoomVersionRules,
): number {
  const rules = rulesOf(roomVersion);
  if (rules.privilegedCreators && isCreator(userId, createEvent, rules)) return Infinity;
  if (!powerLevelsEvent) {
    return isCreator(userId, createEvent, rules) ? CREATOR_LEVEL_WITHOUT_POWER_LEVELS : USERS_DEFAULT;
  }
  const content = contentOf(powerLevelsEvent);
  const users = isObject(content.users) ? content.users : {};
  const own = Object.hasOwn(users, userId) ? users[userId] : undefined;
  if (isInteger(own)) return own;
  return isInteger(content.users_default) ? content.users_default : USERS_DEFAULT;
}

/**
 * The level needed to send an event of this type: `events[type]`, else
 * `state_default` (50) for state events and `events_default` (0) otherwise.
 * Membership events are governed by invite/kick/ban instead; their rules do
 * not call this.
 */
export function requiredPowerLevel(event: { type: string; state_key?: string }, powerLevelsEvent: PDU | undefined): number {
  const content = contentOf(powerLevelsEvent);
  const events = isObject(content.events) ? content.events : {};
  const specific = Object.hasOwn(events, event.type) ? events[event.type] : undefined;
  if (isInteger(specific)) return specific;
  if (typeof event.state_key === 'string') {
    return isInteger(content.state_default) ? content.state_default : STATE_DEFAULT;
  }
  return isInteger(content.events_default) ? content.events_default : EVENTS_DEFAULT;
}

/** The invite, kick, ban or redact level (defaults 0, 50, 50, 50). */
export function actionPowerLevel(action: PowerLevelAction, powerLevelsEvent: PDU | undefined): number {
  const value = contentOf(powerLevelsEvent)[action];
  return isInteger(value) ? value : ACTION_DEFAULTS[action];
}

/** The level needed to trigger a notification kind, e.g. `room` for @room (default 50). */
export function notificationPowerLevel(key: string, powerLevelsEvent: PDU | undefined): number {
  const notifications = contentOf(powerLevelsEvent).notifications;
  const value = isObject(notifications) && Object.hasOwn(notifications, key) ? notifications[key] : undefined;
  return isInteger(value) ? value : (NOTIFICATION_DEFAULTS[key] ?? 50);
}

function intMapError(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) return `power levels ${name} must be an object`;
  for (const [key, level] of Object.entries(value)) {
    if (!isInteger(level)) return `power levels ${name}.${key} must be an integer`;
  }
  return undefined;
}

/** Reads a level for comparison; anything but an integer is treated as not set. */
function levelAt(map: unknown, key: string): number | undefined {
  if (!isObject(map) || !Object.hasOwn(map, key)) return undefined;
  const value = map[key];
  return isInteger(value) ? value : undefined;
}

function keysOf(...maps: unknown[]): Set<string> {
  const keys = new Set<string>();
  for (const map of maps) if (isObject(map)) for (const key of Object.keys(map)) keys.add(key);
  return keys;
}

const show = (level: number | undefined): string => (level === undefined ? 'unset' : String(level));

/**
 * The `m.room.power_levels` rule of the authorization rules (rule 9 in v10/11,
 * 10 in v12): the new content must be well typed, must not list v12 creators,
 * and, when it replaces an existing event, every value it adds, changes or
 * removes must stay within what the sender's current level allows. Returns the
 * reason to reject, or undefined to allow.
 */
export function powerLevelsChangeError(
  event: PDU,
  currentPowerLevels: PDU | undefined,
  senderLevel: number,
  creators: readonly string[],
  roomVersion: string | RoomVersionRules,
): string | undefined {
  const rules = rulesOf(roomVersion);
  const next = contentOf(event);

  // integerPowerLevels holds for every version we speak; string levels of
  // v1-9 are not supported, so the integer checks always run.
  for (const key of POWER_LEVEL_INT_KEYS) {
    if (next[key] !== undefined && !isInteger(next[key])) return `power levels ${key} must be an integer`;
  }
  const mapError = intMapError('events', next.events) ?? intMapError('notifications', next.notifications);
  if (mapError) return mapError;
  if (next.users !== undefined) {
    if (!isObject(next.users)) return 'power levels users must be an object';
    for (const [userId, level] of Object.entries(next.users)) {
      if (!isValidUserId(userId)) return `power levels users key ${JSON.stringify(userId)} is not a valid user ID`;
      if (!isInteger(level)) return `power levels users.${userId} must be an integer`;
    }
  }
  if (rules.privilegedCreators && isObject(next.users)) {
    const listed = creators.find((creator) => Object.hasOwn(next.users as Record<string, unknown>, creator));
    if (listed) return `room creator ${listed} must not be listed in power levels users`;
  }

  if (!currentPowerLevels) return undefined;
  const current = contentOf(currentPowerLevels);
  const has = show(senderLevel);

  for (const key of POWER_LEVEL_INT_KEYS) {
    const before = levelAt(current, key);
    const after = levelAt(next, key);
    if (before === after) continue;
    if (before !== undefined && before > senderLevel) {
      return `cannot change ${key} from ${before} (above own power level ${has})`;
    }
    if (after !== undefined && after > senderLevel) {
      return `cannot set ${key} to ${after} (above own power level ${has})`;
    }
  }

  for (const name of ['events', 'notifications'] as const) {
    for (const key of keysOf(current[name], next[name])) {
      const before = levelAt(current[name], key);
      const after = levelAt(next[name], key);
      if (before === after) continue;
      if (before !== undefined && before > senderLevel) {
        return `cannot change ${name}.${key} from ${before} (above own power level ${has})`;
      }
      if (after !== undefined && after > senderLevel) {
        return `cannot set ${name}.${key} to ${after} (above own power level ${has})`;
      }
    }
  }

  for (const userId of keysOf(current.users, next.users)) {
    const before = levelAt(current.users, userId);
    const after = levelAt(next.users, userId);
    if (before === after) continue;
    // Lowering oneself is always allowed; anyone else at or above the sender is out of reach.
    if (before !== undefined && userId !== event.sender && before >= senderLevel) {
      return `cannot change the power level of ${userId} (has ${before}, not below own ${has})`;
    }
    if (after !== undefined && after > senderLevel) {
      return `cannot raise ${userId} to ${after} (above own power level ${has})`;
    }
  }
  return undefined;
}
