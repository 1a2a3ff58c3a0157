import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonBytes, compareCodePoints, MAX_CANONICAL_DEPTH, utf8Length } from '../../src/core/canonical-json.js';
import { CoreError } from '../../src/core/errors.js';
import vectors from './fixtures/canonical-json.json';

function refusal(fn: () => unknown): CoreError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    return err as CoreError;
  }
  throw new Error('expected a CoreError');
}

describe('canonicalJson: spec examples and grammar cases', () => {
  for (const { input, canonical } of vectors.valid) {
    it(`${input.replace(/\s+/g, ' ').slice(0, 60)} -> ${canonical.slice(0, 60)}`, () => {
      expect(canonicalJson(JSON.parse(input))).toBe(canonical);
    });
  }

  it('writes non-ASCII as raw UTF-8 bytes', () => {
    expect([...canonicalJsonBytes({ a: '日' })]).toEqual([...new TextEncoder().encode('{"a":"日"}')]);
  });
});

describe('canonicalJson: refusals', () => {
  for (const { name, input, path } of vectors.invalid) {
    it(`refuses ${name} and names the path ${path}`, () => {
      const err = refusal(() => canonicalJson(JSON.parse(input)));
      expect(err.code).toBe('NOT_CANONICAL');
      expect(err.message).toContain(`at ${path}:`);
    });
  }

  const bad: [string, unknown][] = [
    ['NaN', { a: NaN }],
    ['Infinity', [Infinity]],
    ['-Infinity', [-Infinity]],
    ['undefined value', { a: undefined }],
    ['undefined at top', undefined],
    ['function', { f: () => 1 }],
    ['symbol', [Symbol('x')]],
    ['bigint', { n: 1n }],
    ['Date', { d: new Date(0) }],
    ['Map', new Map()],
    ['Uint8Array', { b: new Uint8Array(2) }],
    ['boxed number', { n: new Number(1) }],
    ['sparse array', [1, , 3]], // eslint-disable-line no-sparse-arrays
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}`, () => {
      expect(refusal(() => canonicalJson(value)).code).toBe('NOT_CANONICAL');
    });
  }

  it('refuses deep nesting with a CoreError, not a stack overflow', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(refusal(() => canonicalJson(deep)).message).toContain('nesting deeper');
    let obj: unknown = {};
    for (let i = 0; i < 200_000; i++) obj = { a: obj };
    expect(refusal(() => canonicalJson(obj)).code).toBe('NOT_CANONICAL');
  });

  it('accepts nesting up to the limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_CANONICAL_DEPTH; i++) deep = [deep];
    expect(canonicalJson(deep)).toBe('['.repeat(MAX_CANONICAL_DEPTH) + '1' + ']'.repeat(MAX_CANONICAL_DEPTH));
    expect(() => canonicalJson([deep])).toThrow(CoreError);
  });

  it('refuses cycles', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(refusal(() => canonicalJson(a)).code).toBe('NOT_CANONICAL');
  });

  it('keeps `__proto__` as an ordinary key', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":2}'))).toBe('{"__proto__":{"x":1},"a":2}');
  });
});

/** Shuffles object keys (recursively) by rebuilding objects in a permuted order. */
function reorder(value: unknown, perm: number[]): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, perm));
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    const order = keys.map((_, i) => keys[(i * (perm[i % perm.length] ?? 1) + (perm[0] ?? 0)) % keys.length]);
    const seen = new Set<string>();
    const out: Record<string, unknown> = {};
    for (const k of [...order, ...keys]) {
      if (seen.has(k)) continue;
      seen.add(k);
      Object.defineProperty(out, k, { value: reorder((value as Record<string, unknown>)[k], perm), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

const json = fc.jsonValue({ maxDepth: 4 }).filter((v) => {
  try {
    canonicalJson(v);
    return true;
  } catch {
    return false; // floats and such: not canonical, not the property under test
  }
});

describe('canonicalJson: properties', () => {
  it('does not depend on key insertion order', () => {
    fc.assert(
      fc.property(json, fc.array(fc.nat(50), { minLength: 1, maxLength: 5 }), (value, perm) => {
        expect(canonicalJson(reorder(value, perm))).toBe(canonicalJson(value));
      }),
    );
  });

  it('is valid JSON that parses back to an equal value and re-encodes identically', () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = canonicalJson(value);
        const back = JSON.parse(text);
        expect(canonicalJson(back)).toBe(text);
      }),
    );
  });

  // Keys mixing ASCII, the top of the BMP (U+E000–FFFF) and astral characters: where UTF-16 order goes wrong.
  const trickyChar = fc.oneof(
    fc.constantFrom('a', 'z', '0', '\uE000', '\uFB01', '\uFFFF', '日'),
    fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
  );
  const trickyKey = fc.string({ unit: trickyChar, maxLength: 4 });

  it('sorts keys by code point', () => {
    fc.assert(
      fc.property(fc.uniqueArray(trickyKey, { maxLength: 8 }), (keys) => {
        const obj: Record<string, number> = {};
        keys.forEach((k, i) => (obj[k] = i));
        const byCodePoint = [...keys].sort((a, b) => {
          const x = Array.from(a, (c) => c.codePointAt(0)!);
          const y = Array.from(b, (c) => c.codePointAt(0)!);
          for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
          return x.length - y.length;
        });
        const expected = '{' + byCodePoint.map((k) => `${JSON.stringify(k)}:${obj[k]}`).join(',') + '}';
        expect(canonicalJson(obj)).toBe(expected);
      }),
    );
  });

  it('compareCodePoints agrees with a code point comparison', () => {
    fc.assert(
      fc.property(trickyKey, trickyKey, (a, b) => {
        const x = Array.from(a, (c) => c.codePointAt(0)!);
        const y = Array.from(b, (c) => c.codePointAt(0)!);
        let expected = x.length - y.length;
        for (let i = 0; i < Math.min(x.length, y.length); i++) {
          if (x[i] !== y[i]) {
            expected = x[i] - y[i];
            break;
          }
        }
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(expected));
      }),
    );
  });

  it('utf8Length matches TextEncoder', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
      }),
    );
  });
});
