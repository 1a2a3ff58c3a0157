/**
 * The composition of one homeserver: given storage, a signing key and a
 * clock, builds the room engine and the other services, assembles the
 * client-server API's routes and exposes them as one
 * `(Request) => Promise<Response>` handler. Platform specifics (which storage,
 * where the key comes from, HTTP or in-process) are the caller's: `app/` in
 * browsers, `node/` in Node.
 */
import type { Signer } from '../core/index.js';
import type { Storage } from '../storage/types.js';
import { DEFAULT_CONFIG, type Clock, type HomeserverContext, type HomeserverSettings, type Logger } from './context.js';
import { createRouter, type ConnectionInfo, type Requester, type RouteSummary } from './http/router.js';
import { RateLimiters } from './limits/rate-limits.js';
import { unknownToken } from './http/errors.js';
import type { HomeserverServices, RouteModule } from './services.js';
import { createRoomEngine } from './rooms/engine.js';
import { TokenCache } from './accounts/token-cache.js';
import { TypingTracker } from './sync/typing.js';
import { PresenceTracker } from './accounts/presence.js';
import { SyncService } from './sync/sync.js';
import { ReadCaches } from './sync/room-reader.js';
import { accountsRoutes } from './client-api/accounts/index.js';
import { roomsRoutes } from './client-api/rooms/index.js';
import { syncRoutes } from './client-api/sync/index.js';
import { e2eeRoutes } from './client-api/e2ee/index.js';
import { mediaRoutes } from './client-api/media/index.js';
import { createFederation } from './federation/index.js';
import { RemoteServers } from './federation/remote.js';
import type { ReplicationPort } from './federation/types.js';

export interface HomeserverOptions {
  storage: Storage;
  /** The server's signing key; its serverName is the homeserver's name. */
  signer: Signer;
  /** @default Date */
  clock?: Clock;
  /** Overrides of DEFAULT_CONFIG; `rateLimits` entries override one by one. */
  config?: HomeserverSettings;
  /** @default console */
  log?: Logger;
  /** @default crypto.getRandomValues */
  randomBytes?: (length: number) => Uint8Array;
}

export interface Homeserver {
  readonly serverName: string;
  /**
   * Answers one client-server API request. `connection` is what the transport knows of the client
   * (the Node adapter passes the socket's address); in process it is absent.
   */
  handleClient(request: Request, connection?: ConnectionInfo): Promise<Response>;
  /**
   * Answers one server-server API request. `origin` is the remote server the transport authenticated
   * (over libp2p the Noise-verified peer); X-Matrix headers are never read.
   */
  handleFederation(request: Request, origin: string): Promise<Response>;
  /** The federation API's route table. */
  readonly federationRoutes: readonly RouteSummary[];
  /** What the replication layer (src/p2p) drives: outbound client, received PDUs, rooms, missing parents. */
  readonly replication: ReplicationPort;
  /** The client-server API's route table. */
  readonly clientRoutes: readonly RouteSummary[];
  /** Stops background work (long-polls, timers); does not close the storage, which the caller owns. */
  close(): Promise<void>;
}

const ROUTE_MODULES: RouteModule[] = [accountsRoutes, roomsRoutes, syncRoutes, e2eeRoutes, mediaRoutes];

export function createHomeserver(options: HomeserverOptions): Homeserver {
  const ctx: HomeserverContext = {
    serverName: options.signer.serverName,
    storage: options.storage,
    signer: options.signer,
    clock: options.clock ?? { now: () => Date.now() },
    config: { ...DEFAULT_CONFIG, ...options.config, rateLimits: { ...DEFAULT_CONFIG.rateLimits, ...options.config?.rateLimits } },
    log: options.log ?? console,
    randomBytes: options.randomBytes ?? ((n) => crypto.getRandomValues(new Uint8Array(n))),
  };
  const typing = new TypingTracker();
  const remote = new RemoteServers(ctx);
  // The engine asks the invitee's server to countersign remote invites (federation/joins.ts).
  const caches = new ReadCaches();
  const rooms = createRoomEngine(ctx, { caches, remoteInvite: (version, event, state) => federation.membership.invite(version, event, state) });
  const presence = new PresenceTracker(ctx.clock);
  const federation = createFederation(ctx, rooms, typing, remote, presence);
  const sync = new SyncService(ctx, typing, { caches, transactionIdFor: (eventId, userId, deviceId) => rooms.transactionIdFor(eventId, userId, deviceId) });
  const limits = new RateLimiters(ctx.config.rateLimits, ctx.clock);
  const services: HomeserverServices = { ctx, rooms, typing, sync, limits, federation, presence };

  const tokens = new TokenCache(ctx.storage);
  async function authenticate(accessToken: string): Promise<Requester> {
    const record = await tokens.get(accessToken);
    if (!record) throw unknownToken();
    return { userId: record.userId, deviceId: record.deviceId, accessToken };
  }

  const router = createRouter(
    ROUTE_MODULES.flatMap((module) => module(services)),
    {
      authenticate,
      maxBodyBytes: ctx.config.maxBodyBytes,
      jsonLimits: { maxDepth: ctx.config.maxJsonDepth },
      onError: (e) => ctx.log.error('unhandled error in request', e),
    },
  );

  return {
    serverName: ctx.serverName,
    handleClient: (request, connection) => router.handle(request, connection),
    clientRoutes: router.routes,
    handleFederation: (request, origin) => federation.handle(request, origin),
    federationRoutes: federation.routes,
    replication: federation.replication,
    async close() {
      federation.close();
      tokens.close();
      sync.close();
      typing.close();
    },
  };
}
