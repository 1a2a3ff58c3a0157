/**
 * The user directory (spec "User directory"): finding people by user ID or
 * display name, for invite dialogs. A Hometab server has few local users, so
 * the search scans them (case-insensitive substring match); users of other
 * servers join the directory when federation brings their profiles.
 */
import { badJson, invalidParam, missingParam } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import type { AccountsDeps } from './common.js';

const DEFAULT_LIMIT = 10;
/** Synapse caps the limit the same way; an invite dialog never needs more. */
const MAX_LIMIT = 50;
const PAGE = 500;

export function userDirectoryRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // POST /_matrix/client/v3/user_directory/search (spec: "User directory")
    clientRoute('POST', '/user_directory/search', 'required', async ({ json }) => {
      const body = await json();
      if (body.search_term === undefined) throw missingParam('Missing parameter: search_term');
      if (typeof body.search_term !== 'string') throw badJson('search_term must be a string');
      if (body.limit !== undefined && !Number.isSafeInteger(body.limit)) throw badJson('limit must be an integer');
      const limit = Math.min((body.limit as number | undefined) ?? DEFAULT_LIMIT, MAX_LIMIT);
      if (limit < 0) throw invalidParam('limit cannot be negative');
      const term = body.search_term.toLowerCase();

      const results: Array<{ user_id: string; display_name?: string; avatar_url?: string }> = [];
      let limited = false;
      let after: string | undefined;
      scan: for (;;) {
        const page = await ctx.storage.read((txn) => txn.users.list({ after, limit: PAGE }));
        for (const user of page) {
          if (user.deactivated) continue;
          if (!user.userId.toLowerCase().includes(term) && !(user.displayname ?? '').toLowerCase().includes(term)) continue;
          if (results.length === limit) {
            limited = true;
            break scan;
          }
          results.push({
            user_id: user.userId,
            ...(user.displayname !== undefined ? { display_name: user.displayname } : {}),
            ...(user.avatarUrl !== undefined ? { avatar_url: user.avatarUrl } : {}),
          });
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.userId;
      }
      return { limited, results };
    }),
  ];
}
