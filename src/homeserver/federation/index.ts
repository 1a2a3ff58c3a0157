/**
 * The federation side of a homeserver, assembled: the server-server API's
 * routes behind one `(Request, origin) => Response` handler (the same router
 * and JSON ingress as the client-server API), the ReplicationPort the p2p
 * layer drives, and the outbound services the client-server API uses for
 * remote rooms, users, media and history (joins.ts, queries-out.ts, media.ts, backfill.ts) through the injected
 * FederationClient.
 */
import type { HomeserverContext } from '../context.js';
import { createRouter, type RouteSummary } from '../http/router.js';
import { unknownToken } from '../http/errors.js';
import type { RoomEngine } from '../rooms/types.js';
import type { TypingTracker } from '../sync/typing.js';
import type { FederationDeps } from './deps.js';
import { RemoteDeviceLists } from './device-cache.js';
import { EduHandler } from './edus.js';
import { FederatedMembership } from './joins.js';
import { RemoteQueries } from './queries-out.js';
import { HistoryFetcher } from './backfill.js';
import { PresenceSender } from './presence-out.js';
import type { PresenceTracker } from '../accounts/presence.js';
import { RemoteMedia, mediaServeRoutes } from './media.js';
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
  /** Other servers' media, fetched from them or from any server holding a copy, and cached. */
  readonly media: RemoteMedia;
  /** History from before this server joined a room: backfill from servers in it. */
  readonly history: HistoryFetcher;
  /** Local users' presence, sent to the servers sharing a room with them. */
  readonly presence: PresenceSender;
  close(): void;
}

type MissingPrevsListener = (origin: string, roomId: string, pdu: object, missing: string[]) => void;

/** Builds the federation side; `remote` is shared with the room engine's remote-invite hook. */
export function createFederation(ctx: HomeserverContext, rooms: RoomEngine, typing: TypingTracker, remote: RemoteServers, presence?: PresenceTracker): Federation {
  const listeners = new Set<MissingPrevsListener>();
  const deviceLists = new RemoteDeviceLists(ctx, remote);
  const edus = new EduHandler(ctx, typing, deviceLists, presence);
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
  const history = new HistoryFetcher(ctx, remote, rooms);
  const router = createRouter([...transactionRoutes(deps), ...membershipRoutes(deps), ...eventRoutes(deps), ...queryRoutes(deps), ...mediaServeRoutes(deps)], {
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
    membership: new FederatedMembership(ctx, rooms, remote, history),
    queries: new RemoteQueries(ctx, remote, deviceLists),
    media: new RemoteMedia(ctx, remote, rooms),
    history,
    presence: new PresenceSender(ctx),
    close: () => edus.close(),
  };
}
