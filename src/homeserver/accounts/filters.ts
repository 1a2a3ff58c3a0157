/**
 * Stored filters (spec "Filtering"): a client uploads a filter once and names
 * it by ID in /sync. This module owns storing and loading them; the grammar
 * is sync/filters.ts, the one parser /sync also applies, so an upload that
 * succeeds can always be applied. What is stored is the normalised form.
 *
 * Filters belong to their user: they are stored and looked up under the
 * owner's ID, and an ID that is not one this server issues (a decimal
 * counter) is "no such filter" without a storage read.
 *
 * A filter stored by an older version under a looser grammar, or one that
 * exceeds today's bounds, may no longer parse. Answering every /sync with 400
 * would wedge the client for good (it keeps its filter ID), so /sync applies
 * the default filter instead and logs a warning: the client gets more than it
 * asked for (no lazy loading, 10 timeline events) but keeps syncing. GET still
 * gives the stored filter back as it is, so the client sees what it owns.
 *
 * Compiled filters are cached per storage (LRU of 1024): a filter never
 * changes once stored, and clients send the same ID with every /sync. Each is
 * at most MAX_FILTER_JSON_LENGTH characters of JSON, which bounds the cache.
 */
import type { JsonObject } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { invalidParam, MatrixError } from '../http/errors.js';
import { parseFilter, SyncFilter } from '../sync/filters.js';
import { LruMap } from '../sync/lru.js';
import type { Storage } from '../../storage/types.js';

type FilterContext = Pick<HomeserverContext, 'storage' | 'log'>;

/** The IDs this server issues: a decimal counter (storage nextId). Anything else names no filter. */
const FILTER_ID = /^[0-9]{1,20}$/;

/** Whether `filterId` has the shape of an ID this server could have issued. */
export function isFilterId(filterId: string): boolean {
  return FILTER_ID.test(filterId);
}

/** Checks `body` with the /sync grammar and stores its normalised form; throws 400 M_BAD_JSON naming the field. */
export async function createFilter(ctx: FilterContext, userId: string, body: unknown): Promise<string> {
  const filter = parseFilter(body) as JsonObject;
  return ctx.storage.write((txn) => txn.filters.create(userId, filter));
}

/** The filter `userId` stored under `filterId`, as stored; undefined for another user's or an unknown ID. */
export async function getFilter(ctx: FilterContext, userId: string, filterId: string): Promise<JsonObject | undefined> {
  if (!isFilterId(filterId)) return undefined;
  return ctx.storage.read((txn) => txn.filters.get(userId, filterId));
}

const compiled = new WeakMap<Storage, LruMap<string, SyncFilter>>();

/**
 * The compiled filter /sync applies for a stored filter ID; 400
 * M_INVALID_PARAM "No such filter" (as Synapse answers) for an unknown ID, the
 * default filter with a logged warning for a stored filter that no longer parses.
 */
export async function storedSyncFilter(ctx: FilterContext, userId: string, filterId: string): Promise<SyncFilter> {
  if (!isFilterId(filterId)) throw invalidParam('No such filter');
  let known = compiled.get(ctx.storage);
  if (!known) compiled.set(ctx.storage, (known = new LruMap(1024)));
  const key = `${userId}\n${filterId}`;
  const cached = known.get(key);
  if (cached) return cached;
  const stored = await ctx.storage.read((txn) => txn.filters.get(userId, filterId));
  if (!stored) throw invalidParam('No such filter');
  let filter: SyncFilter;
  try {
    filter = new SyncFilter(parseFilter(stored));
  } catch (error) {
    if (!(error instanceof MatrixError)) throw error;
    ctx.log.warn(`stored filter ${filterId} of ${userId} no longer parses (${error.message}); /sync applies the default filter`);
    filter = new SyncFilter();
  }
  known.set(key, filter);
  return filter;
}
