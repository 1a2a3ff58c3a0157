/**
 * Per-peer admission for inbound requests: a token bucket (sustained rate
 * plus a burst) and a cap on requests in flight. Keyed by the authenticated
 * server name, so a peer cannot dodge it by opening more streams; one bucket
 * per peer, dropped when idle and full, so the map stays bounded by the
 * number of connected peers.
 */
export interface RateLimitOptions {
  /** Requests per second a peer may sustain. @default 50 */
  ratePerSecond?: number;
  /** Requests a peer may make at once after being quiet. @default 100 */
  burst?: number;
  /** Requests from one peer being handled at once; more are answered 429. @default 16 */
  maxConcurrent?: number;
  /** Clock in ms, for tests. @default Date.now */
  now?: () => number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; retryAfterMs: number; reason: 'rate' | 'concurrency' };

interface Bucket {
  tokens: number;
  at: number;
  inFlight: number;
}

export interface PeerRateLimiter {
  admit(peer: string): Admission;
}

export function createPeerRateLimiter(options: RateLimitOptions = {}): PeerRateLimiter {
  const rate = options.ratePerSecond ?? 50;
  const burst = options.burst ?? 100;
  const maxConcurrent = options.maxConcurrent ?? 16;
  const now = options.now ?? Date.now;
  const buckets = new Map<string, Bucket>();

  function refill(bucket: Bucket, t: number): void {
    bucket.tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * rate);
    bucket.at = t;
  }

  function sweep(t: number): void {
    // Buckets that are full again and idle carry no information: forget them.
    if (buckets.size < 1024) return;
    for (const [peer, bucket] of buckets) {
      refill(bucket, t);
      if (bucket.inFlight === 0 && bucket.tokens >= burst) buckets.delete(peer);
    }
  }

  return {
    admit(peer) {
      const t = now();
      sweep(t);
      let bucket = buckets.get(peer);
      if (!bucket) {
        bucket = { tokens: burst, at: t, inFlight: 0 };
        buckets.set(peer, bucket);
      }
      refill(bucket, t);
      if (bucket.inFlight >= maxConcurrent) return { ok: false, reason: 'concurrency', retryAfterMs: 100 };
      if (bucket.tokens < 1) return { ok: false, reason: 'rate', retryAfterMs: Math.ceil(((1 - bucket.tokens) / rate) * 1000) };
      bucket.tokens -= 1;
      bucket.inFlight++;
      const held = bucket;
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          held.inFlight--;
        },
      };
    },
  };
}
