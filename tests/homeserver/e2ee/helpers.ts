/**
 * Key material for E2EE endpoint tests: device keys and cross-signing keys
 * made and signed the way a client does (ed25519 over canonical JSON, filed
 * under the user ID), from fixed seeds so failures are reproducible.
 */
import { createSigner, encodeBase64, signJson, type Signer } from '../../../src/core/index.js';
import type { TestServer } from '../harness.js';

export interface TestKey {
  publicKey: string;
  signer: Signer;
}

/** An ed25519 key for `userId` whose key ID is `ed25519:<name ?? publicKey>`. */
export async function makeKey(userId: string, seedByte: number, name?: string): Promise<TestKey> {
  const seed = new Uint8Array(32).fill(seedByte);
  const probe = await createSigner(seed, userId, 'ed25519:probe');
  const publicKey = encodeBase64(probe.publicKey);
  return { publicKey, signer: await createSigner(seed, userId, `ed25519:${name ?? publicKey}`) };
}

/** A signed device_keys object as matrix-js-sdk would upload it. */
export async function deviceKeys(userId: string, deviceId: string, seedByte: number): Promise<{ keys: Record<string, unknown>; key: TestKey }> {
  const key = await makeKey(userId, seedByte, deviceId);
  const keys = await signJson(
    {
      user_id: userId,
      device_id: deviceId,
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: { [`curve25519:${deviceId}`]: `curve${deviceId}${seedByte}`, [`ed25519:${deviceId}`]: key.publicKey },
    },
    key.signer,
  );
  return { keys, key };
}

/** A cross-signing key object of `usage`, signed by `signedBy` when given. */
export async function crossSigningKey(userId: string, usage: string, key: TestKey, signedBy?: TestKey): Promise<Record<string, unknown>> {
  const value = { user_id: userId, usage: [usage], keys: { [`ed25519:${key.publicKey}`]: key.publicKey } };
  return signedBy ? signJson(value, signedBy.signer) : value;
}

/** A signed one-time key object as clients upload them (signed_curve25519). */
export async function oneTimeKey(key: TestKey, value: string, fallback = false): Promise<Record<string, unknown>> {
  return signJson(fallback ? { key: value, fallback: true } : { key: value }, key.signer);
}

/** Everything storage holds for E2EE about some users' devices, for "nothing changed" checks. */
export async function e2eeSnapshot(server: TestServer, devices: Array<[userId: string, deviceId: string]>): Promise<unknown> {
  return server.storage.read(async (txn) => {
    const out: unknown[] = [await txn.stream.current()];
    for (const [userId, deviceId] of devices) {
      out.push(
        await txn.deviceKeys.get(userId, deviceId),
        await txn.oneTimeKeys.counts(userId, deviceId),
        await txn.fallbackKeys.unusedAlgorithms(userId, deviceId),
        await txn.toDevice.list(userId, deviceId, {}),
        await txn.crossSigningKeys.forUser(userId),
      );
    }
    return out;
  });
}
