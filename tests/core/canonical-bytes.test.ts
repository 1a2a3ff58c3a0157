/**
 * The byte writer behind verifyEvent must write exactly what canonicalJsonBytes
 * writes (and refuse exactly what it refuses): checked on arbitrary JSON, on
 * strings full of escapes, surrogates and multi-byte characters, and on
 * objects whose keys need code point ordering.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CanonicalWriter } from '../../src/core/canonical-bytes.js';
import { canonicalJsonBytes, MAX_CANONICAL_DEPTH } from '../../src/core/canonical-json.js';

const writer = new CanonicalWriter();

function viaWriter(value: unknown): string {
  try {
    writer.reset();
    writer.value(value);
    return Buffer.from(writer.bytes(0, writer.pos)).toString('hex');
  } catch (err) {
    return `refused: ${(err as { code?: string }).code}`;
  }
}

function viaString(value: unknown): string {
  try {
    return Buffer.from(canonicalJsonBytes(value)).toString('hex');
  } catch (err) {
    return `refused: ${(err as { code?: string }).code}`;
  }
}

const trickyUnit = fc.oneof(
  fc.constantFrom('a', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u001f', '\u007f', '\u0080', '\u07ff', '\u0800', '\u2028'),
  fc.constantFrom('\uD7FF', '\uE000', '\uFFFF', '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '日'),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
);
const trickyString = fc.string({ unit: trickyUnit, maxLength: 6 });
const leaf = fc.oneof(
  fc.integer(),
  fc.constantFrom(1.5, NaN, -0, 2 ** 53, 2 ** 53 - 1, 1e21, undefined, null, true, false),
  trickyString,
  fc.string(),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('tree'), { maxLength: 5 }),
  object: fc.array(fc.tuple(fc.oneof(trickyString, fc.constantFrom('0', '1', '10', '__proto__', 'toJSON')), tie('tree')), { maxLength: 6 }).map((entries) => {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
    return obj;
  }),
}));

describe('CanonicalWriter', () => {
  it('writes the bytes of canonicalJsonBytes for any JSON value', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      expect(viaWriter(value)).toBe(viaString(value));
    }), { numRuns: 2000 });
  });

  it('agrees on escapes, surrogates, key order and refusals', () => {
    fc.assert(fc.property(tree, (value) => {
      expect(viaWriter(value)).toBe(viaString(value));
    }), { numRuns: 5000 });
  });

  it('agrees on nesting limits, cycles, non-JSON objects and long strings', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) deep = [deep];
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    class WithToJson {
      a = 1;
      toJSON() {
        return 'x';
      }
    }
    // eslint-disable-next-line no-sparse-arrays
    const cases: unknown[] = [deep, [deep], cycle, new WithToJson(), [1, , 3], Object.create(null), new Date(0), new Map(), new Uint8Array(2), 1n, () => 1];
    cases.push('x'.repeat(100_000), 'é\n'.repeat(40_000), { [`k${'\u{1F600}'.repeat(10)}`]: '\u0001'.repeat(5000) });
    for (const value of cases) expect(viaWriter(value)).toBe(viaString(value));
  });

  it('copies bytes it has written and grows past its initial buffer', () => {
    writer.reset();
    writer.value({ a: 'x'.repeat(20_000) });
    const end = writer.pos;
    writer.copy(0, end);
    expect(Buffer.from(writer.bytes(end, writer.pos)).toString()).toBe(`{"a":"${'x'.repeat(20_000)}"}`);
  });
});
