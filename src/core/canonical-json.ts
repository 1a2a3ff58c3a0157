/**
 * Canonical JSON (spec appendix "Canonical JSON"): the one byte-exact encoding
 * that every hash and signature in Matrix is computed over. Owns the encoder
 * and its refusal of anything that has no canonical form (floats, unsafe
 * integers, lone surrogates, non-JSON values, absurd nesting). Refusals are
 * `CoreError('NOT_CANONICAL')` naming the JSON path of the offending value.
 *
 * This is on the hot path (every event is hashed at least twice), so strings go
 * through the engine's JSON.stringify, whose escaping is exactly the spec's
 * minimal escaping (", \, \b \f \n \r \t, other C0 controls as lowercase \u00xx,
 * everything else raw) once lone surrogates have been ruled out.
 */
import { CoreError } from './errors.js';

/**
 * Deepest nesting accepted. Python servers cannot parse JSON much deeper than
 * this (its default recursion limit is 1000), so nothing deeper can be a real
 * Matrix event, and the cap keeps us far from the engine's stack limit.
 */
export const MAX_CANONICAL_DEPTH = 1000;

/** Thrown inside the encoder; the path is collected while unwinding, so the happy path pays nothing for it. */
class Refusal {
  readonly path: (string | number)[] = [];
  /** Set when the object key itself is at fault, so the enclosing object is the path's end. */
  atKey = false;
  constructor(readonly reason: string) {}
}

const ASTRAL_OR_HIGH = /[\uD800-\uFFFF]/;

type WellFormed = (this: string) => boolean;
const nativeIsWellFormed = (String.prototype as { isWellFormed?: WellFormed }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when the string has no unpaired UTF-16 surrogate (i.e. it is valid Unicode and has a UTF-8 form). */
export function isWellFormedString(s: string): boolean {
  return nativeIsWellFormed ? nativeIsWellFormed.call(s) : !LONE_SURROGATE.test(s);
}

/**
 * Orders strings by Unicode code point. UTF-16 code unit order (JavaScript's
 * default) agrees except when a surrogate (U+D800–DFFF, i.e. an astral
 * character) meets a BMP character at U+E000–FFFF; shifting the two ranges
 * past each other fixes exactly that case.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

function encodeString(s: string): string {
  if (!isWellFormedString(s)) throw new Refusal('string contains a lone UTF-16 surrogate');
  return JSON.stringify(s);
}

function encodeKey(key: string): string {
  if (isWellFormedString(key)) return JSON.stringify(key);
  const refusal = new Refusal(`key ${JSON.stringify(key)} contains a lone UTF-16 surrogate`);
  refusal.atKey = true;
  throw refusal;
}

function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  if (keys.length < 2) return keys;
  for (let i = 0; i < keys.length; i++) {
    if (ASTRAL_OR_HIGH.test(keys[i])) return keys.sort(compareCodePoints);
  }
  return keys.sort();
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'object') return Object.prototype.toString.call(value).slice(8, -1);
  return typeof value;
}

function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value);
    case 'number':
      // Number.isSafeInteger accepts -0; String(-0) is "0", as the spec wants.
      if (Number.isSafeInteger(value)) return String(value);
      throw new Refusal(`number ${describe(value)} is not an integer within ±(2^53−1)`);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new Refusal(`${typeof value} has no JSON form`);
  }
  if (value === null) return 'null';
  if (depth >= MAX_CANONICAL_DEPTH) throw new Refusal(`nesting deeper than ${MAX_CANONICAL_DEPTH}`);

  if (Array.isArray(value)) {
    const n = value.length;
    if (n === 0) return '[]';
    let i = 0;
    try {
      let out = '[';
      for (; i < n; i++) {
        if (i > 0) out += ',';
        // Holes in sparse arrays read as undefined and are refused like undefined.
        out += encode(value[i], depth + 1);
      }
      return out + ']';
    } catch (err) {
      if (err instanceof Refusal) err.path.push(i);
      throw err;
    }
  }

  // Tag check rather than a prototype check so plain objects from another realm
  // still pass, while Date, Map, typed arrays, boxed primitives and such do not.
  if (Object.prototype.toString.call(value) !== '[object Object]') {
    throw new Refusal(`${describe(value)} is not a plain JSON object`);
  }
  const obj = value as Record<string, unknown>;
  const keys = sortedKeys(obj);
  if (keys.length === 0) return '{}';
  let key = '';
  try {
    let out = '{';
    for (let i = 0; i < keys.length; i++) {
      key = keys[i];
      if (i > 0) out += ',';
      out += encodeKey(key);
      out += ':';
      out += encode(obj[key], depth + 1);
    }
    return out + '}';
  } catch (err) {
    if (err instanceof Refusal) {
      if (err.atKey) err.atKey = false;
      else err.path.push(key);
    }
    throw err;
  }
}

function formatPath(reversed: (string | number)[]): string {
  let out = '$';
  for (let i = reversed.length - 1; i >= 0; i--) {
    const seg = reversed[i];
    out += typeof seg === 'number' ? `[${seg}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * The canonical JSON text of a value. Object keys are sorted by code point,
 * numbers must be safe integers (−0 is written 0), and strings must be valid
 * Unicode. `undefined`, functions, symbols, bigints and non-plain objects are
 * refused rather than silently dropped, so a signature never covers less than
 * the caller meant. Own enumerable string keys only; `toJSON` is not called.
 */
export function canonicalJson(value: unknown): string {
  try {
    return encode(value, 0);
  } catch (err) {
    if (err instanceof Refusal) {
      throw new CoreError('NOT_CANONICAL', `not canonical JSON at ${formatPath(err.path)}: ${err.reason}`);
    }
    // A stack overflow can still happen if the caller is already deep; report it as bad input.
    if (err instanceof RangeError) throw new CoreError('NOT_CANONICAL', `not canonical JSON: ${err.message}`);
    throw err;
  }
}

const encoder = new TextEncoder();

/** Canonical JSON as the UTF-8 bytes that get hashed and signed. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalJson(value));
}

/** UTF-8 length of a string (lone surrogates count as U+FFFD, as TextEncoder writes them) without encoding it. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a pair: 2 code units counted already, 4 bytes in UTF-8
      i++;
    } else {
      n += 2;
    }
  }
  return n;
}
