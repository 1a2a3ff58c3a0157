// The key encoding of the memory and SQLite backends must order keys exactly as IndexedDB does;
// fake-indexeddb's cmp() is the reference.
import { indexedDB } from 'fake-indexeddb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeKey, KEY_SENTINEL, type Key } from '../../src/storage/keys.js';
import { StorageError } from '../../src/storage/errors.js';

const codeUnit = fc.oneof(
  fc.constantFrom('\u0000', '\u0001', '\u00ff', '\u0100', '\ud800', '\udfff', '\ue000', '\uffff', 'a'),
  fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)),
);
const part = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 4 }),
  fc.double({ noNaN: true }),
  fc.integer({ min: -3, max: 3 }),
);
const key = fc.array(part, { maxLength: 4 });

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);
const compareEncoded = (a: Key, b: Key) => {
  const x = encodeKey(a);
  const y = encodeKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

describe('encodeKey', () => {
  it('orders keys as IndexedDB does', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(compareEncoded(a, b)).toBe(sign(indexedDB.cmp(a, b)));
      }),
      { numRuns: 5_000 },
    );
  });

  it('orders keys sharing a prefix as IndexedDB does', () => {
    fc.assert(
      fc.property(key, key, key, (prefix, a, b) => {
        const x = [...prefix, ...a];
        const y = [...prefix, ...b];
        expect(compareEncoded(x, y)).toBe(sign(indexedDB.cmp(x, y)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('bounds every extension of a prefix by prefix + sentinel', () => {
    fc.assert(
      fc.property(key, key, (prefix, rest) => {
        const encoded = encodeKey([...prefix, ...rest]);
        const low = encodeKey(prefix);
        expect(encoded >= low && encoded < low + KEY_SENTINEL).toBe(true);
      }),
    );
  });

  it('treats -0 and 0 as one key', () => {
    expect(encodeKey([-0])).toBe(encodeKey([0]));
  });

  it('refuses NaN and non-key values', () => {
    expect(() => encodeKey([NaN])).toThrow(StorageError);
    expect(() => encodeKey([true as unknown as string])).toThrow(StorageError);
  });
});
