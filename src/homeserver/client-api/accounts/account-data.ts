/**
 * Client config (spec "Client Config" and "Room Tagging"): global and per-room
 * account data, readable and writable by its owner only, and room tags, which
 * are the per-room `m.tag` entry. Each change takes a stream position, so
 * /sync delivers it. Types the server owns (m.push_rules, and m.fully_read,
 * which /read_markers sets) are refused with the spec's 405 M_BAD_JSON.
 */
import { utf8, type JsonObject } from '../../../core/index.js';
import { MatrixError, badJson, invalidParam, notFound } from '../../http/errors.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { PUSH_RULES_TYPE } from '../../accounts/push-rules.js';
import { roomIdParam } from '../../http/params.js';
import { requireSelf, type AccountsDeps } from './common.js';
import { BOUNDS, checkCount } from '../../limits/bounds.js';
import { setOwn } from '../../own-keys.js';

/** Longest account data type or tag name, in bytes (the limit on event types). */
const MAX_NAME_BYTES = 255;

function checkName(name: string, what: string): void {
  if (name.length === 0) throw invalidParam(`${what} cannot be empty`);
  if (utf8(name).length > MAX_NAME_BYTES) throw invalidParam(`${what} is longer than ${MAX_NAME_BYTES} bytes`);
}

function serverOwned(type: string, roomId: string): MatrixError | undefined {
  if (roomId === '' && type === PUSH_RULES_TYPE) return new MatrixError(405, 'M_BAD_JSON', 'Cannot set m.push_rules through this API; use /pushrules');
  if (roomId !== '' && type === 'm.fully_read') {
    return new MatrixError(405, 'M_BAD_JSON', 'Cannot set m.fully_read through this API; use /rooms/{roomId}/read_markers');
  }
  return undefined;
}

export function accountDataRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;

  async function getData(userId: string, type: string, roomId: string): Promise<JsonObject> {
    checkName(type, 'Account data type');
    const record = await ctx.storage.read((txn) => txn.accountData.get(userId, type, roomId));
    if (!record) throw notFound('Account data not found');
    return record.content;
  }

  async function putData(userId: string, type: string, roomId: string, content: JsonObject): Promise<void> {
    checkName(type, 'Account data type');
    const refused = serverOwned(type, roomId);
    if (refused) throw refused;
    await ctx.storage.write((txn) => txn.accountData.put(userId, type, content, roomId));
  }

  /** Applies `change` to the room's tags in one write. */
  async function editTags(userId: string, roomId: string, change: (tags: Record<string, unknown>) => boolean): Promise<void> {
    await ctx.storage.write(async (txn) => {
      const record = await txn.accountData.get(userId, 'm.tag', roomId);
      const stored = record?.content.tags;
      const tags = stored && typeof stored === 'object' && !Array.isArray(stored) ? { ...(stored as Record<string, unknown>) } : {};
      if (!change(tags)) return;
      await txn.accountData.put(userId, 'm.tag', { tags } as JsonObject, roomId);
    });
  }

  return [
    // GET /_matrix/client/v3/user/{userId}/account_data/{type} (spec: "Client Config")
    clientRoute('GET', '/user/{userId}/account_data/{type}', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'get account data');
      return getData(params.userId!, params.type!, '');
    }),

    // PUT /_matrix/client/v3/user/{userId}/account_data/{type} (spec: "Client Config")
    clientRoute('PUT', '/user/{userId}/account_data/{type}', 'required', async ({ requester, params, json }) => {
      requireSelf(requester.userId, params.userId!, 'add account data');
      await putData(params.userId!, params.type!, '', await json<JsonObject>());
      return {};
    }),

    // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type} (spec: "Client Config")
    clientRoute('GET', '/user/{userId}/rooms/{roomId}/account_data/{type}', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'get account data');
      return getData(params.userId!, params.type!, roomIdParam(params.roomId!));
    }),

    // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type} (spec: "Client Config")
    clientRoute('PUT', '/user/{userId}/rooms/{roomId}/account_data/{type}', 'required', async ({ requester, params, json }) => {
      requireSelf(requester.userId, params.userId!, 'add account data');
      const roomId = roomIdParam(params.roomId!);
      await putData(params.userId!, params.type!, roomId, await json<JsonObject>());
      return {};
    }),

    // GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags (spec: "Room Tagging")
    clientRoute('GET', '/user/{userId}/rooms/{roomId}/tags', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'get tags');
      const roomId = roomIdParam(params.roomId!);
      const record = await ctx.storage.read((txn) => txn.accountData.get(requester.userId, 'm.tag', roomId));
      const tags = record?.content.tags;
      return { tags: tags && typeof tags === 'object' && !Array.isArray(tags) ? tags : {} };
    }),

    // PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag} (spec: "Room Tagging")
    clientRoute('PUT', '/user/{userId}/rooms/{roomId}/tags/{tag}', 'required', async ({ requester, params, json }) => {
      requireSelf(requester.userId, params.userId!, 'add tags');
      const roomId = roomIdParam(params.roomId!);
      const tag = params.tag!;
      checkName(tag, 'Tag');
      const body = await json();
      if (body.order !== undefined && (typeof body.order !== 'number' || !Number.isFinite(body.order))) {
        throw badJson('order must be a number');
      }
      await editTags(requester.userId, roomId, (tags) => {
        if (!Object.hasOwn(tags, tag)) checkCount('tags', Object.keys(tags).length + 1, BOUNDS.tagsPerRoom);
        setOwn(tags, tag, body); // the tag is a path parameter: `__proto__` is a tag like any other
        return true;
      });
      return {};
    }),

    // DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag} (spec: "Room Tagging")
    clientRoute('DELETE', '/user/{userId}/rooms/{roomId}/tags/{tag}', 'required', async ({ requester, params }) => {
      requireSelf(requester.userId, params.userId!, 'remove tags');
      const roomId = roomIdParam(params.roomId!);
      const tag = params.tag!;
      // Removing a tag the room does not have succeeds without a change (nothing to tell /sync).
      await editTags(requester.userId, roomId, (tags) => {
        if (!Object.hasOwn(tags, tag)) return false;
        delete tags[tag];
        return true;
      });
      return {};
    }),
  ];
}
