/**
 * Reading rooms (client-server API "Getting events for a room"): a room's
 * state or one state event, its members (optionally as of a sync token and
 * filtered by membership), its joined members with profiles, the user's
 * joined rooms, and single events. Every read goes through the access
 * module's gate and rules (access/room-access.ts): members and readers of
 * world_readable rooms see current state, former members the state at their
 * departure, others get 403; single events obey history visibility and are
 * 404 when hidden or unreadable (the spec's one answer for that endpoint).
 */
import { stateKeyOf, splitStateKey, type StateMap } from '../../../core/index.js';
import type { EventRecord } from '../../../storage/types.js';
import { readableState, visibleEvents, withinHorizon } from '../../access/room-access.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../../http/errors.js';
import { clientRoute, type AuthedContext, type RouteDefinition } from '../../http/router.js';
import type { HomeserverServices } from '../../services.js';
import { RoomReader } from '../../sync/room-reader.js';
import { parsePaginationToken } from '../../sync/tokens.js';
import { roomIdParam } from '../../http/params.js';
import { eventIdParam, formatEvents, stateRecords, withReadGrant } from './common.js';
import { setOwn } from '../../own-keys.js';

const MEMBERSHIPS = new Set(['invite', 'join', 'leave', 'ban', 'knock']);

export function readRoutes(services: HomeserverServices): RouteDefinition[] {
  const { ctx: hs } = services;

  async function getState(ctx: AuthedContext, stateKey: string) {
    const roomId = roomIdParam(ctx.params.roomId);
    const format = ctx.query.get('format') ?? 'content';
    if (format !== 'content' && format !== 'event') throw invalidParam('format must be one of "content", "event"');
    const record = await withReadGrant(services, roomId, ctx.requester.userId, async (reader, grant) => {
      const id = (await readableState(reader, roomId, grant)).get(stateKeyOf(ctx.params.eventType!, stateKey));
      return id === undefined ? undefined : reader.getEvent(id);
    });
    if (!record) throw notFound('Event not found.');
    const [event] = await formatEvents(services, [record], ctx.requester);
    return format === 'event' ? event : event!.content;
  }

  /** The member events of a state map. */
  async function membersOf(reader: RoomReader, state: StateMap): Promise<EventRecord[]> {
    const memberKeys = new Map([...state].filter(([key]) => splitStateKey(key)[0] === 'm.room.member'));
    return [...(await stateRecords(reader, memberKeys)).values()];
  }

  /**
   * Member events as of `at` (a sync token, or a pagination token): the state
   * after the room's last event at or before it. Former members see no
   * further than their departure; a point in history the user may not see
   * (before they joined a "joined" room) is 403, as in Synapse.
   */
  async function membersAt(roomId: string, userId: string, at: string): Promise<EventRecord[]> {
    const token = parsePaginationToken(at, 'at');
    return withReadGrant(services, roomId, userId, async (reader, grant) => {
      const { txn } = reader;
      let last: EventRecord | undefined;
      if (token.kind === 'stream') {
        [last] = await txn.timeline.range(roomId, { dir: 'b', from: token.stream, limit: 1 });
      } else {
        [last] = await txn.timeline.topological(roomId, { dir: 'b', from: token.position, limit: 1 });
      }
      if (last && !withinHorizon(grant, last)) last = grant.horizon;
      if (!last) return [];
      if ((await visibleEvents(reader, roomId, grant.view, [last])).length === 0) {
        throw forbidden('User not allowed to view this room at this token');
      }
      return membersOf(reader, (await reader.stateAfter(last)) ?? new Map());
    });
  }

  return [
    // GET /_matrix/client/v3/rooms/{roomId}/state
    clientRoute('GET', '/rooms/{roomId}/state', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const state = await withReadGrant(services, roomId, ctx.requester.userId, async (reader, grant) =>
        stateRecords(reader, await readableState(reader, roomId, grant)),
      );
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
          : await withReadGrant(services, roomId, ctx.requester.userId, async (reader, grant) =>
              membersOf(reader, await readableState(reader, roomId, grant)),
            );
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
      // The room as it is now: members and readers of world_readable rooms only (as Synapse).
      const members = await withReadGrant(
        services,
        roomId,
        ctx.requester.userId,
        async (reader, grant) => membersOf(reader, await readableState(reader, roomId, grant)),
        { formerMembers: false },
      );
      const joined: Record<string, { display_name?: string; avatar_url?: string }> = {};
      for (const record of members) {
        if (record.event.content.membership !== 'join') continue;
        const profile: { display_name?: string; avatar_url?: string } = {};
        // A redacted join keeps no profile.
        const { displayname, avatar_url: avatarUrl } = record.redactedBy ? {} : record.event.content;
        if (typeof displayname === 'string') profile.display_name = displayname;
        if (typeof avatarUrl === 'string') profile.avatar_url = avatarUrl;
        setOwn(joined, record.event.state_key!, profile);
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
      let record: EventRecord | undefined;
      try {
        record = await withReadGrant(services, roomId, ctx.requester.userId, async (reader, grant) => {
          const found = await reader.getEvent(eventId);
          // Hidden, rejected, outlier, other-room and beyond-departure events all look the same.
          if (!found || found.roomId !== roomId || found.outlier || found.rejected || !withinHorizon(grant, found)) return undefined;
          return (await visibleEvents(reader, roomId, grant.view, [found]))[0];
        });
      } catch (error) {
        // The spec's answer for an event the user may not read is 404, whatever the reason.
        if (error instanceof MatrixError && error.status === 403) throw notFound('Event not found.');
        throw error;
      }
      if (!record) throw notFound('Event not found.');
      const [event] = await formatEvents(services, [record], ctx.requester);
      return event;
    }),
  ];
}
