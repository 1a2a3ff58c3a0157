/**
 * Room membership (client-server API "Room membership"): joining by ID or
 * alias (restricted rooms included), knocking, inviting, leaving, forgetting, kicking, banning and unbanning. Each
 * route checks its input and asks the room engine for the member event; the
 * engine applies the auth rules and Synapse's extra checks (unban of a user
 * who is not banned, kick of a non-member, ...). Joins count against the
 * user's rc_joins limit.
 */
import { clientRoute, type AuthedContext, type RouteDefinition } from '../../http/router.js';
import { optionalReason, requireUserId } from '../../rooms/validate.js';
import type { MembershipAction } from '../../rooms/types.js';
import type { HomeserverServices } from '../../services.js';
import { requiredString, roomIdParam } from '../../http/params.js';
import { checkServerNames, resolveRoomTarget } from './common.js';

export function membershipRoutes(services: HomeserverServices): RouteDefinition[] {
  const { rooms, limits } = services;

  /** Joins here if a local user is in the room, else through `via` servers over federation (federation/joins.ts). */
  async function join(ctx: AuthedContext, roomId: string, via: string[] = []) {
    const body = await ctx.json();
    const reason = optionalReason(body);
    limits.take('joins', ctx.requester.userId);
    await services.federation.membership.join(roomId, ctx.requester.userId, via, reason === undefined ? {} : { reason });
    return { room_id: roomId };
  }

  /** invite, kick, ban, unban: a target user in the body, an optional reason. */
  function targeted(action: Exclude<MembershipAction, 'join' | 'leave' | 'knock'>) {
    return async (ctx: AuthedContext) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const body = await ctx.json();
      const target = requireUserId(requiredString(body, 'user_id'));
      const reason = optionalReason(body);
      await rooms.updateMembership(roomId, ctx.requester.userId, target, action, { reason });
      return {};
    };
  }

  return [
    // POST /_matrix/client/v3/join/{roomIdOrAlias}
    clientRoute('POST', '/join/{roomIdOrAlias}', 'required', async (ctx) => {
      checkServerNames(ctx.query);
      const via = [...ctx.query.getAll('via'), ...ctx.query.getAll('server_name')];
      const target = await resolveRoomTarget(services, ctx.params.roomIdOrAlias);
      return join(ctx, target.roomId, [...via, ...target.servers]);
    }),
    // POST /_matrix/client/v3/knock/{roomIdOrAlias}
    clientRoute('POST', '/knock/{roomIdOrAlias}', 'required', async (ctx) => {
      checkServerNames(ctx.query);
      const via = [...ctx.query.getAll('via'), ...ctx.query.getAll('server_name')];
      const target = await resolveRoomTarget(services, ctx.params.roomIdOrAlias);
      const reason = optionalReason(await ctx.json());
      // A room this server holds with a local member takes the knock here; any other goes to a server in it.
      if (await services.federation.membership.isResident(target.roomId)) {
        await rooms.updateMembership(target.roomId, ctx.requester.userId, ctx.requester.userId, 'knock', { reason });
      } else {
        await services.federation.membership.knock(target.roomId, ctx.requester.userId, [...via, ...target.servers], reason);
      }
      return { room_id: target.roomId };
    }),
    // POST /_matrix/client/v3/rooms/{roomId}/join
    clientRoute('POST', '/rooms/{roomId}/join', 'required', (ctx) => join(ctx, roomIdParam(ctx.params.roomId))),
    // POST /_matrix/client/v3/rooms/{roomId}/invite
    clientRoute('POST', '/rooms/{roomId}/invite', 'required', targeted('invite')),
    // POST /_matrix/client/v3/rooms/{roomId}/kick
    clientRoute('POST', '/rooms/{roomId}/kick', 'required', targeted('kick')),
    // POST /_matrix/client/v3/rooms/{roomId}/ban
    clientRoute('POST', '/rooms/{roomId}/ban', 'required', targeted('ban')),
    // POST /_matrix/client/v3/rooms/{roomId}/unban
    clientRoute('POST', '/rooms/{roomId}/unban', 'required', targeted('unban')),
    // POST /_matrix/client/v3/rooms/{roomId}/leave
    clientRoute('POST', '/rooms/{roomId}/leave', 'required', async (ctx) => {
      const roomId = roomIdParam(ctx.params.roomId);
      const reason = optionalReason(await ctx.json());
      await services.federation.membership.leave(roomId, ctx.requester.userId, reason);
      return {};
    }),
    // POST /_matrix/client/v3/rooms/{roomId}/forget
    clientRoute('POST', '/rooms/{roomId}/forget', 'required', async (ctx) => {
      await rooms.forgetRoom(ctx.requester.userId, roomIdParam(ctx.params.roomId));
      return {};
    }),
  ];
}
