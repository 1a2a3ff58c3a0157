/**
 * A token-bucket rate limiter keyed by strings (a user, a device, an address),
 * in the shape of Synapse's `Ratelimiter`: each key may act `burstCount` times
 * at once and regains one action every `1 / perSecond` seconds. Pure: the clock
 * is passed in, nothing runs in the background.
 *
 * Memory is bounded, because keys come from the network (addresses, names of
 * accounts that may not exist): a key whose bucket has refilled carries no
 * information and is dropped as soon as it is seen idle, and at most `maxKeys`
 * keys are tracked; past that the least recently used key is forgotten. The
 * cost of the cap: an attacker who rotates more than `maxKeys` keys can make
 * the limiter forget some other key's recent actions, so it fails open for that
 * key — never closed for anyone who has not acted.
 */

/** How fast a key may act: Synapse's `per_second` and `burst_count`. */
export interface RateLimit {
  /** Actions regained per second (0.2 = one every 5 s). */
  perSecond: number;
  /** Actions allowed at once, after a quiet period. */
  burstCount: number;
}

export type RateLimitVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface TokenBucketOptions extends RateLimit {
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now(): number;
  /** Most keys tracked at once. @default 10000 */
  maxKeys?: number;
}

export interface TokenBucket {
  /** Whether `key` may act `cost` times now, without recording anything (Synapse's `update=False`). */
  check(key: string, cost?: number): RateLimitVerdict;
  /** Records `cost` actions of `key`, even past the limit (a failed login that was allowed to run). */
  record(key: string, cost?: number): void;
  /** check() and, when allowed, record(): the usual "may I? then I did" in one step. */
  take(key: string, cost?: number): RateLimitVerdict;
  /** Keys tracked now (for tests of the memory bound). */
  readonly size: number;
}

interface Bucket {
  /** Actions counted against the key at `at`, already drained up to then. */
  level: number;
  /** When `level` was computed, in ms. */
  at: number;
}

export function createTokenBucket(options: TokenBucketOptions): TokenBucket {
  const { perSecond, burstCount, now } = options;
  const maxKeys = options.maxKeys ?? 10_000;
  if (!(perSecond > 0) || !(burstCount >= 1)) throw new Error('a rate limit needs perSecond > 0 and burstCount >= 1');
  const perMs = perSecond / 1000;
  // Insertion order is recency order: a touched key is deleted and set again.
  const buckets = new Map<string, Bucket>();

  /** The key's level drained to `t`; 0 when it has none. */
  function levelAt(bucket: Bucket | undefined, t: number): number {
    if (!bucket) return 0;
    return Math.max(0, bucket.level - Math.max(0, t - bucket.at) * perMs);
  }

  /** Drops the least recently used keys while they are idle, so quiet keys go without a timer. */
  function sweep(t: number): void {
    // A few per call keeps each call O(1); a burst of new keys is met by the hard cap below.
    for (let i = 0; i < 4; i++) {
      const oldest = buckets.entries().next();
      if (oldest.done) return;
      const [key, bucket] = oldest.value;
      if (levelAt(bucket, t) > 0) return;
      buckets.delete(key);
    }
  }

  function verdict(level: number, cost: number): RateLimitVerdict {
    if (level + cost <= burstCount) return { allowed: true };
    // Time until enough has drained for this action to fit; at least 1 ms so clients wait at all.
    return { allowed: false, retryAfterMs: Math.max(1, Math.ceil((level + cost - burstCount) / perMs)) };
  }

  function record(key: string, cost = 1): void {
    const t = now();
    const level = levelAt(buckets.get(key), t) + cost;
    buckets.delete(key);
    buckets.set(key, { level, at: t });
    while (buckets.size > maxKeys) buckets.delete(buckets.keys().next().value!);
    sweep(t);
  }

  function check(key: string, cost = 1): RateLimitVerdict {
    const t = now();
    sweep(t);
    return verdict(levelAt(buckets.get(key), t), cost);
  }

  return {
    check,
    record,
    take(key, cost = 1) {
      const result = check(key, cost);
      if (result.allowed) record(key, cost);
      return result;
    },
    get size() {
      return buckets.size;
    },
  };
}
