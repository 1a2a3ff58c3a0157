/**
 * Bounds on the lists and maps a request body may carry, so that no request
 * can make the server do unbounded work (createRoom with 3,000 invitees signed
 * 3,000 events in one go and held the event loop for 1.6 s) or fan out without
 * limit (a to-device message to '*' of many users). Each bound is far above
 * what a real client sends: matrix-js-sdk and the Rust SDK split key claims and
 * to-device batches into a few hundred at a time. Past a bound the request is
 * refused whole, before any work, with 413 M_TOO_LARGE naming the field, so a
 * client sees a clear, non-retryable answer and storage is untouched.
 */
import { tooLarge } from '../http/errors.js';

export const BOUNDS = {
  /** createRoom `invite`: one signed event per entry (Synapse's rc_invites.per_room burst is 10). */
  createRoomInvites: 100,
  /** createRoom `invite_3pid`. */
  createRoomThirdPartyInvites: 100,
  /** createRoom `initial_state`: one signed event per entry. */
  createRoomInitialState: 100,
  /** createRoom `power_level_content_override.users` and `.events`: entries of each map. */
  createRoomPowerLevelEntries: 1000,
  /** createRoom `creation_content.additional_creators` (room version 12). */
  createRoomAdditionalCreators: 100,
  /** keys/upload `one_time_keys` (clients upload 50 or fewer at a time). */
  oneTimeKeys: 1000,
  /** keys/upload `fallback_keys`: one per algorithm. */
  fallbackKeys: 10,
  /** keys/query `device_keys`: users named (each costs reads of its devices and cross-signing keys). */
  keysQueryUsers: 5000,
  /** keys/query: device IDs named across all users. */
  keysQueryDevices: 10_000,
  /** keys/claim `one_time_keys`: users named. */
  keysClaimUsers: 5000,
  /** keys/claim: devices named across all users (one claim each). */
  keysClaimDevices: 5000,
  /** keys/signatures/upload: signed keys across all users. */
  signatureUploads: 1000,
  /** sendToDevice `messages`: users named. */
  toDeviceUsers: 1000,
  /** sendToDevice: inboxes written, once '*' is expanded to every device of its user. */
  toDeviceTargets: 5000,
  /** sendToDevice: bytes of one message's content as JSON (a federation EDU must fit 64 KiB). */
  toDeviceContentBytes: 65_536,
  /** delete_devices `devices`. */
  deleteDevices: 1000,
  /** Tags on one room (each PUT adds one to the m.tag account data). */
  tagsPerRoom: 100,
  /** A push rule's `actions` and `conditions` (conditions run on every event the user receives). */
  pushRuleItems: 50,
} as const;

/** 413 M_TOO_LARGE unless `count` <= `max`; the message names the field and both numbers. */
export function checkCount(field: string, count: number, max: number): void {
  if (count > max) throw tooLarge(`'${field}' may hold at most ${max} entries (got ${count})`);
}

/** Bounds an array field (anything else is left to the type checks that follow). */
export function checkListLength(field: string, value: unknown, max: number): void {
  if (Array.isArray(value)) checkCount(field, value.length, max);
}

/** Bounds the keys of an object field (anything else is left to the type checks that follow). */
export function checkMapSize(field: string, value: unknown, max: number): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  let count = 0;
  // Counting stops at the bound: no array of a million keys is built to be thrown away.
  for (const key in value) {
    if (Object.hasOwn(value, key) && ++count > max) throw tooLarge(`'${field}' may hold at most ${max} entries`);
  }
}
