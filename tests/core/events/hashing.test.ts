import { describe, expect, it } from 'vitest';
import { checkContentHash, contentHash } from '../../../src/core/events/hashing.js';
import spec from '../fixtures/spec-signing.json';

describe('contentHash', () => {
  for (const { name, input, signed } of spec.events) {
    it(`reproduces the spec's content hash of the ${name}`, () => {
      expect(contentHash(input)).toBe(signed.hashes.sha256);
      expect(contentHash(signed)).toBe(signed.hashes.sha256);
    });
  }

  it('ignores unsigned, signatures and hashes but covers everything else', () => {
    const base = spec.events[0].input;
    const h = contentHash(base);
    expect(contentHash({ ...base, unsigned: { x: 1 }, signatures: { a: { b: 'c' } }, hashes: { sha256: 'x' } })).toBe(h);
    expect(contentHash({ ...base, content: { x: 1 } })).not.toBe(h);
    expect(contentHash({ ...base, extra: null })).not.toBe(h);
    const { origin: _o, ...withoutOrigin } = base;
    expect(contentHash(withoutOrigin)).not.toBe(h);
  });

  it('throws CoreError for non-objects and non-canonical events', () => {
    expect(() => contentHash(null as unknown as object)).toThrow(expect.objectContaining({ code: 'MALFORMED_EVENT' }));
    expect(() => contentHash({ content: { x: 0.5 } })).toThrow(expect.objectContaining({ code: 'NOT_CANONICAL' }));
  });
});

describe('checkContentHash', () => {
  it('accepts the spec events', () => {
    for (const { signed } of spec.events) expect(checkContentHash(signed)).toBe(true);
  });

  it('accepts a padded hash (decoded, compared as bytes)', () => {
    const signed = spec.events[0].signed;
    expect(checkContentHash({ ...signed, hashes: { sha256: signed.hashes.sha256 + '=' } })).toBe(true);
  });

  it('is false, never a throw, for anything wrong', () => {
    const signed = spec.events[0].signed;
    const cases: unknown[] = [
      { ...signed, content: { changed: true } },
      { ...signed, hashes: {} },
      { ...signed, hashes: { sha256: 5 } },
      { ...signed, hashes: { sha256: '!!!' } },
      { ...signed, hashes: { sha256: 'AAAA' } },
      { ...signed, hashes: undefined },
      { ...signed, content: { x: 1.5 } },
      null,
      [],
    ];
    for (const c of cases) expect(checkContentHash(c as object)).toBe(false);
  });
});
