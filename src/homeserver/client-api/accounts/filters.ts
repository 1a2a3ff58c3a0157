/**
 * Routes of stored filters (spec "Filtering"): a client uploads a filter once
 * and names it by ID in /sync. The routes check who asks; accounts/filters.ts
 * checks the filter with the grammar /sync applies, stores and loads it.
 * Filters belong to their user alone.
 */
import { notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { createFilter, getFilter } from '../../accounts/filters.js';
import { requireSelf, type AccountsDeps } from './common.js';

export function filterRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // POST /_matrix/client/v3/user/{userId}/filter (spec: "Filtering")
    clientRoute('POST', '/user/{userId}/filter', 'required', async ({ requester, params, json }) => {
      requireSelf(requester.userId, params.userId!, 'create filters');
      return { filter_id: await createFilter(ctx, requester.userId, await json()) };
    }),

    // GET /_matrix/client/v3/user/{userId}/filter/{filterId} (spec: "Filtering")
    clientRoute('GET', '/user/{userId}/filter/{filterId}', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'get filters');
      const filter = await getFilter(ctx, requester.userId, params.filterId!);
      if (!filter) throw notFound('No such filter');
      return filter;
    }),
  ];
}
