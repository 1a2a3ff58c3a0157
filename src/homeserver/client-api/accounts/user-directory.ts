/**
 * The user directory (spec "User directory"): finding people by user ID or
 * display name, for invite dialogs. Only people the searcher may see are
 * searched (access/people.ts: those who share a room with them, and members
 * of public rooms, Synapse's default), never every local user. A Hometab
 * server has few users, so the search scans those candidates
 * (case-insensitive substring match); users of other servers join the
 * directory when federation brings their profiles.
 */
import { visibleInDirectory } from '../../access/people.js';
import { isLocalUserId } from '../../accounts/users.js';
import { badJson, invalidParam, missingParam } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import type { AccountsDeps } from './common.js';

const DEFAULT_LIMIT = 10;
/** Synapse caps the limit the same way; an invite dialog never needs more. */
const MAX_LIMIT = 50;
/** Longer than any user ID (255) plus room to spare; a longer term can match nothing worth finding. */
export const MAX_SEARCH_TERM_LENGTH = 256;

export function userDirectoryRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // POST /_matrix/client/v3/user_directory/search (spec: "User directory")
    clientRoute('POST', '/user_directory/search', 'required', async ({ json, requester }) => {
      const body = await json();
      if (body.search_term === undefined) throw missingParam('Missing parameter: search_term');
      if (typeof body.search_term !== 'string') throw badJson('search_term must be a string');
      if (body.search_term.length > MAX_SEARCH_TERM_LENGTH) throw invalidParam(`search_term is longer than ${MAX_SEARCH_TERM_LENGTH} characters`);
      if (body.limit !== undefined && !Number.isSafeInteger(body.limit)) throw badJson('limit must be an integer');
      const limit = Math.min((body.limit as number | undefined) ?? DEFAULT_LIMIT, MAX_LIMIT);
      if (limit < 0) throw invalidParam('limit cannot be negative');
      const term = body.search_term.toLowerCase();

      return ctx.storage.read(async (txn) => {
        const candidates = [...(await visibleInDirectory(txn, requester.userId))].filter((id) => isLocalUserId(id, ctx.serverName)).sort();
        const results: Array<{ user_id: string; display_name?: string; avatar_url?: string }> = [];
        for (const userId of candidates) {
          const user = await txn.users.get(userId);
          if (!user || user.deactivated) continue;
          if (!user.userId.toLowerCase().includes(term) && !(user.displayname ?? '').toLowerCase().includes(term)) continue;
          if (results.length === limit) return { limited: true, results };
          results.push({
            user_id: user.userId,
            ...(user.displayname !== undefined ? { display_name: user.displayname } : {}),
            ...(user.avatarUrl !== undefined ? { avatar_url: user.avatarUrl } : {}),
          });
        }
        return { limited: false, results };
      });
    }),
  ];
}
