/**
 * The services a homeserver's API modules are given: the shared context plus
 * the long-lived parts built on it (room engine, typing tracker, sync). Each API
 * module is a function from these services to its routes.
 */
import type { RouteDefinition } from './http/router.js';
import type { HomeserverContext } from './context.js';
import type { RoomEngine } from './rooms/types.js';
import type { TypingTracker } from './sync/typing.js';
import type { SyncService } from './sync/sync.js';
import type { RateLimiters } from './limits/rate-limits.js';
import type { Federation } from './federation/index.js';
import type { PresenceTracker } from './accounts/presence.js';

export interface HomeserverServices {
  readonly ctx: HomeserverContext;
  readonly rooms: RoomEngine;
  readonly typing: TypingTracker;
  /** /sync and the read side of rooms (notifier, caches); its close() ends long-polls. */
  readonly sync: SyncService;
  /** The rc_* rate limits (limits/rate-limits.ts), shared by every route that counts an action. */
  readonly limits: RateLimiters;
  /** Remote rooms, users, media and history: joins and leaves through other servers, remote profiles, keys, files and backfill (federation/). */
  readonly federation: Pick<Federation, 'membership' | 'queries' | 'media' | 'history' | 'presence'>;
  /** Presence, in memory: local users' own and what other servers told of theirs. */
  readonly presence: PresenceTracker;
}

export type RouteModule = (services: HomeserverServices) => RouteDefinition[];
