/**
 * Checking a received event's integrity in one step: its content hash (does
 * `hashes.sha256` match the full event?) and its origin's signature over the
 * redacted event. Both digests run through WebCrypto concurrently, so the
 * JavaScript left on the calling thread is only the two canonical JSON
 * encodings; this is the fast path for verifying many events at once.
 */
import { decodeBase64 } from '../base64.js';
import { canonicalJsonBytes } from '../canonical-json.js';
import { defaultEd25519, sha256Async } from '../crypto.js';
import { CoreError } from '../errors.js';
import { isPlainObject } from '../json-util.js';
import { roomVersionRules } from '../room-versions.js';
import { redactShared } from './redaction.js';

export interface EventVerification {
  /** `hashes.sha256` matches the event (else the event must be stored redacted). */
  contentHashOk: boolean;
  /** The redacted event carries a valid signature by `serverName`'s key `keyId`. */
  signatureOk: boolean;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Verifies the content hash and the signature of `serverName`'s key `keyId`.
 * Never throws for a malformed event (both checks are then false); throws
 * CoreError UNKNOWN_ROOM_VERSION for an unknown room version.
 */
export async function verifyEvent(
  event: object,
  roomVersion: string,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
): Promise<EventVerification> {
  const rules = roomVersionRules(roomVersion);
  const failed = { contentHashOk: false, signatureOk: false };
  if (!isPlainObject(event)) return failed;
  let hashInput: Uint8Array | undefined;
  let expectedHash: Uint8Array | undefined;
  let signedBytes: Uint8Array | undefined;
  let signature: Uint8Array | undefined;
  try {
    const { unsigned: _u, signatures, hashes, ...hashed } = event;
    if (isPlainObject(hashes) && typeof hashes.sha256 === 'string') {
      expectedHash = decodeBase64(hashes.sha256);
      hashInput = canonicalJsonBytes(hashed);
    }
    const bySigner = isPlainObject(signatures) && Object.hasOwn(signatures, serverName) ? signatures[serverName] : undefined;
    const encoded = isPlainObject(bySigner) && Object.hasOwn(bySigner, keyId) ? bySigner[keyId] : undefined;
    if (typeof encoded === 'string') {
      signature = decodeBase64(encoded);
      const { signatures: _s, unsigned: _u2, ...signedPart } = redactShared(event, rules);
      signedBytes = canonicalJsonBytes(signedPart);
    }
  } catch (err) {
    if (err instanceof CoreError) return failed;
    throw err;
  }
  const [hash, signatureOk] = await Promise.all([
    hashInput ? sha256Async(hashInput) : undefined,
    signedBytes && signature ? defaultEd25519().verify(publicKey, signedBytes, signature) : false,
  ]);
  return { contentHashOk: !!hash && !!expectedHash && equalBytes(hash, expectedHash), signatureOk };
}
