/**
 * The homeserver's rate limits, in the style of Synapse's `rc_*` settings: what
 * is limited, keyed by whom, and with which defaults. Each limit is a token
 * bucket (limits/token-bucket.ts) on the homeserver's clock; a refused action
 * answers 429 M_LIMIT_EXCEEDED with `retry_after_ms` and a Retry-After header.
 *
 * Per-address limits (login, registration) need the client's address, which
 * only the Node HTTP adapter knows. In process (a tab serving its own user)
 * there is one local client, the owner of the storage, who could write it
 * directly: per-address limits do not apply there, per-user and per-account
 * ones do. Over HTTP on loopback every local client shares '127.0.0.1', so the
 * address limits act as one budget for the whole machine and are sized for a
 * few clients, not one.
 *
 * The defaults stay out of a real client's way: sends are 10 times Synapse's
 * rate with 5 times its burst (a pasted batch of 20 messages goes through),
 * while wrong passwords stop after 5 in a row. Limits are kept in memory: a
 * restart forgets them, which costs an attacker a restart they cannot cause.
 */
import type { Clock } from '../context.js';
import { limitExceeded } from '../http/errors.js';
import { createTokenBucket, type RateLimit, type TokenBucket } from './token-bucket.js';

export type { RateLimit } from './token-bucket.js';

/** A limit, or `false` for none (benchmarks, tests about something else). */
export type RateLimitSetting = RateLimit | false;

export interface RateLimitConfig {
  /**
   * Login requests per client address (rc_login.address), successful or not; not applied in process.
   * @default { perSecond: 0.17, burstCount: 10 }
   */
  loginAddress: RateLimitSetting;
  /**
   * Successful logins per account (rc_login.account): how fast new sessions (devices) appear.
   * Checked before the password, like failedAttempts, so a 429 never tells a right guess apart.
   * @default { perSecond: 0.17, burstCount: 10 }
   */
  loginAccount: RateLimitSetting;
  /**
   * Failed logins per account (rc_login.failed_attempts). Checked before the password, so once
   * exhausted even the right password waits (otherwise a 200 would reveal a guess was right).
   * @default { perSecond: 0.05, burstCount: 5 }
   */
  loginFailedAttempts: RateLimitSetting;
  /**
   * Registrations per client address (rc_registration); not applied in process.
   * @default { perSecond: 0.17, burstCount: 10 }
   */
  registration: RateLimitSetting;
  /**
   * Events sent per user (rc_message): messages, state events other than memberships, redactions.
   * Synapse's default is 0.2/s with a burst of 10.
   * @default { perSecond: 2, burstCount: 50 }
   */
  message: RateLimitSetting;
  /**
   * Joins per user (rc_joins.local): by room ID or alias, and member events joining oneself.
   * @default { perSecond: 0.2, burstCount: 30 }
   */
  joins: RateLimitSetting;
  /**
   * PUT /sendToDevice requests per sending device (Synapse limits key requests at 20/s, burst 100).
   * @default { perSecond: 20, burstCount: 200 }
   */
  toDevice: RateLimitSetting;
  /**
   * POST /_matrix/media/v1/create per user (rc_media_create: Synapse 10/s, burst 50).
   * @default { perSecond: 10, burstCount: 50 }
   */
  mediaCreate: RateLimitSetting;
  /**
   * Media uploads per user (POST /upload and PUT /upload/{serverName}/{mediaId}), counted per request.
   * @default { perSecond: 1, burstCount: 50 }
   */
  mediaUpload: RateLimitSetting;
  /** Most keys each limiter tracks at once (see token-bucket.ts for the cost of the cap). @default 10000 */
  maxTrackedKeys: number;
}

export const DEFAULT_RATE_LIMITS: RateLimitConfig = {
  loginAddress: { perSecond: 0.17, burstCount: 10 },
  loginAccount: { perSecond: 0.17, burstCount: 10 },
  loginFailedAttempts: { perSecond: 0.05, burstCount: 5 },
  registration: { perSecond: 0.17, burstCount: 10 },
  message: { perSecond: 2, burstCount: 50 },
  joins: { perSecond: 0.2, burstCount: 30 },
  toDevice: { perSecond: 20, burstCount: 200 },
  mediaCreate: { perSecond: 10, burstCount: 50 },
  mediaUpload: { perSecond: 1, burstCount: 50 },
  maxTrackedKeys: 10_000,
};

/** Every rate limit off: for benchmarks and tests that are about something else. */
export const NO_RATE_LIMITS: RateLimitConfig = {
  loginAddress: false,
  loginAccount: false,
  loginFailedAttempts: false,
  registration: false,
  message: false,
  joins: false,
  toDevice: false,
  mediaCreate: false,
  mediaUpload: false,
  maxTrackedKeys: DEFAULT_RATE_LIMITS.maxTrackedKeys,
};

export type RateLimitedAction = Exclude<keyof RateLimitConfig, 'maxTrackedKeys'>;

const ACTIONS: RateLimitedAction[] = [
  'loginAddress',
  'loginAccount',
  'loginFailedAttempts',
  'registration',
  'message',
  'joins',
  'toDevice',
  'mediaCreate',
  'mediaUpload',
];

/**
 * The key a client address is limited under: an IPv4 address as it is (also when the socket
 * reports it IPv4-mapped, '::ffff:192.0.2.1'), an IPv6 address by its /64, the block one
 * subscriber gets, so rotating addresses within it buys nothing. Undefined stays undefined
 * (in process: no per-address limit).
 */
export function addressKey(remoteAddress: string | undefined): string | undefined {
  if (remoteAddress === undefined || remoteAddress === '') return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return mapped[1];
  if (!remoteAddress.includes(':')) return remoteAddress;
  // Expand '::' so the first four groups are the /64, whatever the written form.
  const [head = '', tail] = remoteAddress.toLowerCase().split('%')[0]!.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const rest = tail === '' ? [] : tail.split(':');
    while (groups.length + rest.length < 8) groups.push('0');
    groups.push(...rest);
  }
  return groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':') + '::/64';
}

/** One limiter per action; a call with no key (no client address) or a disabled limit always passes. */
export class RateLimiters {
  private readonly buckets = new Map<RateLimitedAction, TokenBucket>();

  constructor(config: RateLimitConfig, clock: Clock) {
    for (const action of ACTIONS) {
      const setting = config[action];
      if (setting === false) continue;
      this.buckets.set(action, createTokenBucket({ ...setting, now: () => clock.now(), maxKeys: config.maxTrackedKeys }));
    }
  }

  /** Counts one action of `key`; 429 M_LIMIT_EXCEEDED (nothing counted) when over the limit. */
  take(action: RateLimitedAction, key: string | undefined): void {
    if (key === undefined) return;
    const verdict = this.buckets.get(action)?.take(key);
    if (verdict && !verdict.allowed) throw limitExceeded(verdict.retryAfterMs);
  }

  /** 429 when `key` is over the limit, counting nothing (failed logins are counted once they fail). */
  check(action: RateLimitedAction, key: string | undefined): void {
    if (key === undefined) return;
    const verdict = this.buckets.get(action)?.check(key);
    if (verdict && !verdict.allowed) throw limitExceeded(verdict.retryAfterMs);
  }

  /** Counts one action of `key` that already happened (a failed login, a registration). */
  record(action: RateLimitedAction, key: string | undefined): void {
    if (key !== undefined) this.buckets.get(action)?.record(key);
  }
}
