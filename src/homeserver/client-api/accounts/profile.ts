/**
 * Profiles (spec "Profiles"): a user's display name and avatar URL, readable
 * by anyone and set by the user alone. A change is stored first and then sent
 * into every room the user has joined as a new member event (the room
 * engine's updateProfileInRooms, spec "Events on Change of Profile
 * Information") before the request returns, so other members see it in their
 * next /sync.
 */
import { forbidden, invalidParam, missingParam, notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { isLocalUserId } from '../../accounts/users.js';
import type { UserRecord } from '../../../storage/types.js';
import { optionalString } from '../../http/params.js';
import { pathUserId, type AccountsDeps } from './common.js';

/** Synapse's limits: display names of 256 characters, avatar URLs of 1000. */
const MAX_DISPLAYNAME_LENGTH = 256;
const MAX_AVATAR_URL_LENGTH = 1000;

type Field = 'displayname' | 'avatar_url';

function profileJson(user: UserRecord, only?: Field): Record<string, string> {
  const out: Record<string, string> = {};
  if (user.displayname !== undefined && only !== 'avatar_url') out.displayname = user.displayname;
  if (user.avatarUrl !== undefined && only !== 'displayname') out.avatar_url = user.avatarUrl;
  return out;
}

export function profileRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;

  /** A local user's profile from storage; a remote one's from their server (federation query/profile). */
  async function readProfile(userId: string, field?: Field): Promise<Record<string, string>> {
    pathUserId(userId);
    if (!isLocalUserId(userId, ctx.serverName)) return services.federation.queries.profile(userId, field);
    const user = await ctx.storage.read((txn) => txn.users.get(userId));
    if (!user) throw notFound('Profile was not found');
    return profileJson(user, field);
  }

  async function setField(requesterId: string, userId: string, field: Field, body: Record<string, unknown>): Promise<void> {
    pathUserId(userId);
    if (requesterId !== userId) throw forbidden("Cannot set another user's profile");
    if (body[field] === undefined) throw missingParam(`Missing parameter: ${field}`);
    // An empty string clears the field (Synapse); null is accepted for avatar_url with the same meaning.
    const raw = field === 'avatar_url' && body[field] === null ? '' : optionalString(body, field)!;
    if (field === 'displayname' && raw.length > MAX_DISPLAYNAME_LENGTH) {
      throw invalidParam(`Display name is too long (max ${MAX_DISPLAYNAME_LENGTH})`);
    }
    if (field === 'avatar_url') {
      if (raw.length > MAX_AVATAR_URL_LENGTH) throw invalidParam(`Avatar URL is too long (max ${MAX_AVATAR_URL_LENGTH})`);
      if (raw !== '' && !/^mxc:\/\/[^/]+\/[^/]+$/.test(raw)) throw invalidParam('avatar_url must be an mxc:// URI');
    }
    const value = raw === '' ? undefined : raw;
    const updated = await ctx.storage.write(async (txn) => {
      const user = await txn.users.get(userId);
      if (!user) throw notFound('Profile was not found');
      const current = field === 'displayname' ? user.displayname : user.avatarUrl;
      if (current === value) return undefined;
      return txn.users.update(userId, field === 'displayname' ? { displayname: value } : { avatarUrl: value });
    });
    if (!updated) return;
    try {
      await services.rooms.updateProfileInRooms(userId, { displayname: updated.displayname ?? null, avatar_url: updated.avatarUrl ?? null });
    } catch (error) {
      // The profile itself is saved; as in Synapse, a room that refuses the member event does not fail the request.
      ctx.log.warn(`profile change of ${userId} not sent to all rooms`, error);
    }
  }

  // Profile reads need no token (Synapse's default); 'none' also keeps a stale token from failing them.
  const routes: RouteDefinition[] = [
    // GET /_matrix/client/v3/profile/{userId} (spec: "Profiles")
    clientRoute('GET', '/profile/{userId}', 'none', async ({ params }) => readProfile(params.userId!)),
  ];
  for (const field of ['displayname', 'avatar_url'] as const) {
    routes.push(
      // GET /_matrix/client/v3/profile/{userId}/displayname and /avatar_url (spec: "Profiles")
      clientRoute('GET', `/profile/{userId}/${field}`, 'none', async ({ params }) => readProfile(params.userId!, field)),
      // PUT /_matrix/client/v3/profile/{userId}/displayname and /avatar_url (spec: "Profiles")
      clientRoute('PUT', `/profile/{userId}/${field}`, 'required', async ({ requester, params, json }) => {
        await setField(requester.userId, params.userId!, field, await json());
        return {};
      }),
    );
  }
  return routes;
}
