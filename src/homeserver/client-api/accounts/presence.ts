/**
 * Presence (spec "Presence"): read any local user's state, set your own. The
 * state is kept in memory (accounts/presence.ts).
 */
import { badJson, forbidden, invalidParam, missingParam, notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { PRESENCE_STATES, type PresenceState } from '../../accounts/presence.js';
import { isLocalUserId } from '../../accounts/users.js';
import { optionalString } from '../../http/params.js';
import { pathUserId, type AccountsDeps } from './common.js';

export function presenceRoutes({ services, presence }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // GET /_matrix/client/v3/presence/{userId}/status (spec: "Presence")
    clientRoute('GET', '/presence/{userId}/status', 'required', async ({ params }) => {
      const userId = pathUserId(params.userId!);
      const user = isLocalUserId(userId, ctx.serverName) ? await ctx.storage.read((txn) => txn.users.get(userId)) : undefined;
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
      presence.set(userId, body.presence as PresenceState, statusMsg);
      return {};
    }),
  ];
}
