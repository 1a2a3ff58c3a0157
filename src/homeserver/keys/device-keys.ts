/**
 * Device keys, one-time keys and fallback keys (spec: "End-to-end encryption",
 * key management API): uploading a device's keys, answering key queries, and
 * claiming one-time keys. A one-time key is handed out at most once: the read
 * and the delete happen in the same write transaction. When a device's
 * identity keys change, the owner's device list is marked changed so the
 * users they share rooms with re-query it.
 */
import { isValidUserId, serverNameOf, type JsonObject, type JsonValue } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { badJson, invalidParam } from '../http/errors.js';
import type { Requester } from '../http/router.js';
import type { ReadTxn, WriteTxn } from '../../storage/types.js';
import { cloneJson, expectObject, mergeAllSignatures, sameSignedContent, splitKeyId } from './json.js';
import { isJsonObject } from '../http/params.js';
import { privateSignaturesFor } from './cross-signing.js';
import { BOUNDS, checkCount, checkMapSize } from '../limits/bounds.js';
import { skipCorruptRows } from '../corrupt-rows.js';
import type { OnCorruptRow } from '../../storage/errors.js';
import { ownSlot, setOwn } from '../own-keys.js';
import { recordDeviceListChange } from './device-lists.js';

/** The algorithm whose count clients expect in every one_time_key_counts (Synapse reports it even at 0). */
const SIGNED_CURVE25519 = 'signed_curve25519';

/** A failure entry for a server we cannot reach (there is no federation yet). */
function unreachable(server: string): JsonObject {
  return { status: 503, message: `Not ready for retry: ${server} is not reachable` };
}

/** Checks a { "algorithm:id": key } map; keys are objects (signed) or strings (legacy unsigned curve25519). */
function checkKeyMap(value: unknown, what: string): Record<string, JsonValue> {
  const map = expectObject(value, what);
  for (const [id, key] of Object.entries(map)) {
    splitKeyId(id);
    if (!isJsonObject(key) && typeof key !== 'string') throw badJson(`${what}.${id} must be an object or a string`);
  }
  return map as Record<string, JsonValue>;
}

export interface KeysUploadBody {
  device_keys?: JsonObject;
  one_time_keys?: Record<string, JsonValue>;
  fallback_keys?: Record<string, JsonValue>;
}

/** Checks the body of POST /keys/upload completely; M_BAD_JSON or M_INVALID_PARAM on the first problem. */
export function parseKeysUpload(body: Record<string, unknown>, requester: Requester): KeysUploadBody {
  const out: KeysUploadBody = {};
  if (body.device_keys !== undefined && body.device_keys !== null) {
    const dk = expectObject(body.device_keys, 'device_keys');
    if (typeof dk.user_id !== 'string' || typeof dk.device_id !== 'string') {
      throw badJson('device_keys.user_id and device_keys.device_id must be strings');
    }
    if (dk.user_id !== requester.userId || dk.device_id !== requester.deviceId) {
      throw invalidParam('device_keys.user_id and device_keys.device_id must match the access token');
    }
    if (!Array.isArray(dk.algorithms) || !dk.algorithms.every((a) => typeof a === 'string')) {
      throw badJson('device_keys.algorithms must be an array of strings');
    }
    const keys = expectObject(dk.keys, 'device_keys.keys');
    for (const [id, key] of Object.entries(keys)) {
      splitKeyId(id);
      if (typeof key !== 'string') throw badJson(`device_keys.keys.${id} must be a string`);
    }
    if (dk.signatures !== undefined) expectObject(dk.signatures, 'device_keys.signatures');
    // What the server adds on the way out (the display name) is not the client's to store.
    const { unsigned: _unsigned, ...keysToStore } = dk;
    out.device_keys = keysToStore as JsonObject;
  }
  if (body.one_time_keys !== undefined && body.one_time_keys !== null) {
    checkMapSize('one_time_keys', body.one_time_keys, BOUNDS.oneTimeKeys);
    out.one_time_keys = checkKeyMap(body.one_time_keys, 'one_time_keys');
  }
  const fallback = body.fallback_keys ?? body['org.matrix.msc2732.fallback_keys'];
  checkMapSize('fallback_keys', fallback, BOUNDS.fallbackKeys);
  if (fallback !== undefined && fallback !== null) out.fallback_keys = checkKeyMap(fallback, 'fallback_keys');
  return out;
}

/** POST /keys/upload: stores what was given and returns the device's unclaimed one-time key counts. */
export async function uploadKeys(ctx: HomeserverContext, requester: Requester, body: KeysUploadBody): Promise<{ one_time_key_counts: Record<string, number> }> {
  const { userId, deviceId } = requester;
  return ctx.storage.write(async (txn) => {
    if (body.device_keys) {
      const old = await txn.deviceKeys.get(userId, deviceId);
      if (!old || !sameSignedContent(old.keys, body.device_keys)) {
        await txn.deviceKeys.put({ userId, deviceId, keys: body.device_keys });
        await recordDeviceListChange(txn, userId, { devices: [deviceId] });
      } else {
        // Same keys again: keep signatures made since (e.g. by the self-signing key), add any new ones.
        const merged = mergeAllSignatures(old.keys, body.device_keys.signatures as Record<string, unknown> | undefined);
        await txn.deviceKeys.put({ userId, deviceId, keys: merged });
      }
    }
    if (body.one_time_keys) {
      const fresh: Record<string, JsonValue> = {};
      for (const [id, key] of Object.entries(body.one_time_keys)) {
        const existing = await txn.oneTimeKeys.get(userId, deviceId, id);
        if (existing === undefined) setOwn(fresh, id, key);
        else if (JSON.stringify(existing) !== JSON.stringify(key)) {
          // A client re-using a key ID for a different key has lost track of its keys; refuse, as Synapse does.
          throw invalidParam(`One-time key ${id} already exists with different content`);
        }
      }
      if (Object.keys(fresh).length > 0) await txn.oneTimeKeys.add(userId, deviceId, fresh);
    }
    if (body.fallback_keys) {
      for (const [id, key] of Object.entries(body.fallback_keys)) {
        const [algorithm, keyId] = splitKeyId(id);
        const existing = await txn.fallbackKeys.get(userId, deviceId, algorithm);
        // Re-uploading the same fallback key must not make a used key look unused again.
        if (existing && existing.keyId === keyId && JSON.stringify(existing.key) === JSON.stringify(key)) continue;
        await txn.fallbackKeys.put(userId, deviceId, id, key);
      }
    }
    const counts = await txn.oneTimeKeys.counts(userId, deviceId);
    return { one_time_key_counts: { [SIGNED_CURVE25519]: 0, ...counts } };
  });
}

export interface KeysQueryResult {
  device_keys: Record<string, Record<string, JsonObject>>;
  master_keys: Record<string, JsonObject>;
  self_signing_keys: Record<string, JsonObject>;
  user_signing_keys: Record<string, JsonObject>;
  failures: Record<string, JsonObject>;
}

/** Checks the body of POST /keys/query: { device_keys: { userId: [deviceId, ...] } }. */
export function parseKeysQuery(body: Record<string, unknown>): Map<string, string[]> {
  const wanted = expectObject(body.device_keys, 'device_keys');
  checkMapSize('device_keys', wanted, BOUNDS.keysQueryUsers);
  const out = new Map<string, string[]>();
  let devicesNamed = 0;
  for (const [userId, devices] of Object.entries(wanted)) {
    if (!isValidUserId(userId)) throw invalidParam(`device_keys: ${JSON.stringify(userId)} is not a valid user ID`);
    if (!Array.isArray(devices) || !devices.every((d) => typeof d === 'string')) {
      throw badJson(`device_keys.${userId} must be an array of device IDs`);
    }
    devicesNamed += devices.length;
    checkCount('device_keys (devices named)', devicesNamed, BOUNDS.keysQueryDevices);
    out.set(userId, devices as string[]);
  }
  return out;
}

/** POST /keys/query: device and cross-signing keys of local users; other servers are reported as failures. */
export async function queryKeys(ctx: HomeserverContext, requester: Requester, wanted: Map<string, string[]>): Promise<KeysQueryResult> {
  const result: KeysQueryResult = { device_keys: {}, master_keys: {}, self_signing_keys: {}, user_signing_keys: {}, failures: {} };
  await ctx.storage.read(async (txn) => {
    for (const [userId, deviceIds] of wanted) {
      const server = serverNameOf(userId);
      if (server !== ctx.serverName) {
        setOwn(result.failures, server, unreachable(server));
        continue;
      }
      const deviceKeys = await deviceKeysOf(txn, userId, deviceIds, skipCorruptRows(ctx.log, `device keys of ${userId}`));
      setOwn(result.device_keys, userId, deviceKeys);
      for (const record of await txn.crossSigningKeys.forUser(userId, skipCorruptRows(ctx.log, `cross-signing keys of ${userId}`))) {
        if (record.keyType === 'user_signing' && userId !== requester.userId) continue;
        let keys = cloneJson(record.keys);
        if (record.keyType === 'master' && userId !== requester.userId) {
          // The requester's own user-signing signature of this master key is shown to the requester only.
          keys = mergeAllSignatures(keys, await privateSignaturesFor(txn, requester.userId, userId));
        }
        const section = record.keyType === 'master' ? 'master_keys' : record.keyType === 'self_signing' ? 'self_signing_keys' : 'user_signing_keys';
        setOwn(result[section], userId, keys);
      }
    }
  });
  return result;
}

async function deviceKeysOf(txn: ReadTxn, userId: string, deviceIds: string[], onCorrupt: OnCorruptRow): Promise<Record<string, JsonObject>> {
  const out: Record<string, JsonObject> = {};
  // Named devices are picked from the list too, so a poisoned row is skipped the same way (a user has few devices).
  const named = new Set(deviceIds);
  const records = (await txn.deviceKeys.forUser(userId, onCorrupt)).filter((r) => named.size === 0 || named.has(r.deviceId));
  const devices = new Map((await txn.devices.forUser(userId)).map((d) => [d.deviceId, d]));
  for (const record of records) {
    const device = devices.get(record.deviceId);
    if (!device) continue; // keys outliving their device are not shown
    const keys = cloneJson(record.keys);
    const unsigned: JsonObject = isJsonObject(keys.unsigned) ? (keys.unsigned as JsonObject) : {};
    if (device.displayName !== undefined) unsigned.device_display_name = device.displayName;
    keys.unsigned = unsigned;
    setOwn(out, record.deviceId, keys);
  }
  return out;
}

/** Checks the body of POST /keys/claim: { one_time_keys: { userId: { deviceId: algorithm } } }. */
export function parseKeysClaim(body: Record<string, unknown>): Map<string, Map<string, string>> {
  const wanted = expectObject(body.one_time_keys, 'one_time_keys');
  checkMapSize('one_time_keys', wanted, BOUNDS.keysClaimUsers);
  const out = new Map<string, Map<string, string>>();
  let devicesNamed = 0;
  for (const [userId, devices] of Object.entries(wanted)) {
    if (!isValidUserId(userId)) throw invalidParam(`one_time_keys: ${JSON.stringify(userId)} is not a valid user ID`);
    const byDevice = expectObject(devices, `one_time_keys.${userId}`);
    const map = new Map<string, string>();
    for (const [deviceId, algorithm] of Object.entries(byDevice)) {
      checkCount('one_time_keys (devices named)', ++devicesNamed, BOUNDS.keysClaimDevices);
      if (typeof algorithm !== 'string' || algorithm === '') throw badJson(`one_time_keys.${userId}.${deviceId} must be an algorithm name`);
      map.set(deviceId, algorithm);
    }
    out.set(userId, map);
  }
  return out;
}

export interface KeysClaimResult {
  one_time_keys: Record<string, Record<string, Record<string, JsonValue>>>;
  failures: Record<string, JsonObject>;
}

/**
 * POST /keys/claim: one key per requested device, in one transaction so no key
 * is given out twice. A device with no one-time key left gives its fallback
 * key, which is then marked used (device_unused_fallback_key_types drops it).
 */
export async function claimKeys(ctx: HomeserverContext, wanted: Map<string, Map<string, string>>): Promise<KeysClaimResult> {
  const result: KeysClaimResult = { one_time_keys: {}, failures: {} };
  await ctx.storage.write(async (txn: WriteTxn) => {
    for (const [userId, devices] of wanted) {
      const server = serverNameOf(userId);
      if (server !== ctx.serverName) {
        setOwn(result.failures, server, unreachable(server));
        continue;
      }
      for (const [deviceId, algorithm] of devices) {
        const claimed =
          (await txn.oneTimeKeys.claim(userId, deviceId, algorithm)) ?? (await txn.fallbackKeys.claim(userId, deviceId, algorithm));
        if (!claimed) continue;
        setOwn(ownSlot(result.one_time_keys, userId, () => ({})), deviceId, { [claimed.id]: claimed.key });
      }
    }
  });
  return result;
}
