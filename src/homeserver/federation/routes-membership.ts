/**
 * Membership over federation, the resident server's side (server-server API
 * "Joining rooms" make_join/send_join v2, "Leaving rooms" make_leave /
 * send_leave v2, "Knocking upon a room" make_knock/send_knock v1, "Inviting
 * to a room" invite v2). A join or leave a remote
 * server signs goes through the same receive checks as any PDU; once
 * accepted, this server forwards it to the other servers in the room (the
 * joiner does not know them yet) and answers a join with the state before it
 * and its auth chain.
 */
import { serverNameOf, signEvent, stateKeyOf, SUPPORTED_ROOM_VERSIONS, type PDU } from '../../core/index.js';
import { INVITE_STATE_TYPES, strippedState } from '../rooms/create-room.js';
import type { HomeserverContext } from '../context.js';
import { badJson, forbidden, MatrixError, notFound } from '../http/errors.js';
import type { RouteDefinition } from '../http/router.js';
import { federationForm } from '../rooms/persist.js';
import { checkFormat, verifySigned } from '../rooms/receive.js';
import { serverKeys } from '../rooms/server-keys.js';
import type { FederationDeps } from './deps.js';
import { joinedServers } from './edus.js';
import { authChainOf, pduOf } from './reads.js';
import { federationRoute } from './route.js';

const incompatible = (version: string) =>
  new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Your server does not support room version ${version}`, { room_version: version });

export function membershipRoutes({ ctx, rooms }: FederationDeps): RouteDefinition[] {
  const keyOf = serverKeys(ctx.signer);

  /** Checks a member event a remote server signed for one of its users; returns it in wire form. */
  function checkMemberEvent(body: unknown, version: string, roomId: string, eventId: string, origin: string, membership: string): PDU {
    const formed = checkFormat(body, version);
    if ('failure' in formed) throw badJson(formed.failure);
    const event = formed.wire;
    if (formed.eventId !== eventId) throw badJson(`The event's ID is ${formed.eventId}, not ${eventId}`);
    if (event.type !== 'm.room.member' || event.content.membership !== membership) throw badJson(`Not a ${membership} event`);
    if (event.room_id !== roomId) throw badJson('The event is of another room');
    if (event.state_key !== event.sender || serverNameOf(event.sender) !== origin) throw forbidden(`${origin} may only sign ${membership}s of its own users`);
    return event;
  }

  /** The member event a remote server sends to a room here (send_join, send_knock, send_leave), checked against the room's version. */
  async function sentMemberEvent(params: Record<string, string | undefined>, body: unknown, origin: string, membership: 'join' | 'knock' | 'leave'): Promise<{ roomId: string; version: string; event: PDU }> {
    const roomId = params.roomId!;
    const version = await rooms.roomVersion(roomId);
    if (!version) throw notFound(`Unknown room ${roomId}`);
    return { roomId, version, event: checkMemberEvent(body, version, roomId, params.eventId!, origin, membership) };
  }

  async function accept(event: PDU, origin: string, roomId: string): Promise<void> {
    const [outcome] = await rooms.receivePdus([event], origin);
    if (outcome!.outcome !== 'accepted' && outcome!.outcome !== 'duplicate') {
      throw forbidden(`The event was not accepted: ${outcome!.outcome}${outcome!.reason ? ` (${outcome!.reason})` : ''}`);
    }
    await forward(ctx, roomId, event, origin);
  }

  async function template(roomId: string, userId: string, origin: string, membership: 'join' | 'leave' | 'knock') {
    if (serverNameOf(userId) !== origin) throw forbidden(`${origin} may only ask for its own users`);
    return rooms.membershipTemplate(roomId, userId, membership);
  }

  return [
    // GET /_matrix/federation/v1/make_join/{roomId}/{userId} (spec "Joining rooms")
    federationRoute('GET', '/v1/make_join/{roomId}/{userId}', async ({ params, query, origin }) => {
      const version = await rooms.roomVersion(params.roomId!);
      if (!version) throw notFound(`Unknown room ${params.roomId}`);
      const supported = query.getAll('ver');
      if (!supported.includes(version)) throw incompatible(version);
      const made = await template(params.roomId!, params.userId!, origin, 'join');
      return { room_version: made.roomVersion, event: made.event };
    }),

    // PUT /_matrix/federation/v2/send_join/{roomId}/{eventId} (spec "Joining rooms")
    federationRoute('PUT', '/v2/send_join/{roomId}/{eventId}', async ({ params, json, origin }) => {
      const sent = await sentMemberEvent(params, await json(), origin, 'join');
      const { roomId, version } = sent;
      let event = sent.event;
      // A restricted join names one of our users as authoriser: this server countersigns it (spec "Restricted rooms").
      const authoriser = event.content.join_authorised_via_users_server;
      if (typeof authoriser === 'string' && serverNameOf(authoriser) === ctx.serverName) event = await signEvent(event, ctx.signer, version);
      await accept(event, origin, roomId);
      const before = await rooms.stateBefore(params.eventId!);
      return ctx.storage.read(async (t) => {
        const stateIds = [...(before ?? new Map()).values()];
        const state = await t.events.getMany(stateIds);
        const chain = await authChainOf(t, [...stateIds, ...event.auth_events]);
        const stateRecords = stateIds.map((id) => state.get(id)).filter((r) => r !== undefined);
        const inState = new Set(stateIds);
        return {
          origin: ctx.serverName,
          members_omitted: false,
          state: stateRecords.map(pduOf),
          auth_chain: [...stateRecords.filter((r) => event.auth_events.includes(r.eventId)), ...chain.filter((r) => !inState.has(r.eventId))].map(pduOf),
          event,
        };
      });
    }),

    // GET /_matrix/federation/v1/make_knock/{roomId}/{userId}?ver= (spec "Knocking upon a room")
    federationRoute('GET', '/v1/make_knock/{roomId}/{userId}', async ({ params, query, origin }) => {
      const version = await rooms.roomVersion(params.roomId!);
      if (!version) throw notFound(`Unknown room ${params.roomId}`);
      if (!query.getAll('ver').includes(version)) throw incompatible(version);
      const made = await template(params.roomId!, params.userId!, origin, 'knock');
      return { room_version: made.roomVersion, event: made.event };
    }),

    // PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId} (spec "Knocking upon a room")
    federationRoute('PUT', '/v1/send_knock/{roomId}/{eventId}', async ({ params, json, origin }) => {
      const { roomId, event } = await sentMemberEvent(params, await json(), origin, 'knock');
      await accept(event, origin, roomId);
      // What a knocker may see of the room before anyone lets them in: the invite list of stripped state.
      const state = await rooms.currentState(roomId);
      const knockRoomState = INVITE_STATE_TYPES.map((type) => state?.get(stateKeyOf(type, ''))).filter((e) => e !== undefined).map((e) => strippedState(e.pdu));
      return { knock_room_state: knockRoomState };
    }),

    // GET /_matrix/federation/v1/make_leave/{roomId}/{userId} (spec "Leaving rooms (rejecting invites)")
    federationRoute('GET', '/v1/make_leave/{roomId}/{userId}', async ({ params, origin }) => {
      const made = await template(params.roomId!, params.userId!, origin, 'leave');
      return { room_version: made.roomVersion, event: made.event };
    }),

    // PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId} (spec "Leaving rooms (rejecting invites)")
    federationRoute('PUT', '/v2/send_leave/{roomId}/{eventId}', async ({ params, json, origin }) => {
      const { roomId, event } = await sentMemberEvent(params, await json(), origin, 'leave');
      await accept(event, origin, roomId);
      return {};
    }),

    // PUT /_matrix/federation/v2/invite/{roomId}/{eventId} (spec "Inviting to a room")
    federationRoute('PUT', '/v2/invite/{roomId}/{eventId}', async ({ params, json, origin }) => {
      const body = await json();
      const version = body.room_version;
      if (typeof version !== 'string' || !SUPPORTED_ROOM_VERSIONS.includes(version)) throw incompatible(String(version));
      const formed = checkFormat(body.event, version);
      if ('failure' in formed) throw badJson(formed.failure);
      const event = formed.wire;
      if (formed.eventId !== params.eventId) throw badJson(`The event's ID is ${formed.eventId}, not ${params.eventId}`);
      if (event.type !== 'm.room.member' || event.content.membership !== 'invite' || event.room_id !== params.roomId) throw badJson('Not an invite to this room');
      if (serverNameOf(event.sender) !== origin) throw forbidden(`${origin} may only send invites by its own users`);
      const invitee = event.state_key as string;
      if (serverNameOf(invitee) !== ctx.serverName || !(await ctx.storage.read((t) => t.users.get(invitee)))) throw notFound(`No user ${invitee} here`);
      const signed = await verifySigned(keyOf, event, version);
      if ('failure' in signed) throw forbidden(signed.failure);
      const countersigned = await signEvent(event, ctx.signer, version);
      const stripped = Array.isArray(body.invite_room_state) ? body.invite_room_state.slice(0, 50) : [];
      await rooms.storeOutlierMembership(params.roomId!, version, formed.eventId, { ...countersigned, unsigned: { invite_room_state: stripped } } as PDU, origin);
      return { event: countersigned };
    }),
  ];
}

/** Sends an accepted remote join or leave on to the other servers in the room (not back to its origin). */
async function forward(ctx: HomeserverContext, roomId: string, event: PDU, origin: string): Promise<void> {
  await ctx.storage.write(async (t) => {
    for (const server of await joinedServers(t, roomId, ctx.serverName)) {
      if (server !== origin) await t.outbound.enqueue(server, { pdu: federationForm(event) } as never);
    }
  });
}
