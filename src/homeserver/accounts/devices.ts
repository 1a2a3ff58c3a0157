/**
 * Devices and access tokens. A login creates (or reuses) a device and issues
 * a token for it; removing a device takes everything that hangs off it with it
 * (tokens, end-to-end keys, its to-device inbox) and records a device list
 * change so other users' clients re-query the user's keys. These functions run
 * inside a caller's write transaction; IDs and tokens are drawn beforehand.
 */
import { randomId, type HomeserverContext } from '../context.js';
import type { WriteTxn } from '../../storage/types.js';
import { recordDeviceListChange } from '../keys/device-lists.js';

const DEVICE_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A device ID like Synapse's: ten upper-case letters. */
export function newDeviceId(ctx: Pick<HomeserverContext, 'randomBytes'>): string {
  const bytes = ctx.randomBytes(10);
  let out = '';
  for (const b of bytes) out += DEVICE_ID_ALPHABET[b % DEVICE_ID_ALPHABET.length];
  return out;
}

/** A new access token: 40 random letters and digits (~238 bits) behind a recognisable prefix. */
export function newAccessToken(ctx: Pick<HomeserverContext, 'randomBytes'>): string {
  return `htk_${randomId(ctx, 40)}`;
}

export interface SessionRequest {
  userId: string;
  deviceId: string;
  accessToken: string;
  /** Used only when the device is new. */
  displayName?: string;
  now: number;
}

/**
 * Issues `accessToken` for the device, creating the device if it does not
 * exist yet (and then announcing the user's changed device list). An existing
 * device keeps its name and its other tokens, as in Synapse.
 */
export async function openSession(txn: WriteTxn, request: SessionRequest): Promise<void> {
  const { userId, deviceId, now } = request;
  const existing = await txn.devices.get(userId, deviceId);
  if (!existing) {
    await txn.devices.put({
      userId,
      deviceId,
      createdAt: now,
      lastSeenTs: now,
      ...(request.displayName !== undefined ? { displayName: request.displayName } : {}),
    });
    await recordDeviceListChange(txn, userId, { devices: [deviceId] });
  }
  await txn.accessTokens.put({ token: request.accessToken, userId, deviceId, createdAt: now });
}

/**
 * Deletes the listed devices of one user with their tokens, keys and inboxes,
 * then records one device list change if any existed. Unknown IDs are skipped.
 * Returns the IDs that were deleted.
 */
export async function removeDevices(txn: WriteTxn, userId: string, deviceIds: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const deviceId of new Set(deviceIds)) {
    const device = await txn.devices.get(userId, deviceId);
    // Tokens are revoked even without a device row: a token must never outlive a logout.
    await txn.accessTokens.deleteForDevice(userId, deviceId);
    if (!device) continue;
    await txn.deviceKeys.delete(userId, deviceId);
    await txn.oneTimeKeys.deleteForDevice(userId, deviceId);
    await txn.fallbackKeys.deleteForDevice(userId, deviceId);
    await txn.toDevice.deleteUpTo(userId, deviceId, Number.MAX_SAFE_INTEGER);
    await txn.devices.delete(userId, deviceId);
    removed.push(deviceId);
  }
  if (removed.length > 0) await recordDeviceListChange(txn, userId, { devices: removed });
  return removed;
}
