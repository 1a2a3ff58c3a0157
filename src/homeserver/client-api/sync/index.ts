/**
 * Routes of the read side of rooms in the client-server API: /sync, room
 * history (/messages, /context), read receipts and markers, and typing. The
 * handlers check parameters and hand over to src/homeserver/sync, which owns
 * the logic.
 */
import type { JsonObject } from '../../../core/index.js';
import { badJson, forbidden, invalidParam } from '../../http/errors.js';
import { parseJsonParam } from '../../http/json-ingress.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import type { HomeserverServices, RouteModule } from '../../services.js';
import { storedSyncFilter } from '../../accounts/filters.js';
import { parseFilter, parseRoomEventFilterParam, SyncFilter } from '../../sync/filters.js';
import { eventContext, roomMessages } from '../../sync/messages.js';
import { limitParam } from '../../http/params.js';
import { BACKFILL_PAGE } from '../../federation/backfill.js';
import { checkThreadId, isReceiptType, setReadMarkers, type MarkerRequest } from '../../sync/receipts.js';
import { parseSyncToken } from '../../sync/tokens.js';

/** /messages and /context: 10 events unless asked. */
const MESSAGES_LIMIT = { fallback: 10 };

const PRESENCE_STATES = new Set(['online', 'offline', 'unavailable']);
/** Longest typing notification a client may ask for, in ms. */
const MAX_TYPING_TIMEOUT = 120_000;

function parseBoolean(raw: string | null, name: string): boolean {
  if (raw === null) return false;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw invalidParam(`Query parameter '${name}' must be 'true' or 'false'`);
}

function parseTimeout(raw: string | null): number {
  if (raw === null || raw === '') return 0;
  if (!/^\d{1,12}$/.test(raw)) throw invalidParam("Query parameter 'timeout' must be a non-negative integer");
  return Number(raw);
}

/** The `filter` parameter of /sync: inline JSON (starts with '{') or the ID of an uploaded filter. */
async function syncFilter(services: HomeserverServices, userId: string, raw: string | null): Promise<SyncFilter> {
  if (raw === null || raw === '') return new SyncFilter();
  if (raw.trimStart().startsWith('{')) {
    return new SyncFilter(parseFilter(parseJsonParam(raw, { maxDepth: services.ctx.config.maxJsonDepth }, 'filter')));
  }
  return storedSyncFilter(services.ctx, userId, raw);
}

export const syncRoutes: RouteModule = (services) => {
  const { ctx, sync, typing, federation } = services;

  const routes: RouteDefinition[] = [
    // GET /_matrix/client/v3/sync (spec "Syncing")
    clientRoute('GET', '/sync', 'required', async ({ query, requester, request }) => {
      const sinceRaw = query.get('since');
      let since;
      if (sinceRaw !== null && sinceRaw !== '') {
        since = parseSyncToken(sinceRaw);
        if (!since) throw invalidParam('Invalid sync token in since');
      }
      const timeout = parseTimeout(query.get('timeout'));
      const fullState = parseBoolean(query.get('full_state'), 'full_state');
      const presence = query.get('set_presence');
      if (presence !== null && !PRESENCE_STATES.has(presence)) throw invalidParam("set_presence must be 'online', 'offline' or 'unavailable'");
      const filter = await syncFilter(services, requester.userId, query.get('filter'));
      return sync.sync({
        userId: requester.userId,
        deviceId: requester.deviceId,
        since,
        timeoutMs: Math.min(timeout, ctx.config.maxSyncTimeoutMs),
        filter,
        fullState,
        signal: request.signal,
      });
    }),

    // GET /_matrix/client/v3/rooms/{roomId}/messages (spec "Getting events for a room")
    clientRoute('GET', '/rooms/{roomId}/messages', 'required', async ({ params, query, requester }) => {
      const dirRaw = query.get('dir') ?? 'f';
      if (dirRaw !== 'b' && dirRaw !== 'f') throw invalidParam("Query parameter 'dir' must be 'b' or 'f'");
      const messagesParams = {
        dir: dirRaw,
        from: query.get('from') || undefined,
        to: query.get('to') || undefined,
        limit: limitParam(query.get('limit'), MESSAGES_LIMIT),
        filter: parseRoomEventFilterParam(query.get('filter'), { maxDepth: ctx.config.maxJsonDepth }),
      } as const;
      const page = await roomMessages(sync, ctx.clock.now(), requester.userId, params.roomId, messagesParams);
      // Paging back to the oldest event held (no `end`: nothing older here): fetch older history from a server in
      // the room (as Synapse), then answer from it. A full page that ends there is no exception: without an `end`
      // the client would stop paging and never ask for what lies behind. The page was allowed above, so only
      // readers of the room cause a backfill.
      if (dirRaw !== 'b' || page.end !== undefined || messagesParams.to !== undefined) return page;
      if (!(await federation.history.hasGap(params.roomId))) return page;
      if ((await federation.history.backfill(params.roomId, Math.max(messagesParams.limit, BACKFILL_PAGE))) === 0) return page;
      return roomMessages(sync, ctx.clock.now(), requester.userId, params.roomId, messagesParams);
    }),

    // GET /_matrix/client/v3/rooms/{roomId}/context/{eventId} (spec "Getting events for a room")
    clientRoute('GET', '/rooms/{roomId}/context/{eventId}', 'required', async ({ params, query, requester }) =>
      eventContext(sync, ctx.clock.now(), requester.userId, params.roomId, params.eventId, {
        limit: limitParam(query.get('limit'), MESSAGES_LIMIT),
        filter: parseRoomEventFilterParam(query.get('filter'), { maxDepth: ctx.config.maxJsonDepth }),
      }),
    ),

    // POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId} (spec "Receipts")
    clientRoute('POST', '/rooms/{roomId}/receipt/{receiptType}/{eventId}', 'required', async ({ params, requester, json }) => {
      const { receiptType, roomId, eventId } = params;
      if (!isReceiptType(receiptType)) throw invalidParam('Receipt type must be m.read, m.read.private or m.fully_read');
      const body = await json();
      const threadId = checkThreadId(receiptType, body.thread_id);
      await setReadMarkers(ctx, requester.userId, roomId, [{ type: receiptType, eventId, threadId }]);
      return {};
    }),

    // POST /_matrix/client/v3/rooms/{roomId}/read_markers (spec "Fully read markers")
    clientRoute('POST', '/rooms/{roomId}/read_markers', 'required', async ({ params, requester, json }) => {
      const body = await json();
      const markers: MarkerRequest[] = [];
      for (const type of ['m.fully_read', 'm.read', 'm.read.private'] as const) {
        const eventId = body[type];
        if (eventId === undefined || eventId === null) continue;
        if (typeof eventId !== 'string' || eventId === '') throw badJson(`${type} must be an event ID`);
        markers.push({ type, eventId });
      }
      if (markers.length > 0) await setReadMarkers(ctx, requester.userId, params.roomId, markers);
      return {};
    }),

    // PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId} (spec "Typing notifications")
    clientRoute('PUT', '/rooms/{roomId}/typing/{userId}', 'required', async ({ params, requester, json }) => {
      if (params.userId !== requester.userId) throw forbidden("Cannot set another user's typing state");
      const body = await json();
      if (typeof body.typing !== 'boolean') throw badJson("'typing' must be a boolean");
      let timeout = 30_000;
      if (body.typing && body.timeout !== undefined) {
        if (typeof body.timeout !== 'number' || !Number.isFinite(body.timeout) || body.timeout < 0) {
          throw badJson("'timeout' must be a non-negative number of milliseconds");
        }
        timeout = Math.min(body.timeout, MAX_TYPING_TIMEOUT);
      }
      const membership = await ctx.storage.read((txn) => txn.memberships.get(params.roomId, requester.userId));
      if (membership?.membership !== 'join') throw forbidden(`User ${requester.userId} is not in room ${params.roomId}`);
      typing.set(params.roomId, requester.userId, body.typing, timeout);
      return {};
    }),
  ];
  return routes;
};
