/**
 * Room aliases and the public room directory (client-server API "Room
 * aliases" and "Listing rooms"): creating, resolving and deleting local
 * aliases, a room's alias list, publishing a room, and /publicRooms with
 * paging and a search term. Who may change what follows Synapse: alias
 * creators or room moderators (those who may send m.room.canonical_alias).
 */
import { powerLevelOf, requiredPowerLevel, stateKeyOf } from '../../../core/index.js';
import type { StateEntry } from '../../rooms/types.js';
import { badJson, forbidden, invalidParam, MatrixError, notFound } from '../../http/errors.js';
import { clientRoute, type RouteContext, type RouteDefinition } from '../../http/router.js';
import type { HomeserverServices } from '../../services.js';
import { aliasParam, withReadGrant } from './common.js';
import { isRoomId, requiredString, roomIdParam } from '../../http/params.js';

type State = ReadonlyMap<string, StateEntry>;

const contentAt = (state: State, type: string) => state.get(stateKeyOf(type, ''))?.pdu.content ?? {};

/** Joined and allowed to send m.room.canonical_alias: Synapse's test for editing a room's directory entries. */
function canChangeRoomList(state: State, version: string, userId: string): boolean {
  if (state.get(stateKeyOf('m.room.member', userId))?.pdu.content.membership !== 'join') return false;
  const powerLevels = state.get(stateKeyOf('m.room.power_levels', ''))?.pdu;
  const create = state.get(stateKeyOf('m.room.create', ''))?.pdu;
  const needed = requiredPowerLevel({ type: 'm.room.canonical_alias', state_key: '' }, powerLevels);
  return powerLevelOf(userId, powerLevels, create, version) >= needed;
}

/** A public room directory entry ("PublishedRoomsChunk"). */
export function roomSummary(roomId: string, state: State): Record<string, unknown> {
  const entry: Record<string, unknown> = { room_id: roomId };
  let joined = 0;
  for (const { pdu } of state.values()) if (pdu.type === 'm.room.member' && pdu.content.membership === 'join') joined++;
  entry.num_joined_members = joined;
  const name = contentAt(state, 'm.room.name').name;
  if (typeof name === 'string' && name) entry.name = name;
  const topic = contentAt(state, 'm.room.topic').topic;
  if (typeof topic === 'string' && topic) entry.topic = topic;
  const alias = contentAt(state, 'm.room.canonical_alias').alias;
  if (typeof alias === 'string') entry.canonical_alias = alias;
  const avatar = contentAt(state, 'm.room.avatar').url;
  if (typeof avatar === 'string') entry.avatar_url = avatar;
  const joinRule = contentAt(state, 'm.room.join_rules').join_rule;
  if (typeof joinRule === 'string') entry.join_rule = joinRule;
  const roomType = contentAt(state, 'm.room.create').type;
  if (typeof roomType === 'string') entry.room_type = roomType;
  entry.world_readable = contentAt(state, 'm.room.history_visibility').history_visibility === 'world_readable';
  entry.guest_can_join = contentAt(state, 'm.room.guest_access').guest_access === 'can_join';
  return entry;
}

/** Paging tokens of /publicRooms: an offset into the sorted list. */
const batchToken = (offset: number) => `p${offset}`;
function parseBatchToken(token: unknown): number {
  if (token === undefined || token === null) return 0;
  const match = typeof token === 'string' ? /^p(\d+)$/.exec(token) : null;
  if (!match) throw invalidParam(`Invalid 'since' token: ${String(token)}`);
  return Number(match[1]);
}

export function directoryRoutes(services: HomeserverServices): RouteDefinition[] {
  const { rooms, ctx: hs } = services;

  async function publicRooms(options: { limit?: number; since?: unknown; searchTerm?: string; server?: string | null }) {
    // Other servers' directories arrive with federation; until then they list nothing.
    if (options.server && options.server !== hs.serverName) return { chunk: [], total_room_count_estimate: 0 };
    const roomIds = await hs.storage.read((txn) => txn.directory.list());
    const entries: Record<string, unknown>[] = [];
    for (const roomId of roomIds) {
      const state = await rooms.currentState(roomId);
      if (state) entries.push(roomSummary(roomId, state));
    }
    const term = options.searchTerm?.toLowerCase();
    const matching = term
      ? entries.filter((e) => ['name', 'topic', 'canonical_alias'].some((k) => typeof e[k] === 'string' && (e[k] as string).toLowerCase().includes(term)))
      : entries;
    matching.sort(
      (a, b) => (b.num_joined_members as number) - (a.num_joined_members as number) || String(a.room_id).localeCompare(String(b.room_id)),
    );
    const start = parseBatchToken(options.since);
    const end = options.limit ? start + options.limit : matching.length;
    const out: Record<string, unknown> = { chunk: matching.slice(start, end), total_room_count_estimate: matching.length };
    if (end < matching.length) out.next_batch = batchToken(end);
    if (start > 0) out.prev_batch = batchToken(Math.max(0, start - (options.limit ?? start)));
    return out;
  }

  function limitOf(value: unknown): number | undefined {
    if (value === undefined || value === null) return undefined;
    const limit = typeof value === 'string' ? Number(value) : value;
    if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) throw invalidParam("'limit' must be a non-negative integer");
    return limit === 0 ? undefined : limit;
  }

  async function aliasServers(roomId: string): Promise<string[]> {
    const servers = new Set([hs.serverName]);
    for (const { pdu } of (await rooms.currentState(roomId))?.values() ?? []) {
      if (pdu.type === 'm.room.member' && pdu.content.membership === 'join' && typeof pdu.state_key === 'string') {
        servers.add(pdu.state_key.slice(pdu.state_key.indexOf(':') + 1));
      }
    }
    return [...servers];
  }

  return [
    // GET /_matrix/client/v3/directory/room/{roomAlias}
    clientRoute('GET', '/directory/room/{roomAlias}', 'none', async (ctx) => {
      const { alias, server } = aliasParam(ctx.params.roomAlias);
      const record = await hs.storage.read((txn) => txn.aliases.get(alias));
      if (!record && server !== hs.serverName) {
        // Another server's alias: its server answers (query/directory).
        const remote = await services.federation.queries.directory(alias, server);
        return { room_id: remote.roomId, servers: remote.servers };
      }
      if (!record) throw notFound(`Room alias ${alias} not found`);
      return { room_id: record.roomId, servers: await aliasServers(record.roomId) };
    }),
    // PUT /_matrix/client/v3/directory/room/{roomAlias}
    clientRoute('PUT', '/directory/room/{roomAlias}', 'required', async (ctx) => {
      const parsed = aliasParam(ctx.params.roomAlias);
      if (parsed.server !== hs.serverName) throw invalidParam('Room alias must be local');
      const body = await ctx.json();
      const roomId = requiredString(body, 'room_id');
      if (!isRoomId(roomId)) throw invalidParam(`Invalid room ID: ${roomId}`);
      if ((await rooms.membership(roomId, ctx.requester.userId)) !== 'join') {
        throw forbidden('You must be in the room to create an alias for it');
      }
      await hs.storage.write(async (txn) => {
        if (await txn.aliases.get(parsed.alias)) throw new MatrixError(409, 'M_UNKNOWN', `Room alias ${parsed.alias} already exists`);
        await txn.aliases.add({ alias: parsed.alias, roomId, creator: ctx.requester.userId });
      });
      return {};
    }),
    // DELETE /_matrix/client/v3/directory/room/{roomAlias}
    clientRoute('DELETE', '/directory/room/{roomAlias}', 'required', async (ctx) => {
      const parsed = aliasParam(ctx.params.roomAlias);
      if (parsed.server !== hs.serverName) throw invalidParam('Room alias must be local');
      const userId = ctx.requester.userId;
      const record = await hs.storage.read((txn) => txn.aliases.get(parsed.alias));
      if (!record) throw notFound('Unknown room alias');
      const state = await rooms.currentState(record.roomId);
      const version = await rooms.roomVersion(record.roomId);
      const allowed = record.creator === userId || (state !== undefined && version !== undefined && canChangeRoomList(state, version, userId));
      if (!allowed) throw forbidden("You don't have permission to delete the alias.");
      await hs.storage.write((txn) => txn.aliases.delete(parsed.alias));
      await dropFromCanonicalAlias(services, record.roomId, userId, parsed.alias);
      return {};
    }),
    // GET /_matrix/client/v3/rooms/{roomId}/aliases
    clientRoute('GET', '/rooms/{roomId}/aliases', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      // Members and readers of world_readable rooms, as Synapse (former members are not asked about aliases).
      const aliases = await withReadGrant(services, roomId, ctx.requester.userId, (reader) => reader.txn.aliases.forRoom(roomId), {
        formerMembers: false,
      });
      return { aliases: aliases.map((a) => a.alias) };
    }),
    // GET /_matrix/client/v3/directory/list/room/{roomId}
    clientRoute('GET', '/directory/list/room/{roomId}', 'none', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      if ((await rooms.roomVersion(roomId)) === undefined) throw notFound('Unknown room');
      const isPublic = await hs.storage.read((txn) => txn.directory.isPublic(roomId));
      return { visibility: isPublic ? 'public' : 'private' };
    }),
    // PUT /_matrix/client/v3/directory/list/room/{roomId}
    clientRoute('PUT', '/directory/list/room/{roomId}', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const body = await ctx.json();
      const visibility = body.visibility ?? 'public';
      if (typeof visibility !== 'string') throw badJson("'visibility' must be a string");
      if (visibility !== 'public' && visibility !== 'private') throw invalidParam('Invalid visibility setting');
      const state = await rooms.currentState(roomId);
      const version = await rooms.roomVersion(roomId);
      if (!state || version === undefined) throw notFound('Unknown room');
      if (!canChangeRoomList(state, version, ctx.requester.userId)) {
        throw forbidden('This server requires you to be a moderator in the room to edit its room list entry');
      }
      await hs.storage.write((txn) => txn.directory.setPublic(roomId, visibility === 'public'));
      return {};
    }),
    // GET /_matrix/client/v3/publicRooms
    clientRoute('GET', '/publicRooms', 'optional', async (ctx: RouteContext) =>
      publicRooms({ limit: limitOf(ctx.query.get('limit') ?? undefined), since: ctx.query.get('since') ?? undefined, server: ctx.query.get('server') }),
    ),
    // POST /_matrix/client/v3/publicRooms
    clientRoute('POST', '/publicRooms', 'required', async (ctx) => {
      const body = await ctx.json();
      const filter = body.filter;
      if (filter !== undefined && filter !== null && (typeof filter !== 'object' || Array.isArray(filter))) throw badJson("'filter' must be an object");
      const term = (filter as Record<string, unknown> | undefined)?.generic_search_term;
      if (term !== undefined && term !== null && typeof term !== 'string') throw badJson("'generic_search_term' must be a string");
      if (body.since !== undefined && body.since !== null && typeof body.since !== 'string') throw badJson("'since' must be a string");
      return publicRooms({
        limit: limitOf(body.limit),
        since: body.since ?? undefined,
        searchTerm: (term as string | null | undefined) ?? undefined,
        server: ctx.query.get('server'),
      });
    }),
  ];
}

/** After an alias is deleted, a canonical alias event naming it is updated (as Synapse does). */
async function dropFromCanonicalAlias(services: HomeserverServices, roomId: string, userId: string, alias: string): Promise<void> {
  const current = await services.rooms.currentStateEvent(roomId, 'm.room.canonical_alias', '');
  if (!current) return;
  const content = { ...current.content };
  let changed = false;
  if (content.alias === alias) {
    delete content.alias;
    changed = true;
  }
  if (Array.isArray(content.alt_aliases) && content.alt_aliases.includes(alias)) {
    const rest = content.alt_aliases.filter((a) => a !== alias);
    if (rest.length) content.alt_aliases = rest;
    else delete content.alt_aliases;
    changed = true;
  }
  if (!changed) return;
  try {
    await services.rooms.sendEvent(roomId, userId, { type: 'm.room.canonical_alias', stateKey: '', content });
  } catch (error) {
    // The alias is gone either way; a user without the power to edit the event leaves it stale, as in Synapse.
    services.ctx.log.warn(`could not update m.room.canonical_alias of ${roomId} after deleting ${alias}`, error);
  }
}
