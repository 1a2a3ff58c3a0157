/**
 * The token bucket on its own, with a fake clock: bursts, refill, the wait it
 * announces, check without counting, and the memory bound (idle keys go, and
 * no more than maxKeys are ever tracked).
 */
import { describe, expect, it } from 'vitest';
import { createTokenBucket } from '../../../src/homeserver/limits/token-bucket.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('token bucket', () => {
  it('allows a burst, then refuses with the exact wait, and allows again once it has passed', () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ perSecond: 0.5, burstCount: 3, now: clock.now });
    for (let i = 0; i < 3; i++) expect(bucket.take('a')).toEqual({ allowed: true });
    expect(bucket.take('a')).toEqual({ allowed: false, retryAfterMs: 2000 });
    clock.advance(1999);
    expect(bucket.take('a')).toEqual({ allowed: false, retryAfterMs: 1 });
    clock.advance(1);
    expect(bucket.take('a')).toEqual({ allowed: true });
    expect(bucket.take('a')).toMatchObject({ allowed: false });
    // Keys are independent.
    expect(bucket.take('b')).toEqual({ allowed: true });
  });

  it('a refused action is not counted: waiting retry_after_ms is always enough', () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ perSecond: 1, burstCount: 1, now: clock.now });
    bucket.take('a');
    for (let i = 0; i < 50; i++) expect(bucket.take('a')).toEqual({ allowed: false, retryAfterMs: 1000 });
    clock.advance(1000);
    expect(bucket.take('a')).toEqual({ allowed: true });
  });

  it('check() counts nothing, record() counts even past the limit', () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ perSecond: 1, burstCount: 2, now: clock.now });
    for (let i = 0; i < 10; i++) expect(bucket.check('a')).toEqual({ allowed: true });
    bucket.record('a');
    bucket.record('a');
    bucket.record('a');
    expect(bucket.check('a')).toEqual({ allowed: false, retryAfterMs: 2000 });
  });

  it('forgets keys once idle, and never tracks more than maxKeys', () => {
    const clock = fakeClock();
    const bucket = createTokenBucket({ perSecond: 1, burstCount: 5, now: clock.now, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) bucket.record(`key${i}`);
    expect(bucket.size).toBeLessThanOrEqual(100);
    // The most recent keys are the ones kept.
    for (let i = 0; i < 5; i++) bucket.record('key9999');
    expect(bucket.check('key9999')).toMatchObject({ allowed: false });
    clock.advance(60_000);
    // Every key has refilled: each call sweeps a few idle ones, so quiet keys go without a timer.
    for (let i = 0; i < 30; i++) bucket.check('other');
    expect(bucket.size).toBe(0);
  });

  it('refuses nonsensical settings', () => {
    const now = () => 0;
    expect(() => createTokenBucket({ perSecond: 0, burstCount: 1, now })).toThrow();
    expect(() => createTokenBucket({ perSecond: 1, burstCount: 0, now })).toThrow();
  });
});
