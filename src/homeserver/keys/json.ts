/**
 * Checking the shapes of the JSON bodies the key endpoints receive. Bodies are
 * checked completely before any write, so a bad request changes nothing.
 * Wrong types are M_BAD_JSON (as Synapse's request models report them);
 * well-typed values that make no sense are M_INVALID_PARAM.
 */
import { canonicalJson, isValidUserId, type JsonObject } from '../../core/index.js';
import { badJson, invalidParam } from '../http/errors.js';
import { isJsonObject } from '../http/params.js';
import { getOwn, setOwn } from '../own-keys.js';

/** `value` as an object, or M_BAD_JSON naming `what`. Absent (undefined) is allowed when `optional`. */
export function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (!isJsonObject(value)) throw badJson(`${what} must be an object`);
  return value;
}

/** A user ID used as a map key in a request; M_INVALID_PARAM if it is not one. */
export function expectUserId(value: string, what: string): string {
  if (!isValidUserId(value)) throw invalidParam(`${what}: ${JSON.stringify(value)} is not a valid user ID`);
  return value;
}

/** Splits "algorithm:keyId"; M_INVALID_PARAM unless both parts are non-empty. */
export function splitKeyId(id: string): [algorithm: string, keyId: string] {
  const colon = id.indexOf(':');
  if (colon <= 0 || colon === id.length - 1) throw invalidParam(`Key ID ${JSON.stringify(id)} is not "algorithm:id"`);
  return [id.slice(0, colon), id.slice(colon + 1)];
}

/** The object without `signatures` and `unsigned`: what a signature covers. */
export function signedPart(value: Record<string, unknown>): Record<string, unknown> {
  const { signatures: _s, unsigned: _u, ...rest } = value;
  return rest;
}

/** Whether two objects are the same once signatures and unsigned data are set aside. */
export function sameSignedContent(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  try {
    return canonicalJson(signedPart(a) as JsonObject) === canonicalJson(signedPart(b) as JsonObject);
  } catch {
    return false;
  }
}

/** A deep copy of a JSON object (so stored records are never aliased by responses). */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}

/**
 * `target.signatures` with every signature of `source.signatures` added that
 * `target` lacks; the result is a new object.
 */
export function mergeAllSignatures(target: JsonObject, source: Record<string, unknown> | undefined): JsonObject {
  const out = cloneJson(target);
  if (!isJsonObject(source)) return out;
  const signatures: Record<string, Record<string, string>> = isJsonObject(out.signatures)
    ? (out.signatures as Record<string, Record<string, string>>)
    : {};
  for (const [signer, bySigner] of Object.entries(source)) {
    if (!isJsonObject(bySigner)) continue;
    const existing = getOwn(signatures, signer);
    const merged = { ...(isJsonObject(existing) ? existing : {}) };
    for (const [keyId, sig] of Object.entries(bySigner)) {
      if (typeof sig === 'string' && !Object.hasOwn(merged, keyId)) setOwn(merged, keyId, sig);
    }
    Object.defineProperty(signatures, signer, { value: merged, enumerable: true, writable: true, configurable: true });
  }
  out.signatures = signatures;
  return out;
}
