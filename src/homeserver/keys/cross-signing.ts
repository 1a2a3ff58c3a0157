/**
 * Cross-signing (spec: "Cross-signing"): a user's master, self-signing and
 * user-signing keys (POST /keys/device_signing/upload), and signatures made
 * with them or with device keys (POST /keys/signatures/upload). Every
 * signature is checked before it is stored; checking (crypto) happens before
 * the write transaction, which then re-reads and merges. A signature of
 * another user's master key by one's user-signing key is private to the
 * signer (only they see it in /keys/query), so it is kept apart, in meta.
 */
import { decodeBase64, isValidUserId, serverNameOf, verifyJsonSignature, type JsonObject } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError, badJson, invalidParam } from '../http/errors.js';
import type { Requester } from '../http/router.js';
import type { CrossSigningKeyType, ReadTxn } from '../../storage/types.js';
import { expectObject, mergeAllSignatures, sameSignedContent } from './json.js';
import { isJsonObject } from '../http/params.js';
import { BOUNDS, checkCount } from '../limits/bounds.js';
import { skipCorruptRows } from '../corrupt-rows.js';
import { getOwn, ownSlot, setOwn } from '../own-keys.js';
import { recordDeviceListChange } from './device-lists.js';
import { cachedMasterKey } from '../federation/device-cache.js';

const KEY_TYPES: ReadonlyArray<[field: string, type: CrossSigningKeyType, usage: string]> = [
  ['master_key', 'master', 'master'],
  ['self_signing_key', 'self_signing', 'self_signing'],
  ['user_signing_key', 'user_signing', 'user_signing'],
];

const invalidSignature = (msg: string) => new MatrixError(400, 'M_INVALID_SIGNATURE', msg);

function privateSignaturesKey(signer: string, target: string): string {
  return `e2ee.userSigningSignatures:${JSON.stringify([signer, target])}`;
}

/** `signer`'s user-signing signatures of `target`'s master key ({ signer: { keyId: signature } }), if any. */
export async function privateSignaturesFor(txn: ReadTxn, signer: string, target: string): Promise<Record<string, unknown> | undefined> {
  return txn.meta.get<Record<string, unknown>>(privateSignaturesKey(signer, target));
}

/** The one public key of a cross-signing key object (unpadded base64), checked for shape. */
export function publicKeyOf(key: Record<string, unknown>, what: string): string {
  const keys = expectObject(key.keys, `${what}.keys`);
  const entries = Object.entries(keys);
  if (entries.length !== 1) throw invalidParam(`${what}.keys must hold exactly one key`);
  const [id, value] = entries[0]!;
  if (typeof value !== 'string' || id !== `ed25519:${value}`) throw invalidParam(`${what}.keys must be {"ed25519:<key>": "<key>"}`);
  return value;
}

/** Whether `value` is signed by `signer`'s ed25519 key `publicKey` (base64) filed under `keyId`. */
async function signedBy(value: Record<string, unknown>, signer: string, keyId: string, publicKey: string): Promise<boolean> {
  let raw: Uint8Array;
  try {
    raw = decodeBase64(publicKey);
  } catch {
    return false;
  }
  return verifyJsonSignature(value, signer, keyId, raw);
}

export type DeviceSigningUpload = Partial<Record<CrossSigningKeyType, JsonObject>>;

/** Checks the keys of POST /keys/device_signing/upload for shape and ownership (signatures come later). */
export function parseDeviceSigningUpload(body: Record<string, unknown>, userId: string): DeviceSigningUpload {
  const out: DeviceSigningUpload = {};
  for (const [field, type, usage] of KEY_TYPES) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const key = expectObject(value, field);
    if (key.user_id !== userId) throw invalidParam(`${field}.user_id must be the requesting user`);
    if (!Array.isArray(key.usage) || !key.usage.every((u) => typeof u === 'string')) throw badJson(`${field}.usage must be an array of strings`);
    if (!key.usage.includes(usage)) throw invalidParam(`${field}.usage must include "${usage}"`);
    if (key.signatures !== undefined) expectObject(key.signatures, `${field}.signatures`);
    publicKeyOf(key, field);
    out[type] = key as JsonObject;
  }
  return out;
}

/** Whether uploading `keys` would change any stored cross-signing key, and whether the user has a master key yet. */
export async function deviceSigningState(ctx: HomeserverContext, userId: string, keys: DeviceSigningUpload): Promise<{ hasMaster: boolean; changes: boolean }> {
  return ctx.storage.read(async (txn) => {
    // A poisoned stored key is as good as none: the upload replaces it.
    const stored = new Map((await txn.crossSigningKeys.forUser(userId, skipCorruptRows(ctx.log, `cross-signing keys of ${userId}`))).map((r) => [r.keyType, r.keys]));
    let changes = false;
    for (const [type, key] of Object.entries(keys) as [CrossSigningKeyType, JsonObject][]) {
      const old = stored.get(type);
      if (!old || !sameSignedContent(old, key)) changes = true;
    }
    return { hasMaster: stored.has('master'), changes };
  });
}

/**
 * POST /keys/device_signing/upload, once user-interactive auth (if needed) is
 * done: checks that the self-signing and user-signing keys are signed by the
 * master key (the new one, or the stored one), stores them and marks the
 * user's device list changed.
 */
export async function uploadDeviceSigningKeys(ctx: HomeserverContext, userId: string, keys: DeviceSigningUpload): Promise<void> {
  if (Object.keys(keys).length === 0) return;
  const master = keys.master ?? (await ctx.storage.read((txn) => txn.crossSigningKeys.get(userId, 'master')))?.keys;
  if (!master) throw invalidParam('No master key uploaded or stored');
  const masterPublic = publicKeyOf(master, 'master_key');
  for (const type of ['self_signing', 'user_signing'] as const) {
    const key = keys[type];
    if (key && !(await signedBy(key, userId, `ed25519:${masterPublic}`, masterPublic))) {
      throw invalidSignature(`${type}_key is not signed by the master key`);
    }
  }
  await ctx.storage.write(async (txn) => {
    for (const [type, key] of Object.entries(keys) as [CrossSigningKeyType, JsonObject][]) {
      await txn.crossSigningKeys.put({ userId, keyType: type, keys: key });
    }
    // Other servers hear of the master and self-signing keys; the user-signing key is the owner's alone.
    await recordDeviceListChange(txn, userId, { crossSigning: keys.master !== undefined || keys.self_signing !== undefined });
  });
}

type Failure = { status: number; errcode: string; message: string };

interface PendingSignature {
  target: string;
  keyId: string;
  kind: 'device' | 'master' | 'other-master';
  /** The object as the requester signed it (for the content check at write time). */
  signed: Record<string, unknown>;
  /** The requester's verified signatures: { keyId: signature }. */
  signatures: Record<string, string>;
}

/** Checks the shape of POST /keys/signatures/upload: { userId: { keyId: signedObject } }. */
export function parseSignaturesUpload(body: Record<string, unknown>): Map<string, Map<string, Record<string, unknown>>> {
  const out = new Map<string, Map<string, Record<string, unknown>>>();
  let signed = 0;
  for (const [userId, byKey] of Object.entries(body)) {
    if (!isValidUserId(userId)) throw invalidParam(`${JSON.stringify(userId)} is not a valid user ID`);
    const map = new Map<string, Record<string, unknown>>();
    for (const [keyId, value] of Object.entries(expectObject(byKey, userId))) {
      checkCount('signed keys', ++signed, BOUNDS.signatureUploads);
      map.set(keyId, expectObject(value, `${userId}.${keyId}`));
    }
    out.set(userId, map);
  }
  return out;
}

/**
 * POST /keys/signatures/upload: merges each verified signature by the
 * requester into the key it signs (own devices by the self-signing key, own
 * master key by a device key, others' master keys by the user-signing key).
 * Problems are reported per key in `failures`, as Synapse does.
 */
export async function uploadSignatures(
  ctx: HomeserverContext,
  requester: Requester,
  request: Map<string, Map<string, Record<string, unknown>>>,
): Promise<{ failures: Record<string, Record<string, Failure>> }> {
  const me = requester.userId;
  const failures: Record<string, Record<string, Failure>> = {};
  const fail = (target: string, keyId: string, status: number, errcode: string, message: string) => {
    setOwn(ownSlot(failures, target, () => ({})), keyId, { status, errcode, message });
  };

  // Read what the signatures refer to, then check them outside any transaction.
  const pending: PendingSignature[] = [];
  const snapshot = await ctx.storage.read(async (txn) => {
    const mine = new Map((await txn.crossSigningKeys.forUser(me)).map((r) => [r.keyType, r.keys]));
    const targets = new Map<string, { master?: JsonObject; devices: Map<string, JsonObject> }>();
    for (const target of request.keys()) {
      if (serverNameOf(target) !== ctx.serverName) {
        // Another server's user: their master key as their server last told us (the remote device list cache).
        const remoteMaster = await cachedMasterKey(txn, target);
        if (remoteMaster) targets.set(target, { master: remoteMaster, devices: new Map() });
        continue;
      }
      const master = (await txn.crossSigningKeys.get(target, 'master'))?.keys;
      const devices = new Map<string, JsonObject>();
      // Own devices are signed (by the self-signing key) and sign the master key (with their ed25519 keys).
      if (target === me) for (const dk of await txn.deviceKeys.forUser(me)) devices.set(dk.deviceId, dk.keys);
      targets.set(target, { master, devices });
    }
    return { mine, targets };
  });

  const keyPublicOf = (key: JsonObject | undefined) => {
    if (!key) return undefined;
    try {
      return publicKeyOf(key, 'master_key');
    } catch {
      return undefined;
    }
  };

  for (const [target, byKey] of request) {
    for (const [keyId, signed] of byKey) {
      const info = snapshot.targets.get(target);
      if (!info) {
        fail(target, keyId, 503, 'M_UNKNOWN', `Not ready for retry: ${serverNameOf(target)} is not reachable`);
        continue;
      }
      const sigs = isJsonObject(signed.signatures) && isJsonObject(signed.signatures[me]) ? (signed.signatures[me] as Record<string, unknown>) : {};
      let kind: PendingSignature['kind'];
      let stored: JsonObject | undefined;
      let signers: Array<[keyId: string, publicKey: string]>;
      const targetMasterPublic = keyPublicOf(info.master);
      if (target === me && keyId === targetMasterPublic) {
        kind = 'master';
        stored = info.master;
        signers = [...info.devices].flatMap(([deviceId, dk]) => {
          const pub = isJsonObject(dk.keys) ? (dk.keys as Record<string, unknown>)[`ed25519:${deviceId}`] : undefined;
          return typeof pub === 'string' ? [[`ed25519:${deviceId}`, pub] as [string, string]] : [];
        });
      } else if (target === me) {
        kind = 'device';
        stored = info.devices.get(keyId);
        const ssk = snapshot.mine.get('self_signing');
        const pub = ssk ? keyPublicOf(ssk) : undefined;
        signers = pub ? [[`ed25519:${pub}`, pub]] : [];
      } else {
        kind = 'other-master';
        stored = keyId === targetMasterPublic ? info.master : undefined;
        const usk = snapshot.mine.get('user_signing');
        const pub = usk ? keyPublicOf(usk) : undefined;
        signers = pub ? [[`ed25519:${pub}`, pub]] : [];
      }
      if (!stored) {
        fail(target, keyId, 404, 'M_NOT_FOUND', 'Unknown key');
        continue;
      }
      if (!sameSignedContent(stored, signed)) {
        fail(target, keyId, 400, 'M_INVALID_SIGNATURE', 'The signed object does not match the stored key');
        continue;
      }
      // Only the expected signer's signature counts; others the object carries (its own self-signature) are ignored.
      const verified: Record<string, string> = {};
      let bad = false;
      for (const [sigKeyId, signerPublic] of signers) {
        const signature = getOwn(sigs, sigKeyId);
        if (signature === undefined) continue;
        if (typeof signature === 'string' && (await signedBy(signed, me, sigKeyId, signerPublic))) setOwn(verified, sigKeyId, signature);
        else bad = true;
      }
      if (bad || Object.keys(verified).length === 0) {
        fail(target, keyId, 400, 'M_INVALID_SIGNATURE', 'Invalid signature');
        continue;
      }
      pending.push({ target, keyId, kind, signed, signatures: verified });
    }
  }

  if (pending.length > 0) {
    await ctx.storage.write(async (txn) => {
      const changed = new Map<string, { devices: string[]; crossSigning: boolean }>();
      const changeOf = (userId: string) => {
        let change = changed.get(userId);
        if (!change) changed.set(userId, (change = { devices: [], crossSigning: false }));
        return change;
      };
      for (const p of pending) {
        const addition = { [me]: p.signatures };
        if (p.kind === 'device') {
          const record = await txn.deviceKeys.get(p.target, p.keyId);
          if (!record || !sameSignedContent(record.keys, p.signed)) continue;
          await txn.deviceKeys.put({ ...record, keys: mergeAllSignatures(record.keys, addition) });
          changeOf(p.target).devices.push(p.keyId);
        } else if (p.kind === 'master') {
          const record = await txn.crossSigningKeys.get(p.target, 'master');
          if (!record || !sameSignedContent(record.keys, p.signed)) continue;
          await txn.crossSigningKeys.put({ ...record, keys: mergeAllSignatures(record.keys, addition) });
          changeOf(p.target).crossSigning = true;
        } else {
          const key = privateSignaturesKey(me, p.target);
          const before = (await txn.meta.get<Record<string, Record<string, string>>>(key)) ?? {};
          await txn.meta.put(key, { [me]: { ...(before[me] ?? {}), ...p.signatures } });
          // Only the signer's own devices need to hear about it.
          changeOf(me);
        }
      }
      for (const [userId, change] of changed) await recordDeviceListChange(txn, userId, change);
    });
  }
  return { failures };
}
