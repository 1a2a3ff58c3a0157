// Pure pieces of the wire protocol: the depth/size guard for peer JSON, the varint framer,
// the per-peer rate limiter and the request/response shape checks.
import { describe, expect, it } from 'vitest';
import { jsonDepth, parseGuardedJson } from '../../src/p2p/json-guard.js';
import { decodeFrame, encodeFrame } from '../../src/p2p/framing.js';
import { createPeerRateLimiter } from '../../src/p2p/rate-limit.js';
import { requestFromJson, responseFromJson } from '../../src/p2p/transport.js';
import { isRetryable, P2PError } from '../../src/p2p/errors.js';

describe('json guard', () => {
  it('measures depth outside strings, with escapes', () => {
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('{"a":[1,{"b":[]}]}')).toBe(4);
    expect(jsonDepth('"[[[[\\"[[["')).toBe(0);
    expect(jsonDepth('{"k\\\\":"]]]","x":[[]]}')).toBe(3);
  });

  it('skips strings by their closing quote and agrees with a character-by-character scan on any text', () => {
    // The scan before strings were skipped with indexOf: the reference.
    const byChar = (text: string): number => {
      let depth = 0;
      let deepest = 0;
      let inString = false;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
          if (c === '\\') i++;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth);
        else if (c === ']' || c === '}') depth--;
      }
      return deepest;
    };
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = ['"', '\\', '[', ']', '{', '}', 'a', ','];
    for (let n = 0; n < 20_000; n++) {
      const text = Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      expect(jsonDepth(text), JSON.stringify(text)).toBe(byChar(text));
    }
    // Escaped quotes and backslash runs before a closing quote.
    expect(jsonDepth('["\\\\",[["\\\"]]"]]]')).toBe(3);
    // A hostile string of escapes stays one pass (a megabyte of it is read quickly, not quadratically).
    const escapes = '"' + '\\"'.repeat(500_000) + '"';
    expect(jsonDepth(`[${escapes},[[1]]]`)).toBe(3);
  });

  it('refuses deep and long input before parsing, without recursion', () => {
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(() => parseGuardedJson(deep, { maxLength: 4_000_000 })).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    expect(() => parseGuardedJson('[' + '1,'.repeat(100) + '1]', { maxLength: 50 })).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(parseGuardedJson('[[[1]]]', { maxDepth: 3 })).toEqual([[[1]]]);
    expect(() => parseGuardedJson('[[[[1]]]]', { maxDepth: 3 })).toThrow(P2PError);
    expect(() => parseGuardedJson('{bad')).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
  });

  it('keeps __proto__ as data', () => {
    const value = parseGuardedJson('{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}') as Record<string, unknown>;
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('framing', () => {
  it('round-trips lengths across varint boundaries', () => {
    for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 70_000]) {
      const payload = new Uint8Array(n).fill(7);
      const frame = encodeFrame(payload);
      const decoded = decodeFrame(frame, 1 << 20)!;
      expect(decoded.used).toBe(frame.length);
      expect(decoded.payload).toEqual(payload);
      expect(decodeFrame(frame.subarray(0, frame.length - 1), 1 << 20)).toBeUndefined();
    }
  });

  it('refuses by the announced length, and over-long prefixes', () => {
    const header = encodeFrame(new Uint8Array(2_000)).subarray(0, 2);
    expect(() => decodeFrame(header, 1_000)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    expect(() => decodeFrame(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80]), 1 << 30)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
  });
});

describe('per-peer rate limiter', () => {
  it('allows a burst, refills at the rate, and keeps peers apart', () => {
    let t = 0;
    const limiter = createPeerRateLimiter({ ratePerSecond: 2, burst: 3, maxConcurrent: 10, now: () => t });
    const take = (peer: string) => {
      const a = limiter.admit(peer);
      if (a.ok) a.release();
      return a.ok;
    };
    expect([take('a'), take('a'), take('a'), take('a')]).toEqual([true, true, true, false]);
    expect(take('b')).toBe(true);
    const refused = limiter.admit('a');
    expect(refused).toMatchObject({ ok: false, reason: 'rate' });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBe(500);
    t += 500;
    expect(take('a')).toBe(true);
    expect(take('a')).toBe(false);
  });

  it('caps requests in flight until released', () => {
    const limiter = createPeerRateLimiter({ maxConcurrent: 2 });
    const one = limiter.admit('a');
    const two = limiter.admit('a');
    expect(limiter.admit('a')).toMatchObject({ ok: false, reason: 'concurrency' });
    if (one.ok) {
      one.release();
      one.release(); // twice is harmless
    }
    expect(limiter.admit('a').ok).toBe(true);
    expect(two.ok).toBe(true);
  });
});

describe('request and response shapes', () => {
  it('accepts the three methods and absolute paths, reading own fields only', () => {
    expect(requestFromJson({ method: 'PUT', path: '/x', body: { a: 1 }, extra: 1 })).toEqual({ method: 'PUT', path: '/x', body: { a: 1 } });
    expect(requestFromJson({ method: 'GET', path: '/x' })).toEqual({ method: 'GET', path: '/x' });
    for (const bad of [null, [], 'x', { method: 'DELETE', path: '/x' }, { method: 'GET', path: 'x' }, { method: 'GET', path: '/' + 'a'.repeat(9000) }, Object.create({ method: 'GET', path: '/x' })]) {
      expect(() => requestFromJson(bad)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    }
    expect(responseFromJson({ status: 200, body: { ok: true } })).toEqual({ status: 200, body: { ok: true } });
    for (const bad of [{ status: 99 }, { status: 200.5 }, { status: '200' }, []]) expect(() => responseFromJson(bad)).toThrow(P2PError);
  });

  it('says which failures are worth retrying', () => {
    expect(isRetryable(new P2PError('TIMEOUT', ''))).toBe(true);
    expect(isRetryable(new P2PError('UNREACHABLE', ''))).toBe(true);
    expect(isRetryable(new P2PError('TOO_LARGE', ''))).toBe(false);
    expect(isRetryable(new Error('x'))).toBe(false);
  });
});
