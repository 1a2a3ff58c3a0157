/**
 * Route helpers of the server-server API: every route is under
 * /_matrix/federation, needs the authenticated origin the transport gives
 * (never an X-Matrix header: over libp2p the Noise-verified peer is the
 * server), and reads JSON only through the router's ingress.
 */
import { MatrixError } from '../http/errors.js';
import type { HttpMethod, RouteContext, RouteDefinition } from '../http/router.js';

export interface FederationContext extends RouteContext {
  origin: string;
}

export function federationRoute(method: HttpMethod, path: string, handler: (ctx: FederationContext) => Promise<unknown>): RouteDefinition {
  return {
    method,
    paths: ['/_matrix/federation' + path],
    auth: 'none',
    async handler(ctx) {
      if (!ctx.origin) throw new MatrixError(401, 'M_UNAUTHORIZED', 'Federation requests need an authenticated origin');
      return handler(ctx as FederationContext);
    },
  };
}

/** A JSON array field of a body, bounded. */
export function arrayField(body: Record<string, unknown>, key: string, max: number): unknown[] {
  const value = body[key];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new MatrixError(400, 'M_BAD_JSON', `${key} must be an array`);
  if (value.length > max) throw new MatrixError(400, 'M_TOO_LARGE', `${key} holds more than ${max} entries`);
  return value;
}

/** An array of event IDs, bounded. */
export function eventIdList(body: Record<string, unknown>, key: string, max: number): string[] {
  const list = arrayField(body, key, max);
  if (!list.every((id): id is string => typeof id === 'string' && id.startsWith('$'))) {
    throw new MatrixError(400, 'M_BAD_JSON', `${key} must list event IDs`);
  }
  return list;
}
