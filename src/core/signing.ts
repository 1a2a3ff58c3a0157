/**
 * Signing JSON (spec appendix "Signing JSON"): a signature covers the
 * canonical JSON of an object without its `signatures` and `unsigned` keys and
 * is filed under `signatures[serverName][keyId]`. Owns signers (one server key)
 * and the signing and checking of any JSON object; events add hashing and
 * redaction on top of this in events/signing.ts.
 */
import { decodeBase64, encodeBase64 } from './base64.js';
import { canonicalJsonBytes } from './canonical-json.js';
import { defaultEd25519, type Ed25519 } from './crypto.js';
import { CoreError } from './errors.js';
import type { Signer } from './types.js';
import { isPlainObject, setOwn } from './json-util.js';

export interface SignerOptions {
  /** The Ed25519 implementation to sign with. @default the core-wide one (see setEd25519Backend) */
  ed25519?: Ed25519;
}

/** A signer for `serverName`'s key `keyId` (e.g. `ed25519:1`) from its 32-byte seed. */
export async function createSigner(seed: Uint8Array, serverName: string, keyId: string, opts?: SignerOptions): Promise<Signer> {
  if (typeof keyId !== 'string' || !keyId.startsWith('ed25519:') || keyId.length === 'ed25519:'.length) {
    throw new CoreError('BAD_KEY', `key ID ${JSON.stringify(keyId)} is not of the form "ed25519:<version>"`);
  }
  if (typeof serverName !== 'string' || serverName.length === 0) {
    throw new CoreError('BAD_KEY', 'a signer needs a server name');
  }
  const pair = await (opts?.ed25519 ?? defaultEd25519()).keyPair(seed);
  return { serverName, keyId, publicKey: pair.publicKey, sign: pair.sign };
}

/**
 * A copy of `signatures` (two levels deep, so the caller's objects are never
 * touched) with `signatures[server][keyId] = signature` added.
 */
export function mergeSignatures(
  signatures: Record<string, unknown> | undefined,
  server: string,
  keyId: string,
  signature: string,
): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  if (signatures) {
    for (const name of Object.keys(signatures)) {
      const keys = signatures[name];
      setOwn(merged, name, isPlainObject(keys) ? { ...keys } : keys);
    }
  }
  const own = Object.hasOwn(merged, server) && isPlainObject(merged[server]) ? (merged[server] as Record<string, unknown>) : {};
  setOwn(own, keyId, signature);
  setOwn(merged, server, own);
  return merged;
}

/**
 * A copy of `value` signed by `signer`. Existing signatures (of this and other
 * servers) and `unsigned` are kept; the input is not modified. Throws
 * `CoreError('NOT_CANONICAL')` if the object has no canonical JSON form.
 */
export async function signJson<T extends object>(value: T, signer: Signer): Promise<T> {
  const { signatures, unsigned, ...rest } = value as Record<string, unknown>;
  if (signatures !== undefined && !isPlainObject(signatures)) {
    throw new CoreError('MALFORMED_EVENT', '`signatures` must be an object');
  }
  const signature = await signer.sign(canonicalJsonBytes(rest));

  const merged = mergeSignatures(signatures, signer.serverName, signer.keyId, encodeBase64(signature));
  const out: Record<string, unknown> = { ...rest, signatures: merged };
  if (unsigned !== undefined) out.unsigned = unsigned;
  return out as T;
}

/**
 * Whether `value` carries a valid signature by `serverName`'s key `keyId`.
 * Any failure (no such signature, bad base64, wrong length, unknown algorithm,
 * a value with no canonical form, a wrong key) is `false`, never a throw.
 */
export async function verifyJsonSignature(
  value: object,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
  opts?: SignerOptions,
): Promise<boolean> {
  if (!isPlainObject(value) || typeof keyId !== 'string' || !keyId.startsWith('ed25519:')) return false;
  const { signatures, unsigned: _unsigned, ...rest } = value;
  if (!isPlainObject(signatures)) return false;
  const byServer = Object.hasOwn(signatures, serverName) ? signatures[serverName] : undefined;
  if (!isPlainObject(byServer)) return false;
  const encoded = Object.hasOwn(byServer, keyId) ? byServer[keyId] : undefined;
  if (typeof encoded !== 'string') return false;

  let signature: Uint8Array;
  let message: Uint8Array;
  try {
    signature = decodeBase64(encoded);
    message = canonicalJsonBytes(rest);
  } catch (err) {
    if (err instanceof CoreError) return false;
    throw err;
  }
  return (opts?.ed25519 ?? defaultEd25519()).verify(publicKey, message, signature);
}
