/**
 * Content hashes (server-server API "Calculating the content hash for an
 * event"): the sha256 over the whole unredacted event that its origin records
 * in `hashes.sha256`. The signature covers only the redacted event, so this
 * hash is what ties the full content to the signature; a mismatch on receipt
 * means the event must be stored redacted.
 *
 * The hash covers every key except `unsigned`, `signatures` and `hashes`, so an
 * `event_id` kept on the object (as in the spec's example) is covered too:
 * hash the event in its federation form.
 */
import { decodeBase64, encodeBase64 } from '../base64.js';
import { canonicalJsonBytes } from '../canonical-json.js';
import { sha256 } from '../crypto.js';
import { CoreError } from '../errors.js';
import { isPlainObject } from '../json-util.js';

/** The raw sha256 content hash. Throws `CoreError` for a non-object or non-canonical event. */
export function contentHashBytes(event: object): Uint8Array {
  if (!isPlainObject(event)) throw new CoreError('MALFORMED_EVENT', 'an event must be a JSON object');
  const { unsigned: _u, signatures: _s, hashes: _h, ...rest } = event;
  return sha256(canonicalJsonBytes(rest));
}

/** The content hash as unpadded standard base64, the form stored in `hashes.sha256`. */
export function contentHash(event: object): string {
  return encodeBase64(contentHashBytes(event));
}

/**
 * Whether `hashes.sha256` matches the event. False for a missing or
 * undecodable hash and for an event with no canonical form; never throws.
 */
export function checkContentHash(event: object): boolean {
  if (!isPlainObject(event)) return false;
  const hashes = event.hashes;
  if (!isPlainObject(hashes) || typeof hashes.sha256 !== 'string') return false;
  let expected: Uint8Array;
  let actual: Uint8Array;
  try {
    expected = decodeBase64(hashes.sha256);
    actual = contentHashBytes(event);
  } catch (err) {
    if (err instanceof CoreError) return false;
    throw err;
  }
  if (expected.length !== actual.length) return false;
  let diff = 0;
  for (let i = 0; i < actual.length; i++) diff |= expected[i] ^ actual[i];
  return diff === 0;
}
