/**
 * Keys of the backend tables: tuples of strings and numbers, ordered the way
 * IndexedDB orders array keys (element by element; numbers before strings;
 * strings by UTF-16 code unit; a tuple before its extensions). IndexedDB sorts
 * them natively; the memory and SQLite backends sort an encoding of them whose
 * byte order is that same order, so all three return rows in one order.
 */
import { StorageError } from './errors.js';

export type KeyPart = string | number;
export type Key = readonly KeyPart[];

const NUMBER_TAG = 0x10;
const STRING_TAG = 0x20;
/** Sorts after every encoded key part, so `prefix + SENTINEL` bounds a prefix scan from above. */
export const KEY_SENTINEL = '\xff';

const scratch = new DataView(new ArrayBuffer(8));

/**
 * Encodes a key as a string of byte-valued chars (0..255) whose plain string
 * comparison is the key order. Numbers: 8 big-endian float64 bytes with the
 * sign bit flipped (negatives: all bits flipped). Strings: 2 bytes per code
 * unit, terminated by 00 00; a NUL code unit is written 00 00 FF so it still
 * sorts after the terminator. No framing between parts: a key's encoding is the
 * concatenation of its parts' encodings, which makes tuple prefixes byte prefixes.
 */
export function encodeKey(key: Key): string {
  let out = '';
  for (const part of key) {
    if (typeof part === 'number') {
      if (Number.isNaN(part)) throw new StorageError('BAD_KEY', 'NaN is not a valid key part');
      scratch.setFloat64(0, part === 0 ? 0 : part); // -0 and 0 are one key, as in IndexedDB
      const negative = part < 0;
      out += String.fromCharCode(NUMBER_TAG);
      for (let i = 0; i < 8; i++) {
        let byte = scratch.getUint8(i);
        byte = negative ? byte ^ 0xff : i === 0 ? byte ^ 0x80 : byte;
        out += String.fromCharCode(byte);
      }
    } else if (typeof part === 'string') {
      out += String.fromCharCode(STRING_TAG);
      for (let i = 0; i < part.length; i++) {
        const unit = part.charCodeAt(i);
        out += unit === 0 ? '\x00\x00\xff' : String.fromCharCode(unit >> 8, unit & 0xff);
      }
      out += '\x00\x00';
    } else {
      throw new StorageError('BAD_KEY', `key parts must be strings or numbers, got ${typeof part}`);
    }
  }
  return out;
}

/** True if `value` may appear in a key (IndexedDB accepts more; we use only these). */
export function isKeyPart(value: unknown): value is KeyPart {
  return typeof value === 'string' || (typeof value === 'number' && !Number.isNaN(value));
}

/**
 * Reads the key of `row` at `keyPath`: each entry a field name, or a dotted
 * path into nested objects (`event.depth`) as in IndexedDB. Returns
 * undefined when a field is missing or not a key part: such a row has no entry
 * in an index, exactly as IndexedDB skips it.
 */
export function keyOf(row: Readonly<Record<string, unknown>>, keyPath: readonly string[]): Key | undefined {
  const key: KeyPart[] = [];
  for (const field of keyPath) {
    const value = valueAt(row, field);
    if (!isKeyPart(value)) return undefined;
    key.push(value);
  }
  return key;
}

/**
 * The keys a row has in an index: one (`keyOf`), or for a multiEntry index
 * (a key path of one field) one per distinct key part of the array at that
 * field, each as a one-part key, as IndexedDB indexes them; elements that are
 * not key parts are left out, and a single key part stands for itself.
 */
export function indexKeysOf(row: Readonly<Record<string, unknown>>, keyPath: readonly string[], multiEntry: boolean): Key[] {
  if (!multiEntry) {
    const key = keyOf(row, keyPath);
    return key ? [key] : [];
  }
  const value = valueAt(row, keyPath[0]!);
  if (!Array.isArray(value)) return isKeyPart(value) ? [[value]] : [];
  const parts = new Set<KeyPart>();
  for (const item of value) if (isKeyPart(item)) parts.add(item === 0 ? 0 : item);
  return [...parts].map((part) => [part]);
}

/** The value at a field name, or at a dotted path through nested objects' own fields. */
function valueAt(row: Readonly<Record<string, unknown>>, path: string): unknown {
  if (!path.includes('.')) return row[path];
  let value: unknown = row;
  for (const field of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, field)) return undefined;
    value = (value as Record<string, unknown>)[field];
  }
  return value;
}

/** Like `keyOf`, for primary keys, which every row must have. */
export function primaryKeyOf(table: string, row: Readonly<Record<string, unknown>>, keyPath: readonly string[]): Key {
  const key = keyOf(row, keyPath);
  if (!key) throw new StorageError('BAD_KEY', `row for ${table} lacks a valid key at [${keyPath.join(', ')}]`);
  return key;
}
