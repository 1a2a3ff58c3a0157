/**
 * Queries about this server's users, aliases and media (server-server API "Query
 * types" profile and directory, "Device management" user/devices, "End-to-end encryption"
 * user/keys/query and user/keys/claim, "Content repository" media download).
 * Only local users and local media are answered; the key logic is the
 * client-server API's own (keys/device-keys.ts), asked with no requester, so
 * no user-signing key or private signature leaves the server.
 */
import { serverNameOf, type JsonObject } from '../../core/index.js';
import { badJson, missingParam, notFound } from '../http/errors.js';
import type { Requester, RouteDefinition } from '../http/router.js';
import { claimKeys, parseKeysClaim, parseKeysQuery, queryKeys } from '../keys/device-keys.js';
import { findMedia, mediaContent, mediaHeaders } from '../media/index.js';
import { parseRoomAlias } from '../rooms/validate.js';
import type { FederationDeps } from './deps.js';
import { federationRoute } from './route.js';
import { STREAM_IDS_FIELD } from './device-cache.js';
import { deviceListStreamOf } from '../keys/device-lists.js';
import { setOwn } from '../own-keys.js';

/** Who asks when another server queries keys: nobody of ours (no private signatures shown). */
const REMOTE: Requester = { userId: '', deviceId: '', accessToken: '' };

export function queryRoutes({ ctx, rooms }: FederationDeps): RouteDefinition[] {
  const isLocal = (userId: string) => {
    try {
      return serverNameOf(userId) === ctx.serverName;
    } catch {
      return false;
    }
  };
  return [
    // GET /_matrix/federation/v1/query/profile?user_id=&field= (spec "Query types")
    federationRoute('GET', '/v1/query/profile', async ({ query }) => {
      const userId = query.get('user_id');
      if (!userId) throw missingParam('Missing user_id');
      const field = query.get('field');
      if (field !== null && field !== 'displayname' && field !== 'avatar_url') throw badJson('field must be displayname or avatar_url');
      const user = isLocal(userId) ? await ctx.storage.read((t) => t.users.get(userId)) : undefined;
      if (!user) throw notFound('Profile was not found');
      const out: Record<string, string> = {};
      if (user.displayname !== undefined && field !== 'avatar_url') out.displayname = user.displayname;
      if (user.avatarUrl !== undefined && field !== 'displayname') out.avatar_url = user.avatarUrl;
      return out;
    }),

    // GET /_matrix/federation/v1/query/directory?room_alias= (spec "Query types": a local alias to its room and servers)
    federationRoute('GET', '/v1/query/directory', async ({ query }) => {
      const parsed = parseRoomAlias(query.get('room_alias'));
      if (!parsed) throw missingParam('Missing or invalid room_alias');
      const record = parsed.server === ctx.serverName ? await ctx.storage.read((t) => t.aliases.get(parsed.alias)) : undefined;
      if (!record) throw notFound('Room alias not found');
      const servers = new Set([ctx.serverName]);
      for (const { pdu } of (await rooms.currentState(record.roomId))?.values() ?? []) {
        if (pdu.type === 'm.room.member' && pdu.content.membership === 'join' && typeof pdu.state_key === 'string') servers.add(serverNameOf(pdu.state_key));
      }
      return { room_id: record.roomId, servers: [...servers] };
    }),

    // GET /_matrix/federation/v1/user/devices/{userId} (spec "Device management")
    federationRoute('GET', '/v1/user/devices/{userId}', async ({ params }) => {
      const userId = params.userId!;
      if (!isLocal(userId)) throw notFound('Not a user of this server');
      // The position is read first: the keys read after it include at least every change up to it.
      const streamId = await ctx.storage.read((t) => deviceListStreamOf(t, userId));
      const keys = await queryKeys(ctx, REMOTE, new Map([[userId, []]]));
      const deviceKeys = (keys.device_keys[userId] ?? {}) as Record<string, JsonObject>;
      const devices = await ctx.storage.read((t) => t.devices.forUser(userId));
      const out: Record<string, unknown> = {
        user_id: userId,
        stream_id: streamId,
        devices: devices.map((d) => ({
          device_id: d.deviceId,
          ...(d.displayName !== undefined ? { device_display_name: d.displayName } : {}),
          ...(Object.hasOwn(deviceKeys, d.deviceId) ? { keys: deviceKeys[d.deviceId] } : {}),
        })),
      };
      if (Object.hasOwn(keys.master_keys, userId)) out.master_key = keys.master_keys[userId];
      if (Object.hasOwn(keys.self_signing_keys, userId)) out.self_signing_key = keys.self_signing_keys[userId];
      return out;
    }),

    // POST /_matrix/federation/v1/user/keys/query (spec "End-to-end encryption")
    federationRoute('POST', '/v1/user/keys/query', async ({ json }) => {
      const wanted = parseKeysQuery(await json());
      for (const userId of [...wanted.keys()]) if (!isLocal(userId)) wanted.delete(userId);
      // Where each user's device list stood (read before the keys), so the asker can keep the answer and apply later updates.
      const streamIds: Record<string, number> = {};
      await ctx.storage.read(async (t) => {
        for (const userId of wanted.keys()) setOwn(streamIds, userId, await deviceListStreamOf(t, userId));
      });
      const { device_keys, master_keys, self_signing_keys } = await queryKeys(ctx, REMOTE, wanted);
      return { device_keys, master_keys, self_signing_keys, [STREAM_IDS_FIELD]: streamIds };
    }),

    // POST /_matrix/federation/v1/user/keys/claim (spec "End-to-end encryption")
    federationRoute('POST', '/v1/user/keys/claim', async ({ json }) => {
      const wanted = parseKeysClaim(await json());
      for (const userId of [...wanted.keys()]) if (!isLocal(userId)) wanted.delete(userId);
      const { one_time_keys } = await claimKeys(ctx, wanted);
      return { one_time_keys };
    }),

    // GET /_matrix/federation/v1/media/download/{mediaId} (spec "Content repository", multipart/mixed: metadata, then the bytes)
    federationRoute('GET', '/v1/media/download/{mediaId}', async ({ params }) => {
      const record = await findMedia(ctx, ctx.serverName, params.mediaId!);
      if (!record) throw notFound('Not found');
      const boundary = `hometab${params.mediaId}`;
      const encoder = new TextEncoder();
      const headers = mediaHeaders(record);
      const partHeaders = Object.entries(headers)
        .filter(([name]) => /^content-(type|disposition)$/i.test(name))
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      const head = encoder.encode(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{}\r\n--${boundary}\r\n${partHeaders}\r\n`);
      const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
      const content = mediaContent(ctx, record).getReader();
      let stage = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (stage === 0) {
            stage = 1;
            controller.enqueue(head);
            return;
          }
          if (stage === 1) {
            const { done, value } = await content.read();
            if (!done) {
              controller.enqueue(value);
              return;
            }
            stage = 2;
          }
          controller.enqueue(tail);
          controller.close();
        },
      });
      return new Response(body, { status: 200, headers: { 'content-type': `multipart/mixed; boundary=${boundary}` } });
    }),
  ];
}
