/**
 * What every part of a homeserver shares: its name and key, its storage (seen
 * only through the Storage interface), a clock, its configuration, and the
 * services built on them (room engine, sync notifier, typing). Built once by
 * createHomeserver and passed to each API module; nothing here does I/O itself.
 */
import type { Signer } from '../core/index.js';
import type { Storage } from '../storage/types.js';
import { DEFAULT_RATE_LIMITS, type RateLimitConfig } from './limits/rate-limits.js';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export interface HomeserverConfig {
  /** Anyone may register (open registration). @default true */
  registrationEnabled: boolean;
  /** Largest request body accepted by JSON endpoints, in bytes. @default 1048576 */
  maxBodyBytes: number;
  /**
   * Deepest nesting of JSON accepted in a request body or JSON query parameter (json-ingress.ts); far below
   * the ~2,200 levels V8 can deserialize from storage. @default 100
   */
  maxJsonDepth: number;
  /** Largest media upload, in bytes. @default 52428800 */
  maxUploadBytes: number;
  /** Largest file fetched from another server for a client (federation/media.ts); larger ones answer 502 M_TOO_LARGE. @default 52428800 */
  maxRemoteMediaBytes: number;
  /** Longest /sync long-poll the server honours, in milliseconds. @default 30000 */
  maxSyncTimeoutMs: number;
  /** Room version of new rooms. @default '12' */
  defaultRoomVersion: string;
  /**
   * Iterations of PBKDF2-SHA256 for password hashes (OWASP's advice for PBKDF2-SHA256); passwords hashed
   * with fewer are rehashed at their next login. @default 600000
   */
  passwordHashIterations: number;
  /**
   * The URL clients reach this server's client API at, as GET /.well-known/matrix/client publishes it
   * (`m.homeserver.base_url`). Never taken from a request: the Host header is the client's to choose, and
   * a cache or proxy in front could serve one client's Host to everyone. The Node CLI sets it from its
   * listen address or --public-url. @default undefined (.well-known answers 404: no discovery published)
   */
  publicBaseUrl?: string;
  /** Synapse-style rc_* limits, each documented with its default in limits/rate-limits.ts. */
  rateLimits: RateLimitConfig;
  /**
   * Most to-device messages waiting for one device; past it the oldest are dropped (a device
   * away that long has lost them to a lagging inbox anyway, and senders never see an error).
   * @default 2000
   */
  maxToDevicePerDevice: number;
  /** Most media IDs from POST /_matrix/media/v1/create a user holds without content (Synapse: 5). @default 10 */
  maxPendingMediaUploads: number;
}

/** What createHomeserver accepts: any field of the configuration, and any single rate limit. */
export type HomeserverSettings = Partial<Omit<HomeserverConfig, 'rateLimits'>> & { rateLimits?: Partial<RateLimitConfig> };

export const DEFAULT_CONFIG: HomeserverConfig = {
  registrationEnabled: true,
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 100,
  maxUploadBytes: 50 * 1024 * 1024,
  maxRemoteMediaBytes: 50 * 1024 * 1024,
  maxSyncTimeoutMs: 30_000,
  defaultRoomVersion: '12',
  passwordHashIterations: 600_000,
  rateLimits: DEFAULT_RATE_LIMITS,
  maxToDevicePerDevice: 2000,
  maxPendingMediaUploads: 10,
};

export interface Logger {
  debug(message: string, detail?: unknown): void;
  warn(message: string, detail?: unknown): void;
  error(message: string, detail?: unknown): void;
}

/** Fills `out` with cryptographically secure random bytes. */
export type RandomBytes = (length: number) => Uint8Array;

export interface HomeserverContext {
  readonly serverName: string;
  readonly storage: Storage;
  readonly signer: Signer;
  readonly clock: Clock;
  readonly config: HomeserverConfig;
  readonly log: Logger;
  readonly randomBytes: RandomBytes;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random identifier of `length` letters and digits (device IDs, tokens, media IDs). */
export function randomId(ctx: Pick<HomeserverContext, 'randomBytes'>, length: number): string {
  const bytes = ctx.randomBytes(length);
  let out = '';
  for (let i = 0; i < length; i++) out += ID_ALPHABET[bytes[i]! % ID_ALPHABET.length];
  return out;
}
