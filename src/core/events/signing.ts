/**
 * Signing events (server-server API "Signing events"): the origin records the
 * content hash in `hashes.sha256`, then signs the *redacted* event, so the
 * signature still checks after a redaction. The signature goes on the full
 * event. Checking is the mirror image: redact, then check the JSON signature.
 *
 * The event is signed as given, including any `event_id` key (the spec's own
 * example does this); events of room versions 10–12 travel without one, so
 * sign and check them in that form.
 */
import { canonicalJsonBytes } from '../canonical-json.js';
import { encodeBase64 } from '../base64.js';
import { CoreError } from '../errors.js';
import { roomVersionRules } from '../room-versions.js';
import { mergeSignatures, verifyJsonSignature, type SignerOptions } from '../signing.js';
import type { Signer } from '../types.js';
import { contentHash } from './hashing.js';
import { redactShared } from './redaction.js';
import { isPlainObject } from '../json-util.js';

/**
 * A copy of the event with `hashes` set to `{ sha256: <content hash> }` and
 * `signer`'s signature over its redacted form added to `signatures` (other
 * signatures are kept). The input is not modified.
 */
export async function signEvent<T extends object>(event: T, signer: Signer, roomVersion: string): Promise<T> {
  const rules = roomVersionRules(roomVersion);
  if (!isPlainObject(event)) throw new CoreError('MALFORMED_EVENT', 'an event must be a JSON object');
  const signatures = event.signatures;
  if (signatures !== undefined && !isPlainObject(signatures)) {
    throw new CoreError('MALFORMED_EVENT', '`signatures` must be an object');
  }
  const hashed: Record<string, unknown> = { ...event, hashes: { sha256: contentHash(event) } };

  const { signatures: _s, ...signedPart } = redactShared(hashed, rules);
  const signature = encodeBase64(await signer.sign(canonicalJsonBytes(signedPart)));

  hashed.signatures = mergeSignatures(signatures, signer.serverName, signer.keyId, signature);
  return hashed as T;
}

/**
 * Whether the event carries a valid signature by `serverName`'s key `keyId`
 * over its redacted form. False (never a throw) for anything invalid,
 * including an event that cannot be redacted; throws only for an unknown
 * room version.
 */
export async function verifyEventSignature(
  event: object,
  roomVersion: string,
  serverName: string,
  keyId: string,
  publicKey: Uint8Array,
  opts?: SignerOptions,
): Promise<boolean> {
  const rules = roomVersionRules(roomVersion);
  let redacted: Record<string, unknown>;
  try {
    redacted = redactShared(event, rules);
  } catch (err) {
    if (err instanceof CoreError) return false;
    throw err;
  }
  return verifyJsonSignature(redacted, serverName, keyId, publicKey, opts);
}
