/**
 * The federation side of a homeserver, assembled: the server-server API's
 * routes behind one `(Request, origin) => Response` handler (the same router
 * and JSON ingress as the client-server API), the ReplicationPort the p2p
 * layer drives, and the outbound services the client-server API uses for
 * remote rooms and users (joins.ts, queries-out.ts) through the injected
 * FederationClient.
 */
import type { HomeserverContext } from '../context.js';
import { createRouter, type RouteSummary } from '../http/router.js';
import { unknownToken } from '../http/errors.js';
import type { RoomEngine } from '../rooms/types.js';
import type { TypingTracker } from '../sync/typing.js';
import type { FederationDeps } from './deps.js';
import { EduHandler } from './edus.js';
import { FederatedMembership } from './joins.js';
import { RemoteQueries } from './queries-out.js';
import { FederationReads } from './reads.js';
import { RemoteServers } from './remote.js';
import { eventRoutes } from './routes-events.js';
import { membershipRoutes } from './routes-membership.js';
import { queryRoutes } from './routes-queries.js';
import { transactionRoutes } from './routes-transactions.js';
import type { ReplicationPort } from './types.js';

export type { FederationClient, PduOutcome, ReplicationPort } from './types.js';

export interface Federation {
  handle(request: Request, origin: string): Promise<Response>;
  readonly routes: readonly RouteSummary[];
  readonly replication: ReplicationPort;
  readonly membership: FederatedMembership;
  readonly queries: RemoteQueries;
  close(): void;
}

type MissingPrevsListener = (origin: string, roomId: string, pdu: object, missing: string[]) => void;

/** Builds the federation side; `remote` is shared with the room engine's remote-invite hook. */
export function createFederation(ctx: HomeserverContext, rooms: RoomEngine, typing: TypingTracker, remote: RemoteServers): Federation {
  const listeners = new Set<MissingPrevsListener>();
  const edus = new EduHandler(ctx, typing);
  const deps: FederationDeps = {
    ctx,
    rooms,
    reads: new FederationReads(ctx),
    edus,
    missingPrevs(origin, roomId, pdu, missing) {
      for (const listener of [...listeners]) {
        try {
          listener(origin, roomId, pdu, missing);
        } catch (error) {
          ctx.log.warn('missing-prevs listener failed', error);
        }
      }
    },
  };
  const router = createRouter([...transactionRoutes(deps), ...membershipRoutes(deps), ...eventRoutes(deps), ...queryRoutes(deps)], {
    authenticate: () => Promise.reject(unknownToken()),
    maxBodyBytes: ctx.config.maxBodyBytes,
    jsonLimits: { maxDepth: ctx.config.maxJsonDepth },
    onError: (e) => ctx.log.error('unhandled error in federation request', e),
  });
  const replication: ReplicationPort = {
    setClient: (client) => remote.setClient(client),
    receivePdus: (pdus, origin) => rooms.receivePdus(pdus, origin),
    rooms: () => rooms.sharedRooms(),
    eventIds: (roomId, pdus) => rooms.identifyPdus(roomId, pdus),
    storedEvents: (ids) => rooms.storedEvents(ids),
    onMissingPrevs(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    handle: (request, origin) => router.handle(request, { origin }),
    routes: router.routes,
    replication,
    membership: new FederatedMembership(ctx, rooms, remote),
    queries: new RemoteQueries(ctx, remote),
    close: () => edus.close(),
  };
}
