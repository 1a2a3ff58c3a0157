/**
 * Reading a room's DAG over federation: the pull path (server-server API
 * "Retrieving events", "Backfilling and retrieving missing events") and the
 * anti-entropy exchange of forward extremities, and Hometab's forward pages
 * (a long gap oldest first, so the asker stores one page while it fetches
 * the next). Every read asks the access
 * module first (serverMayRead: one of the server's users is joined) and
 * filters events by history visibility for servers (reads.ts).
 */
import { stateKeyOf } from '../../core/index.js';
import { badJson, forbidden, missingParam, notFound } from '../http/errors.js';
import { jsonTextResponse } from '../http/response.js';
import type { RouteDefinition } from '../http/router.js';
import { serverMayRead } from '../access/room-access.js';
import { setOwn, getOwn } from '../own-keys.js';
import { ReadCaches, RoomReader } from '../sync/room-reader.js';
import type { EventRecord, TopologicalPosition } from '../../storage/types.js';
import type { FederationDeps } from './deps.js';
import { authChainOf, pduOf, walkBack } from './reads.js';
import { eventIdList, federationRoute } from './route.js';

const MAX_BACKFILL = 100;
/**
 * Most events one get_missing_events answer carries, and the bytes of their JSON: catch-up walks a long gap in
 * pages this large (the spec leaves the bound to the server; Synapse's is 20), and the byte bound keeps a page of
 * large events under the federation transport's 4 MiB response limit.
 */
const MAX_MISSING = 1000;
const MAX_MISSING_BYTES = 3 << 20;
/** Most rooms and extremities one anti-entropy request may name. */
const MAX_AE_ROOMS = 1000;
const MAX_AE_TIPS = 100;

/** A forward page's `from`: a (depth, stream ordering) position, as `next` gave it. */
function positionOf(raw: unknown): TopologicalPosition | undefined {
  if (raw === undefined) return undefined;
  const { depth, stream_ordering: streamOrdering } = (raw ?? {}) as Record<string, unknown>;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !Number.isSafeInteger(depth) || !Number.isSafeInteger(streamOrdering)) {
    throw badJson('from must be {depth, stream_ordering}, integers');
  }
  return { depth: depth as number, streamOrdering: streamOrdering as number };
}

export function eventRoutes({ ctx, reads, rooms }: FederationDeps): RouteDefinition[] {
  const answer = (pdus: unknown[]) => ({ origin: ctx.serverName, origin_server_ts: ctx.clock.now(), pdus });
  const limitOf = (raw: string | number | null | undefined, fallback: number, max: number) => {
    const n = typeof raw === 'number' ? raw : raw == null ? fallback : Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw badJson('limit must be a non-negative integer');
    return Math.min(n, max);
  };

  async function stateAt(roomId: string, eventId: string | null, origin: string) {
    if (!eventId) throw missingParam('Missing event_id');
    return reads.inRoom(roomId, origin, async (reader) => {
      const record = await reader.getEvent(eventId);
      if (!record || record.roomId !== roomId) throw notFound(`Event ${eventId} not found`);
      if ((await reads.visible(reader, origin, [record])).length === 0) throw forbidden('The event is not visible to your server');
      const state = await reader.stateBefore(record);
      if (!state) throw notFound(`No state recorded at ${eventId}`);
      const ids = [...state.values()];
      const chain = await authChainOf(reader.txn, ids);
      return { ids, chain, records: await reader.getEvents(ids) };
    });
  }

  return [
    // GET /_matrix/federation/v1/event/{eventId} (spec "Retrieving events")
    federationRoute('GET', '/v1/event/{eventId}', async ({ params, origin }) => {
      const record = await ctx.storage.read((t) => t.events.get(params.eventId!));
      if (!record || record.rejected) throw notFound('Event not found');
      const visible = await reads.inRoom(record.roomId, origin, (reader) => reads.visible(reader, origin, [record]));
      if (visible.length === 0) throw notFound('Event not found');
      return answer([pduOf(record)]);
    }),

    // GET /_matrix/federation/v1/state_ids/{roomId}?event_id= (spec "Retrieving events")
    federationRoute('GET', '/v1/state_ids/{roomId}', async ({ params, query, origin }) => {
      const { ids, chain } = await stateAt(params.roomId!, query.get('event_id'), origin);
      return { pdu_ids: ids, auth_chain_ids: chain.map((r) => r.eventId) };
    }),

    // GET /_matrix/federation/v1/state/{roomId}?event_id= (spec "Retrieving events")
    federationRoute('GET', '/v1/state/{roomId}', async ({ params, query, origin }) => {
      const { ids, chain, records } = await stateAt(params.roomId!, query.get('event_id'), origin);
      return { pdus: ids.map((id) => records.get(id)).filter((r) => r !== undefined).map(pduOf), auth_chain: chain.map(pduOf) };
    }),

    // GET /_matrix/federation/v1/event_auth/{roomId}/{eventId} (spec "Retrieving events")
    federationRoute('GET', '/v1/event_auth/{roomId}/{eventId}', async ({ params, origin }) => {
      return reads.inRoom(params.roomId!, origin, async (reader) => {
        const record = await reader.getEvent(params.eventId!);
        if (!record || record.roomId !== params.roomId) throw notFound('Event not found');
        return { auth_chain: (await authChainOf(reader.txn, [record.eventId])).map(pduOf) };
      });
    }),

    // GET /_matrix/federation/v1/backfill/{roomId}?v=&limit= (spec "Backfilling")
    federationRoute('GET', '/v1/backfill/{roomId}', async ({ params, query, origin }) => {
      const from = query.getAll('v');
      if (from.length === 0) throw missingParam('Missing v');
      if (from.length > MAX_AE_TIPS) throw badJson(`At most ${MAX_AE_TIPS} v parameters`);
      const limit = limitOf(query.get('limit'), 10, MAX_BACKFILL);
      return reads.inRoom(params.roomId!, origin, async (reader) => {
        const walked = await walkBack(reader.txn, params.roomId!, from, { limit, includeStart: true });
        return answer((await reads.visible(reader, origin, walked)).map(pduOf));
      });
    }),

    // POST /_matrix/federation/v1/get_missing_events/{roomId} (spec "Retrieving missing events")
    federationRoute('POST', '/v1/get_missing_events/{roomId}', async ({ params, json, origin }) => {
      const body = await json();
      const earliest = eventIdList(body, 'earliest_events', MAX_AE_TIPS);
      const latest = eventIdList(body, 'latest_events', MAX_AE_TIPS);
      const limit = limitOf(body.limit as number | undefined, 10, MAX_MISSING);
      const minDepth = typeof body.min_depth === 'number' ? body.min_depth : 0;
      return reads.inRoom(params.roomId!, origin, async (reader) => {
        // The events between: from the parents of `latest` back to (not including) `earliest`.
        const walked = await walkBack(reader.txn, params.roomId!, latest, { limit, includeStart: false, stopAt: new Set(earliest), minDepth });
        const visible = await reads.visible(reader, origin, walked);
        // Walked newest first: a page cut by size keeps the events nearest `latest`, and the asker goes on from there.
        const events: unknown[] = [];
        let bytes = 0;
        for (const record of visible) {
          const pdu = pduOf(record);
          bytes += JSON.stringify(pdu).length;
          if (bytes > MAX_MISSING_BYTES && events.length > 0) break;
          events.push({ pdu, depth: record.depth });
        }
        return { events: (events as { pdu: unknown; depth: number }[]).sort((a, b) => a.depth - b.depth).map((e) => e.pdu) };
      });
    }),

    // POST /_matrix/federation/unstable/org.hometab/forward/{roomId} (Hometab catch-up: a long gap oldest first)
    // The room's timeline above the lowest of `earliest_events` held here, in (depth, stream ordering) order, from
    // `from` (the `next` of the page before) on; `next` is absent at the end. Events of other branches below that
    // depth are not in it: the asker's backward walk (get_missing_events) finds what is still missing.
    federationRoute('POST', '/unstable/org.hometab/forward/{roomId}', async ({ params, json, origin }) => {
      const body = await json();
      const earliest = eventIdList(body, 'earliest_events', MAX_AE_TIPS);
      const limit = limitOf(body.limit as number | undefined, 100, MAX_MISSING);
      const from = positionOf(body.from);
      return reads.inRoom(params.roomId!, origin, async (reader) => {
        let start = from;
        if (!start) {
          const known = [...(await reader.txn.events.getMany(earliest)).values()].filter((r) => r.roomId === params.roomId);
          if (known.length === 0 || limit === 0) return { events: [] };
          start = { depth: Math.min(...known.map((r) => r.depth)), streamOrdering: Number.MAX_SAFE_INTEGER };
        }
        const window = await reader.txn.timeline.topological(params.roomId!, { dir: 'f', from: start, limit });
        const visible = new Set(await reads.visible(reader, origin, window));
        // Each event is stringified once, for the byte bound, and the answer is joined from those texts: a page of
        // 1,000 events is not stringified a second time as a whole.
        const events: string[] = [];
        let bytes = 0;
        let last: EventRecord | undefined;
        for (const record of window) {
          if (visible.has(record)) {
            const text = JSON.stringify(pduOf(record));
            bytes += text.length;
            if (bytes > MAX_MISSING_BYTES && events.length > 0) break;
            events.push(text);
          }
          last = record;
        }
        const more = window.length === limit || events.length < visible.size;
        const next = more && last ? `,"next":${JSON.stringify({ depth: last.depth, stream_ordering: last.streamOrdering })}` : '';
        return jsonTextResponse(`{"events":[${events.join(',')}]${next}}`);
      });
    }),

    // POST /_matrix/federation/unstable/org.hometab/extremities (Hometab anti-entropy: compare forward extremities)
    federationRoute('POST', '/unstable/org.hometab/extremities', async ({ json, origin }) => {
      const body = await json();
      const asked = body.rooms;
      if (asked === null || typeof asked !== 'object' || Array.isArray(asked)) throw badJson('rooms must be an object');
      const roomIds = Object.keys(asked);
      if (roomIds.length > MAX_AE_ROOMS) throw badJson(`At most ${MAX_AE_ROOMS} rooms`);
      const out: Record<string, string[]> = {};
      const caches = new ReadCaches();
      for (const roomId of roomIds) {
        const theirs = getOwn(asked as Record<string, unknown>, roomId);
        if (!Array.isArray(theirs) || theirs.length > MAX_AE_TIPS) continue;
        const may = await ctx.storage.read((t) => serverMayRead(new RoomReader(t, caches, ctx.clock.now()), roomId, origin));
        if (!may) continue;
        const state = await rooms.currentState(roomId);
        if (!state?.has(stateKeyOf('m.room.create', ''))) continue;
        setOwn(out, roomId, await ctx.storage.read((t) => t.dag.extremities(roomId)));
      }
      return { rooms: out };
    }),
  ];
}
