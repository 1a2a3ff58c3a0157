/**
 * Canonical JSON (spec appendix "Canonical JSON"): the one byte-exact encoding
 * that every hash and signature in Matrix is computed over. Owns the encoder
 * and its refusal of anything that has no canonical form (floats, unsafe
 * integers, lone surrogates, non-JSON values, absurd nesting). Refusals are
 * `CoreError('NOT_CANONICAL')` naming the JSON path of the offending value.
 *
 * This is on the hot path (every event is hashed at least twice), so the
 * output is produced by the engine's JSON.stringify wherever it can be: its
 * escaping is exactly the spec's minimal escaping (", \, \b \f \n \r \t, other
 * C0 controls as lowercase \u00xx, everything else raw) once lone surrogates
 * have been ruled out, and it writes whole subtrees at once where every
 * object's keys are already in code point order. (canonical-bytes.ts writes the
 * same output straight to UTF-8 for event verification.)
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

type WellFormed = (this: string) => boolean;
const nativeIsWellFormed = (String.prototype as { isWellFormed?: WellFormed }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when the string has no unpaired UTF-16 surrogate (i.e. it is valid Unicode and has a UTF-8 form). */
export const isWellFormedString: (s: string) => boolean = nativeIsWellFormed
  ? (s) => (s as unknown as { isWellFormed: () => boolean }).isWellFormed()
  : (s) => !LONE_SURROGATE.test(s);

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

/**
 * Sorts keys by code point in place and tells whether they were already in
 * order. Insertion sort for the small objects events are made of (and an
 * already-sorted list costs one comparison per key); the engine's sort beyond.
 * @internal
 */
export function sortKeysInPlace(keys: string[]): boolean {
  const n = keys.length;
  let i = 1;
  while (i < n && compareCodePoints(keys[i - 1]!, keys[i]!) < 0) i++;
  if (i >= n) return true;
  if (n > 16) {
    keys.sort(compareCodePoints);
    return false;
  }
  for (; i < n; i++) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && compareCodePoints(keys[j]!, key) > 0) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return false;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'object') return Object.prototype.toString.call(value).slice(8, -1);
  return typeof value;
}

const objectToString = Object.prototype.toString;

/**
 * Quoted forms of object keys already seen. Events reuse a small vocabulary of
 * keys, so most objects that need assembling find all theirs here; the cache
 * stops growing at a fixed size so arbitrary keys cannot make it balloon.
 */
const quotedKeys = new Map<string, string>();
const QUOTED_KEYS_MAX = 4096;

/** `"key":` for a well-formed key. */
function quoteKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key) + ':';
    if (quotedKeys.size < QUOTED_KEYS_MAX && key.length <= 64) quotedKeys.set(key, quoted);
  }
  return quoted;
}

/**
 * Validates a value and returns its canonical text, or `undefined` when the
 * value (checked all the way down) is already in canonical shape for the
 * engine's JSON.stringify: every object's keys in code point order and no
 * `toJSON` method anywhere. JSON.stringify then writes exactly the canonical
 * form (no whitespace, safe integers as `String(n)` with -0 as 0, the spec's
 * minimal string escaping), natively and in one go. Only the objects whose
 * keys need reordering, and their ancestors, are assembled here.
 *
 * Values are visited in canonical order, so the first refusal met is the
 * first in the output, as the path in the error message promises.
 */
function encode(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      if (isWellFormedString(value)) return undefined;
      throw new Refusal('string contains a lone UTF-16 surrogate');
    case 'number':
      // Number.isSafeInteger accepts -0; String(-0) is "0", as the spec wants.
      if (Number.isSafeInteger(value)) return undefined;
      throw new Refusal(`number ${describe(value)} is not an integer within ±(2^53−1)`);
    case 'boolean':
      return undefined;
    case 'object':
      break;
    default:
      throw new Refusal(`${typeof value} has no JSON form`);
  }
  if (value === null) return undefined;
  if (depth >= MAX_CANONICAL_DEPTH) throw new Refusal(`nesting deeper than ${MAX_CANONICAL_DEPTH}`);

  if (Array.isArray(value)) return encodeArray(value, depth);

  // Tag check rather than a prototype check so plain objects from another realm
  // still pass, while Date, Map, typed arrays, boxed primitives and such do not.
  if (objectToString.call(value) !== '[object Object]') {
    throw new Refusal(`${describe(value)} is not a plain JSON object`);
  }
  return encodeObject(value as Record<string, unknown>, depth);
}

function encodeArray(value: unknown[], depth: number): string | undefined {
  const n = value.length;
  // A `toJSON` (inherited, say) would make JSON.stringify write something else.
  let out: string | undefined = typeof (value as { toJSON?: unknown }).toJSON === 'function' ? '[' : undefined;
  let i = 0;
  try {
    for (; i < n; i++) {
      // Holes in sparse arrays read as undefined and are refused like undefined.
      const item = value[i];
      const text = encode(item, depth + 1);
      if (out === undefined) {
        if (text === undefined) continue;
        // First item that needs assembling: write the ones before it natively.
        out = i === 0 ? '[' : JSON.stringify(value.slice(0, i)).slice(0, -1) + ',';
      } else if (i > 0) {
        out += ',';
      }
      out += text ?? JSON.stringify(item);
    }
  } catch (err) {
    if (err instanceof Refusal) err.path.push(i);
    throw err;
  }
  return out === undefined ? undefined : out + ']';
}

function encodeObject(obj: Record<string, unknown>, depth: number): string | undefined {
  const keys = Object.keys(obj);
  const n = keys.length;
  const sorted = sortKeysInPlace(keys);
  let out: string | undefined = sorted && typeof obj.toJSON !== 'function' ? undefined : '{';
  let key = '';
  let i = 0;
  try {
    for (; i < n; i++) {
      key = keys[i]!;
      if (!isWellFormedString(key)) {
        const refusal = new Refusal(`key ${JSON.stringify(key)} contains a lone UTF-16 surrogate`);
        refusal.atKey = true;
        throw refusal;
      }
      const item = obj[key];
      const text = encode(item, depth + 1);
      if (out === undefined) {
        if (text === undefined) continue;
        // First member that needs assembling: write the ones before it natively.
        out = '{';
        for (let j = 0; j < i; j++) {
          const k = keys[j]!;
          if (j > 0) out += ',';
          out += quoteKey(k) + JSON.stringify(obj[k]);
        }
      }
      if (i > 0) out += ',';
      out += quoteKey(key) + (text ?? JSON.stringify(item));
    }
  } catch (err) {
    if (err instanceof Refusal) {
      if (err.atKey) err.atKey = false;
      else err.path.push(key);
    }
    throw err;
  }
  return out === undefined ? undefined : out + '}';
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
    const text = encode(value, 0);
    return text ?? (JSON.stringify(value) as string);
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
