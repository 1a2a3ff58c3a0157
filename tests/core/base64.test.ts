import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.js';
import { CoreError } from '../../src/core/errors.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('encodeBase64', () => {
  // Spec appendix "Unpadded Base64" examples.
  const examples: [string, string][] = [
    ['', ''],
    ['f', 'Zg'],
    ['fo', 'Zm8'],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg'],
    ['fooba', 'Zm9vYmE'],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of examples) {
    it(`UNPADDED_BASE64(${JSON.stringify(plain)}) = ${JSON.stringify(encoded)}`, () => {
      expect(encodeBase64(utf8(plain))).toBe(encoded);
      expect(decodeBase64(encoded)).toEqual(utf8(plain));
    });
  }

  it('uses - and _ in the URL-safe alphabet', () => {
    const bytes = new Uint8Array([0xfb, 0xff, 0xbf]);
    expect(encodeBase64(bytes)).toBe('+/+/');
    expect(encodeBase64(bytes, { urlSafe: true })).toBe('-_-_');
  });

  it('matches Node for large inputs', () => {
    const big = new Uint8Array(100_001).map((_, i) => (i * 7919) & 255);
    expect(encodeBase64(big)).toBe(Buffer.from(big).toString('base64').replace(/=+$/, ''));
    expect(encodeBase64(big, { urlSafe: true })).toBe(Buffer.from(big).toString('base64url'));
  });
});

describe('decodeBase64', () => {
  it('accepts padding or none, and either alphabet', () => {
    expect(decodeBase64('Zg==')).toEqual(utf8('f'));
    expect(decodeBase64('Zm8=')).toEqual(utf8('fo'));
    expect(decodeBase64('-_-_')).toEqual(decodeBase64('+/+/'));
  });

  it('ignores nonzero padding bits (the spec seed has them)', () => {
    const seed = decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1');
    expect(seed.length).toBe(32);
    expect(decodeBase64('Zh')).toEqual(utf8('f'));
    expect(decodeBase64('Zm9')).toEqual(utf8('fo'));
  });

  const invalid = ['Z', 'Zg=a', 'Zm9v!', 'Zm 9v', 'Zm9v\n', '====', 'Z===', 'Zm9vé', '日本'];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)} with BAD_BASE64`, () => {
      let caught: unknown;
      try {
        decodeBase64(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CoreError);
      expect((caught as CoreError).code).toBe('BAD_BASE64');
    });
  }

  it('refuses a non-string', () => {
    expect(() => decodeBase64(42 as unknown as string)).toThrow(CoreError);
  });
});

describe('base64 properties', () => {
  it('round-trips in both alphabets, and agrees with Node', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, urlSafe) => {
        const text = encodeBase64(bytes, { urlSafe });
        expect(text).not.toContain('=');
        expect(text).toBe(Buffer.from(bytes).toString(urlSafe ? 'base64url' : 'base64').replace(/=+$/, ''));
        expect(decodeBase64(text)).toEqual(bytes);
        expect(decodeBase64(Buffer.from(bytes).toString('base64'))).toEqual(bytes); // padded
      }),
    );
  });

  it('never throws anything but BAD_BASE64 on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        try {
          decodeBase64(text);
        } catch (err) {
          expect((err as CoreError).code).toBe('BAD_BASE64');
        }
      }),
    );
  });
});
