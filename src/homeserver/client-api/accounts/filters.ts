/**
 * Stored filters (spec "Filtering"): a client uploads a filter once and names
 * it by ID in /sync. Filters are checked against the spec's grammar on upload
 * (accounts/filters.ts) and belong to their user alone.
 */
import { notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { checkFilter } from '../../accounts/filters.js';
import { requireSelf, type AccountsDeps } from './common.js';

export function filterRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // POST /_matrix/client/v3/user/{userId}/filter (spec: "Filtering")
    clientRoute('POST', '/user/{userId}/filter', 'required', async ({ requester, params, json }) => {
      requireSelf(requester.userId, params.userId!, 'create filters');
      const filter = checkFilter(await json());
      const filterId = await ctx.storage.write((txn) => txn.filters.create(requester.userId, filter));
      return { filter_id: filterId };
    }),

    // GET /_matrix/client/v3/user/{userId}/filter/{filterId} (spec: "Filtering")
    clientRoute('GET', '/user/{userId}/filter/{filterId}', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'get filters');
      const filter = await ctx.storage.read((txn) => txn.filters.get(requester.userId, params.filterId!));
      if (!filter) throw notFound('No such filter');
      return filter;
    }),
  ];
}
