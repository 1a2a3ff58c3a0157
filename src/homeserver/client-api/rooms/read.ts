/**
 * Reading rooms (client-server API "Getting events for a room"): a room's
 * state or one state event, its members (optionally as of a sync token and
 * filtered by membership), its joined members with profiles, the user's
 * joined rooms, and single events. What a user may read follows Synapse:
 * members and world-readable rooms show current state, departed members see
 * the state at their departure, others get 403; single events obey history
 * visibility and are 404 when hidden.
 */
import { stateKeyOf, splitStateKey } from '../../../core/index.js';
import type { EventRecord } from '../../../storage/types.js';
import { forbidden, invalidParam, notFound } from '../../http/errors.js';
import { clientRoute, type AuthedContext, type RouteDefinition } from '../../http/router.js';
import type { HomeserverServices } from '../../services.js';
import { compareTopo, gapAfter, parsePaginationToken } from '../../sync/tokens.js';
import { roomIdParam } from '../../http/params.js';
import { eventIdParam, formatEvents, readableState, stateRecordsAfter } from './common.js';
import { setOwn } from '../../own-keys.js';

const MEMBERSHIPS = new Set(['invite', 'join', 'leave', 'ban', 'knock']);

export function readRoutes(services: HomeserverServices): RouteDefinition[] {
  const { rooms, ctx: hs } = services;

  async function getState(ctx: AuthedContext, stateKey: string) {
    const roomId = roomIdParam(ctx.params.roomId);
    const format = ctx.query.get('format') ?? 'content';
    if (format !== 'content' && format !== 'event') throw invalidParam('format must be one of "content", "event"');
    const state = await readableState(services, roomId, ctx.requester.userId);
    const record = state.get(stateKeyOf(ctx.params.eventType!, stateKey));
    if (!record) throw notFound('Event not found.');
    const [event] = await formatEvents(services, [record], ctx.requester);
    return format === 'event' ? event : event!.content;
  }

  /**
   * Member events as of `at` (a sync token, or a pagination token): the state
   * after the room's last event at or before it. Departed members see no
   * further than their departure.
   */
  async function membersAt(roomId: string, userId: string, at: string): Promise<EventRecord[]> {
    const token = parsePaginationToken(at, 'at');
    const current = await readableState(services, roomId, userId);
    const own = current.get(stateKeyOf('m.room.member', userId));
    const departedAt = (await rooms.membership(roomId, userId)) === 'join' ? undefined : own;
    return hs.storage.read(async (txn) => {
      let last: EventRecord | undefined;
      if (token.kind === 'stream') {
        const limit = departedAt?.streamOrdering !== undefined ? Math.min(token.stream, departedAt.streamOrdering) : token.stream;
        [last] = await txn.timeline.range(roomId, { dir: 'b', from: limit, limit: 1 });
      } else {
        [last] = await txn.timeline.topological(roomId, { dir: 'b', from: token.position, limit: 1 });
        if (last && departedAt && compareTopo(gapAfter(last), gapAfter(departedAt)) > 0) last = departedAt;
      }
      if (!last) return [];
      const state = await stateRecordsAfter(txn, last.eventId);
      return [...state.values()].filter((r) => r.event.type === 'm.room.member');
    });
  }

  return [
    // GET /_matrix/client/v3/rooms/{roomId}/state
    clientRoute('GET', '/rooms/{roomId}/state', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const state = await readableState(services, roomId, ctx.requester.userId);
      return formatEvents(services, [...state.values()], ctx.requester);
    }),
    // GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    clientRoute('GET', '/rooms/{roomId}/state/{eventType}/{stateKey}', 'required', (ctx) => getState(ctx, ctx.params.stateKey!)),
    // GET /_matrix/client/v3/rooms/{roomId}/state/{eventType} (empty state key)
    clientRoute('GET', '/rooms/{roomId}/state/{eventType}', 'required', (ctx) => getState(ctx, '')),
    // GET /_matrix/client/v3/rooms/{roomId}/members
    clientRoute('GET', '/rooms/{roomId}/members', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const membership = ctx.query.get('membership');
      const notMembership = ctx.query.get('not_membership');
      for (const value of [membership, notMembership]) {
        if (value !== null && !MEMBERSHIPS.has(value)) throw invalidParam(`Invalid membership filter: ${value}`);
      }
      const at = ctx.query.get('at');
      const members =
        at !== null
          ? await membersAt(roomId, ctx.requester.userId, at)
          : [...(await readableState(services, roomId, ctx.requester.userId)).values()].filter((r) => r.event.type === 'm.room.member');
      const chunk = members.filter((record) => {
        // membership survives redaction, so the stored content is the truth.
        const value = record.event.content.membership;
        if (membership !== null && value !== membership) return false;
        if (notMembership !== null && value === notMembership) return false;
        return true;
      });
      return { chunk: await formatEvents(services, chunk, ctx.requester) };
    }),
    // GET /_matrix/client/v3/rooms/{roomId}/joined_members
    clientRoute('GET', '/rooms/{roomId}/joined_members', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const state = await rooms.currentState(roomId);
      const own = state?.get(stateKeyOf('m.room.member', ctx.requester.userId));
      const worldReadable = state?.get(stateKeyOf('m.room.history_visibility', ''))?.pdu.content.history_visibility === 'world_readable';
      if (!state || (own?.pdu.content.membership !== 'join' && !worldReadable)) {
        throw forbidden(`User ${ctx.requester.userId} not in room ${roomId}`);
      }
      const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
      for (const [key, entry] of state) {
        if (entry.pdu.type !== 'm.room.member' || entry.pdu.content.membership !== 'join') continue;
        const profile: { display_name?: string; avatar_url?: string } = {};
        const { displayname, avatar_url: avatarUrl } = entry.pdu.content;
        if (typeof displayname === 'string') profile.display_name = displayname;
        if (typeof avatarUrl === 'string') profile.avatar_url = avatarUrl;
        setOwn(joined, splitStateKey(key)[1], profile);
      }
      return { joined };
    }),
    // GET /_matrix/client/v3/joined_rooms
    clientRoute('GET', '/joined_rooms', 'required', async (ctx) => {
      const records = await hs.storage.read((txn) => txn.memberships.forUser(ctx.requester.userId, 'join'));
      return { joined_rooms: records.map((r) => r.roomId) };
    }),
    // GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
    clientRoute('GET', '/rooms/{roomId}/event/{eventId}', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const eventId = eventIdParam(ctx.params.eventId);
      const record = await hs.storage.read((txn) => txn.events.get(eventId));
      // Hidden, rejected, outlier and other-room events all look the same: not found (as the spec asks).
      if (!record || record.roomId !== roomId || record.outlier || record.rejected) throw notFound('Event not found.');
      if (!(await rooms.canSeeEvent(ctx.requester.userId, record))) throw notFound('Event not found.');
      const [event] = await formatEvents(services, [record], ctx.requester);
      return event;
    }),
  ];
}
