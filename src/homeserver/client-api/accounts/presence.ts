/**
 * Presence (spec "Presence"): set your own, and read that of people you share
 * a room with (access/people.ts; 403 for anyone else, whether or not the user
 * exists, as Synapse answers). The state is kept in memory
 * (accounts/presence.ts); setting it tells the servers sharing a room with
 * the user (federation/presence-out.ts), and other servers' users' presence
 * is what their servers said.
 */
import { badJson, forbidden, invalidParam, missingParam, notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { sharesRoom } from '../../access/people.js';
import { MAX_STATUS_MSG_LENGTH, PRESENCE_STATES, type PresenceState } from '../../accounts/presence.js';
import { isLocalUserId } from '../../accounts/users.js';
import { optionalString } from '../../http/params.js';
import { pathUserId, type AccountsDeps } from './common.js';

export function presenceRoutes({ services, presence }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // GET /_matrix/client/v3/presence/{userId}/status (spec: "Presence")
    clientRoute('GET', '/presence/{userId}/status', 'required', async ({ params, requester }) => {
      const userId = pathUserId(params.userId!);
      const user = await ctx.storage.read(async (txn) => {
        if (!(await sharesRoom(txn, requester.userId, userId))) throw forbidden('You are not allowed to see their presence.');
        return isLocalUserId(userId, ctx.serverName) ? txn.users.get(userId) : undefined;
      });
      if (!isLocalUserId(userId, ctx.serverName)) {
        // Another server's user: what their server last told us (m.presence EDUs).
        const remote = presence.getRemote(userId);
        if (!remote) throw notFound('Presence information not found');
        return remote;
      }
      if (!user || user.deactivated) throw notFound('Presence information not found');
      return presence.get(userId);
    }),

    // PUT /_matrix/client/v3/presence/{userId}/status (spec: "Presence")
    clientRoute('PUT', '/presence/{userId}/status', 'required', async ({ requester, params, json }) => {
      const userId = pathUserId(params.userId!);
      if (userId !== requester.userId) throw forbidden('Can only set your own presence state');
      const body = await json();
      if (body.presence === undefined) throw missingParam('Missing parameter: presence');
      if (typeof body.presence !== 'string') throw badJson('presence must be a string');
      if (!PRESENCE_STATES.includes(body.presence as PresenceState)) throw invalidParam(`Invalid presence state: ${body.presence}`);
      // null clears the message like an absent one (some clients send it).
      const statusMsg = body.status_msg === null ? undefined : optionalString(body, 'status_msg');
      if (statusMsg !== undefined && statusMsg.length > MAX_STATUS_MSG_LENGTH) {
        throw invalidParam(`status_msg is longer than ${MAX_STATUS_MSG_LENGTH} characters`);
      }
      presence.set(userId, body.presence as PresenceState, statusMsg);
      await services.federation.presence.announce(userId, presence.get(userId));
      return {};
    }),
  ];
}
