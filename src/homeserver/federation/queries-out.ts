/**
 * Questions about remote users and aliases, asked of their servers through the injected
 * FederationClient: profiles (query/profile), room aliases (query/directory) and end-to-end keys
 * (user/keys/query, user/keys/claim). Key answers are merged into the
 * client-server API's result; a server that cannot be reached is listed in
 * `failures`, as the spec asks, and the local part of the answer stands.
 * Device lists of users who share a room with us are answered from, and
 * kept in, the remote device list cache (device-cache.ts); claimed one-time
 * keys are never cached (each is handed out once).
 */
import { isValidServerName, serverNameOf, type JsonObject } from '../../core/index.js';
import { isRoomId } from '../http/params.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../http/errors.js';
import type { KeysClaimResult, KeysQueryResult } from '../keys/device-keys.js';
import { getOwn, setOwn } from '../own-keys.js';
import type { RemoteDeviceList, RemoteDeviceLists } from './device-cache.js';
import { privateSignaturesFor } from '../keys/cross-signing.js';
import { mergeAllSignatures } from '../keys/json.js';
import type { RemoteServers } from './remote.js';

/** Servers taken from a remote alias answer (joins try them in order). @default 20 */
const MAX_ALIAS_SERVERS = 20;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export class RemoteQueries {
  constructor(
    private readonly ctx: HomeserverContext,
    private readonly remote: RemoteServers,
    private readonly deviceLists: RemoteDeviceLists,
  ) {}

  /** Device lists being fetched now, by user (see fetchLists). */
  private readonly fetching = new Map<string, Promise<RemoteDeviceList | undefined>>();

  /** A remote user's profile; 404 when their server does not know them or cannot be reached (the message says which). */
  async profile(userId: string, field?: 'displayname' | 'avatar_url'): Promise<Record<string, string>> {
    const server = serverNameOf(userId);
    const path = `/_matrix/federation/v1/query/profile?user_id=${encodeURIComponent(userId)}${field ? `&field=${field}` : ''}`;
    let body: Record<string, unknown>;
    try {
      body = await this.remote.call(server, 'look up the profile', { method: 'GET', path });
    } catch (error) {
      // The spec's answer for a profile that cannot be had, whatever the reason; the message says which.
      if (error instanceof MatrixError) throw new MatrixError(404, 'M_NOT_FOUND', error.status === 404 ? 'Profile was not found' : `Profile was not found: ${error.message}`);
      throw error;
    }
    const out: Record<string, string> = {};
    if (typeof body.displayname === 'string' && field !== 'avatar_url') out.displayname = body.displayname;
    if (typeof body.avatar_url === 'string' && field !== 'displayname') out.avatar_url = body.avatar_url;
    return out;
  }

  /**
   * A remote alias's room and the servers in it, from the alias's server (query/directory). 404 when that
   * server does not know it or cannot be reached (the message says which); an unusable answer is 502.
   */
  async directory(alias: string, aliasServer: string): Promise<{ roomId: string; servers: string[] }> {
    let body: Record<string, unknown>;
    try {
      body = await this.remote.call(aliasServer, 'look up the room alias', { method: 'GET', path: `/_matrix/federation/v1/query/directory?room_alias=${encodeURIComponent(alias)}` });
    } catch (error) {
      if (error instanceof MatrixError) throw new MatrixError(404, 'M_NOT_FOUND', error.status === 404 ? `Room alias ${alias} not found` : `Room alias ${alias} not found: ${error.message}`);
      throw error;
    }
    const roomId = body.room_id;
    const servers = Array.isArray(body.servers) ? body.servers.filter((s): s is string => typeof s === 'string' && isValidServerName(s)).slice(0, MAX_ALIAS_SERVERS) : [];
    if (!isRoomId(roomId)) throw new MatrixError(502, 'M_UNKNOWN', `${aliasServer} answered the alias lookup with an unusable room ID`);
    // The alias's server first: it answered, so it is reachable, and it knows the room.
    return { roomId, servers: [...new Set([aliasServer, ...servers])].filter((s) => s !== this.ctx.serverName) };
  }

  /** Adds the remote users' keys to a local keys/query result, from the cache or their servers (`failures` for servers that did not answer). */
  async queryKeys(result: KeysQueryResult, wanted: Map<string, string[]>, requesterId: string): Promise<KeysQueryResult> {
    await Promise.all(
      [...this.byServer(wanted)].map(async ([server, users]) => {
        delete result.failures[server];
        const lists = await this.deviceLists.cached(users.map(([userId]) => userId));
        const missing = users.filter(([userId]) => !lists.has(userId)).map(([userId]) => userId);
        try {
          for (const [userId, list] of await this.fetchLists(server, missing)) lists.set(userId, list);
        } catch (error) {
          setOwn(result.failures, server, { status: 503, message: error instanceof Error ? error.message : String(error) });
        }
        for (const [userId, deviceIds] of users) {
          const list = lists.get(userId);
          if (!list) continue;
          addList(result, userId, deviceIds, list);
          // The requester's own user-signing signature of this master key is kept here and shown to them only.
          const own = list.master ? await this.ctx.storage.read((t) => privateSignaturesFor(t, requesterId, userId)) : undefined;
          if (own && list.master) setOwn(result.master_keys, userId, mergeAllSignatures(list.master, own));
        }
      }),
    );
    return result;
  }

  /**
   * The device lists of `server`'s users, asked of it with user/keys/query (every device of each user, so the
   * answer can be kept whole whatever devices a request named) and kept in the cache. A user already being
   * fetched for another request is waited for, not asked again: when a room fills up, every member's client
   * asks about every other member at once.
   */
  private async fetchLists(server: string, userIds: string[]): Promise<Map<string, RemoteDeviceList>> {
    const out = new Map<string, RemoteDeviceList>();
    const fresh = userIds.filter((userId) => !this.fetching.has(userId));
    if (fresh.length > 0) {
      const batch = (async () => {
        const body = await this.remote.call(server, 'query keys', { method: 'POST', path: '/_matrix/federation/v1/user/keys/query', body: { device_keys: Object.fromEntries(fresh.map((u) => [u, []])) } });
        const fetched = this.deviceLists.listsFromKeysQuery(server, fresh, body);
        await this.deviceLists.keep(fetched);
        return fetched;
      })();
      for (const userId of fresh) {
        const one = batch.then((fetched) => fetched.get(userId));
        // Whoever waits on it sees the failure; nobody waiting must not make it an unhandled rejection.
        one.catch(() => {});
        this.fetching.set(userId, one);
        void one.finally(() => this.fetching.delete(userId)).catch(() => {});
      }
    }
    const settled = await Promise.all(userIds.map(async (userId) => [userId, await this.fetching.get(userId)] as const));
    for (const [userId, list] of settled) if (list) out.set(userId, list);
    return out;
  }

  /** Adds one-time keys claimed from remote users' servers to a local keys/claim result. */
  async claimKeys(result: KeysClaimResult, wanted: Map<string, Map<string, string>>): Promise<KeysClaimResult> {
    for (const [server, users] of this.byServer(wanted)) {
      delete result.failures[server];
      try {
        const request = Object.fromEntries(users.map(([userId, devices]) => [userId, Object.fromEntries(devices)]));
        const body = await this.remote.call(server, 'claim keys', { method: 'POST', path: '/_matrix/federation/v1/user/keys/claim', body: { one_time_keys: request } });
        const keys = body.one_time_keys;
        if (!isObject(keys)) continue;
        for (const [userId, devices] of users) {
          const value = getOwn(keys, userId);
          if (!isObject(value)) continue;
          // Only the devices asked about, each with one key object: anything else the server adds is dropped.
          const claimed: Record<string, Record<string, JsonObject>> = {};
          for (const deviceId of devices.keys()) {
            const key = getOwn(value, deviceId);
            if (isObject(key)) setOwn(claimed, deviceId, key as Record<string, JsonObject>);
          }
          setOwn(result.one_time_keys, userId, claimed as never);
        }
      } catch (error) {
        setOwn(result.failures, server, { status: 503, message: error instanceof Error ? error.message : String(error) });
      }
    }
    return result;
  }

  private byServer<T>(wanted: Map<string, T>): Map<string, [string, T][]> {
    const out = new Map<string, [string, T][]>();
    for (const [userId, value] of wanted) {
      const server = serverNameOf(userId);
      if (server === this.ctx.serverName) continue;
      out.set(server, [...(out.get(server) ?? []), [userId, value]]);
    }
    return out;
  }
}

/** Puts one remote user's kept device list into a keys/query result (only the devices asked for, when named). */
function addList(result: KeysQueryResult, userId: string, deviceIds: string[], list: RemoteDeviceList): void {
  const named = new Set(deviceIds);
  const devices: Record<string, JsonObject> = {};
  for (const deviceId of Object.keys(list.devices)) {
    if (named.size === 0 || named.has(deviceId)) setOwn(devices, deviceId, list.devices[deviceId]!);
  }
  setOwn(result.device_keys, userId, devices);
  if (list.master) setOwn(result.master_keys, userId, list.master);
  if (list.selfSigning) setOwn(result.self_signing_keys, userId, list.selfSigning);
}
