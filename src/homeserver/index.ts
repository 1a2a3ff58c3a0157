/**
 * The homeserver's public entry: what app/ and node/ compose.
 */
export { createHomeserver, type Homeserver, type HomeserverOptions } from './create-homeserver.js';
export { DEFAULT_CONFIG, type HomeserverConfig, type HomeserverSettings, type Clock } from './context.js';
export { DEFAULT_RATE_LIMITS, NO_RATE_LIMITS, type RateLimitConfig, type RateLimit } from './limits/rate-limits.js';
export type { ConnectionInfo } from './http/router.js';
export type { FederationClient, PduOutcome, ReplicationPort } from './federation/types.js';
