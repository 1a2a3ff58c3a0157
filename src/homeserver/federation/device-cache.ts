/**
 * Remote users' device lists (server-server API "Device management" and
 * "End-to-end encryption"): what this server knows of the devices and
 * cross-signing keys of other servers' users, so that a client's keys/query
 * about them is answered without a round trip to their server each time.
 *
 * A copy is kept (in the storage meta store, so it survives a reload) only
 * for users who share a joined room with one of our users: only then does
 * their server send us m.device_list_update and m.signing_key_update EDUs,
 * which keep the copy right. Each copy carries the stream position of the
 * owner's device list it reflects. An update whose prev_id we hold is applied
 * (keys set, or the device deleted); one we already reflect is ignored; one
 * that follows an update we never got means we missed something: the copy is
 * dropped and fetched whole again through user/devices. A copy of a user who
 * no longer shares a room with us is dropped when it is next read, because no
 * update would reach us any more.
 *
 * Everything a remote server says is checked: only its own users, only keys
 * whose user_id and device_id are what they are filed under, at most
 * MAX_REMOTE_DEVICES devices per user. Signatures are the clients' business
 * (the Rust crypto checks every one); the server only keeps what it is given.
 */
import { isValidUserId, serverNameOf, type JsonObject } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import type { ReadTxn, WriteTxn } from '../../storage/types.js';
import { getOwn, setOwn } from '../own-keys.js';
import type { RemoteServers } from './remote.js';

/** Most devices kept (and served) for one remote user. */
export const MAX_REMOTE_DEVICES = 1_000;
/** Users whose newest update arrived while we held no copy, remembered so an older snapshot is not kept. */
const SEEN_LIMIT = 10_000;
/** The field of our user/keys/query answer giving each user's device list stream position (Hometab peers only). */
export const STREAM_IDS_FIELD = 'org.hometab.device_list_stream_ids';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isStreamId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** One remote user's device list as this server knows it. */
export interface RemoteDeviceList {
  /** The owner's device list stream position this copy reflects; absent when their server did not say. */
  streamId?: number;
  /** Device ID → the device's signed keys. */
  devices: Record<string, JsonObject>;
  master?: JsonObject;
  selfSigning?: JsonObject;
}

const cacheKey = (userId: string) => `e2ee.remoteDeviceList:${userId}`;

/** The device keys object if it is one of `userId`'s `deviceId`, else undefined. */
function deviceKeysOf(value: unknown, userId: string, deviceId: string): JsonObject | undefined {
  if (!isObject(value) || value.user_id !== userId || value.device_id !== deviceId || !isObject(value.keys)) return undefined;
  return value as JsonObject;
}

/** The cross-signing key if it is `userId`'s key of that usage, else undefined. */
function crossSigningKeyOf(value: unknown, userId: string, usage: 'master' | 'self_signing'): JsonObject | undefined {
  if (!isObject(value) || value.user_id !== userId || !Array.isArray(value.usage) || !value.usage.includes(usage) || !isObject(value.keys)) return undefined;
  return value as JsonObject;
}

export class RemoteDeviceLists {
  /** Stream positions of updates that arrived for users we held no copy of (bounded, oldest forgotten first). */
  private readonly seenWithoutCopy = new Map<string, number>();
  private readonly resyncing = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: HomeserverContext,
    private readonly remote: RemoteServers,
  ) {}

  /** Whether one of our users shares a joined room with `userId` (only then do their updates reach us). */
  private async sharesRoom(txn: ReadTxn, userId: string): Promise<boolean> {
    for (const { roomId } of await txn.memberships.forUser(userId, 'join')) {
      for (const member of await txn.memberships.forRoom(roomId, 'join')) if (serverNameOf(member.userId) === this.ctx.serverName) return true;
    }
    return false;
  }

  /** The kept copies of these users' device lists; users without a usable copy are left out. */
  async cached(userIds: readonly string[]): Promise<Map<string, RemoteDeviceList>> {
    const found = new Map<string, RemoteDeviceList>();
    const stale: string[] = [];
    await this.ctx.storage.read(async (txn) => {
      for (const userId of userIds) {
        const copy = await txn.meta.get<RemoteDeviceList>(cacheKey(userId));
        if (!copy) continue;
        if (await this.sharesRoom(txn, userId)) found.set(userId, copy);
        else stale.push(userId);
      }
    });
    if (stale.length > 0) {
      await this.ctx.storage.write(async (txn) => {
        for (const userId of stale) if (!(await this.sharesRoom(txn, userId))) await txn.meta.delete(cacheKey(userId));
      });
    }
    return found;
  }

  /**
   * Keeps fresh copies fetched from `server` (a user/keys/query or user/devices answer, already checked), for
   * users who share a room with us, unless a newer copy is kept or an update newer than the copy came in since.
   */
  async keep(lists: Map<string, RemoteDeviceList>): Promise<void> {
    await this.ctx.storage.write(async (txn) => {
      for (const [userId, list] of lists) {
        const seen = this.seenWithoutCopy.get(userId);
        if (seen !== undefined && (list.streamId === undefined || list.streamId < seen)) continue;
        if (!(await this.sharesRoom(txn, userId))) continue;
        const kept = await txn.meta.get<RemoteDeviceList>(cacheKey(userId));
        if (kept?.streamId !== undefined && list.streamId !== undefined && kept.streamId > list.streamId) continue;
        await txn.meta.put(cacheKey(userId), list);
        this.seenWithoutCopy.delete(userId);
      }
    });
  }

  /**
   * Reads the device lists of `server`'s users out of its user/keys/query answer (every device of each user
   * asked about). Entries about other users, or filed under the wrong user or device, are dropped.
   */
  listsFromKeysQuery(server: string, userIds: readonly string[], body: Record<string, unknown>): Map<string, RemoteDeviceList> {
    const out = new Map<string, RemoteDeviceList>();
    const deviceKeys = isObject(body.device_keys) ? body.device_keys : {};
    const masters = isObject(body.master_keys) ? body.master_keys : {};
    const selfSigning = isObject(body.self_signing_keys) ? body.self_signing_keys : {};
    const streamIds = isObject(body[STREAM_IDS_FIELD]) ? (body[STREAM_IDS_FIELD] as Record<string, unknown>) : {};
    for (const userId of userIds) {
      if (serverNameOf(userId) !== server) continue;
      const list: RemoteDeviceList = { devices: Object.create(null) as Record<string, JsonObject> };
      const byDevice = getOwn(deviceKeys, userId);
      if (isObject(byDevice)) {
        for (const deviceId of Object.keys(byDevice).slice(0, MAX_REMOTE_DEVICES)) {
          const keys = deviceKeysOf(byDevice[deviceId], userId, deviceId);
          if (keys) setOwn(list.devices, deviceId, keys);
        }
      }
      const master = crossSigningKeyOf(getOwn(masters, userId), userId, 'master');
      if (master) list.master = master;
      const ssk = crossSigningKeyOf(getOwn(selfSigning, userId), userId, 'self_signing');
      if (ssk) list.selfSigning = ssk;
      const streamId = getOwn(streamIds, userId);
      if (isStreamId(streamId)) list.streamId = streamId;
      out.set(userId, list);
    }
    return out;
  }

  /**
   * An m.device_list_update from `origin` about one of its users (checked by the caller), in the EDU's write:
   * applied to our copy when it follows on from it, else the copy is dropped and a resync begins.
   * Returns why the EDU was refused, if it was.
   */
  async applyDeviceUpdate(txn: WriteTxn, content: Record<string, unknown>): Promise<string | undefined> {
    const userId = content.user_id as string;
    const { device_id: deviceId, stream_id: streamId, prev_id: prevIds, deleted } = content;
    if (typeof deviceId !== 'string' || !isStreamId(streamId)) return 'device list update needs device_id and stream_id';
    if (prevIds !== undefined && (!Array.isArray(prevIds) || prevIds.length > 100 || !prevIds.every(isStreamId))) return 'prev_id must be a list of stream IDs';
    const keys = content.keys === undefined ? undefined : deviceKeysOf(content.keys, userId, deviceId);
    if (content.keys !== undefined && !keys) return `keys in the device list update are not ${userId}'s ${deviceId}`;
    const copy = await txn.meta.get<RemoteDeviceList>(cacheKey(userId));
    if (!copy) {
      this.rememberSeen(userId, streamId);
      return undefined;
    }
    if (copy.streamId !== undefined && streamId <= copy.streamId) return undefined;
    const follows = copy.streamId !== undefined && ((prevIds as number[] | undefined) ?? []).every((id) => id <= copy.streamId!);
    if (!follows) {
      // We missed an update (or never knew where the copy stood): fetch the whole list again.
      await txn.meta.delete(cacheKey(userId));
      this.rememberSeen(userId, streamId);
      this.resyncLater(userId);
      return undefined;
    }
    const devices = Object.assign(Object.create(null) as Record<string, JsonObject>, copy.devices);
    if (deleted === true || !keys) delete devices[deviceId];
    else if (Object.hasOwn(devices, deviceId) || Object.keys(devices).length < MAX_REMOTE_DEVICES) setOwn(devices, deviceId, keys);
    await txn.meta.put(cacheKey(userId), { ...copy, streamId, devices });
    return undefined;
  }

  /** An m.signing_key_update from `origin` about one of its users (checked by the caller): new master / self-signing keys. */
  async applySigningKeyUpdate(txn: WriteTxn, content: Record<string, unknown>): Promise<string | undefined> {
    const userId = content.user_id as string;
    const master = content.master_key === undefined ? undefined : crossSigningKeyOf(content.master_key, userId, 'master');
    const ssk = content.self_signing_key === undefined ? undefined : crossSigningKeyOf(content.self_signing_key, userId, 'self_signing');
    if ((content.master_key !== undefined && !master) || (content.self_signing_key !== undefined && !ssk)) return `cross-signing keys in the update are not ${userId}'s`;
    const copy = await txn.meta.get<RemoteDeviceList>(cacheKey(userId));
    if (!copy) return undefined;
    await txn.meta.put(cacheKey(userId), { ...copy, ...(master ? { master } : {}), ...(ssk ? { selfSigning: ssk } : {}) });
    return undefined;
  }

  private rememberSeen(userId: string, streamId: number): void {
    this.seenWithoutCopy.delete(userId);
    this.seenWithoutCopy.set(userId, Math.max(streamId, this.seenWithoutCopy.get(userId) ?? 0));
    if (this.seenWithoutCopy.size > SEEN_LIMIT) this.seenWithoutCopy.delete(this.seenWithoutCopy.keys().next().value!);
  }

  private resyncLater(userId: string): void {
    // After the EDU's write has committed; one resync per user at a time.
    setTimeout(() => void this.resync(userId), 0);
  }

  /** Fetches a remote user's whole device list through GET user/devices and keeps it (the gap repair). */
  resync(userId: string): Promise<void> {
    const running = this.resyncing.get(userId);
    if (running) return running;
    const work = (async () => {
      const server = serverNameOf(userId);
      const body = await this.remote.call(server, 'fetch the device list', { method: 'GET', path: `/_matrix/federation/v1/user/devices/${encodeURIComponent(userId)}` });
      const list = this.listFromUserDevices(userId, body);
      if (list) await this.keep(new Map([[userId, list]]));
    })()
      .catch((error) => this.ctx.log.warn(`device list of ${userId} not resynced`, error))
      .finally(() => this.resyncing.delete(userId));
    this.resyncing.set(userId, work);
    return work;
  }

  /** Reads a user/devices answer; undefined if it is about someone else or has no stream_id. */
  listFromUserDevices(userId: string, body: Record<string, unknown>): RemoteDeviceList | undefined {
    if (body.user_id !== userId || !isStreamId(body.stream_id) || !Array.isArray(body.devices)) return undefined;
    const list: RemoteDeviceList = { streamId: body.stream_id, devices: Object.create(null) as Record<string, JsonObject> };
    for (const device of body.devices.slice(0, MAX_REMOTE_DEVICES)) {
      if (!isObject(device) || typeof device.device_id !== 'string') continue;
      const keys = deviceKeysOf(device.keys, userId, device.device_id);
      if (keys) setOwn(list.devices, device.device_id, keys);
    }
    const master = crossSigningKeyOf(body.master_key, userId, 'master');
    if (master) list.master = master;
    const ssk = crossSigningKeyOf(body.self_signing_key, userId, 'self_signing');
    if (ssk) list.selfSigning = ssk;
    return list;
  }
}

/** A remote user's master key as kept in the cache, if any (what a local user's user-signing key may sign). */
export async function cachedMasterKey(txn: ReadTxn, userId: string): Promise<JsonObject | undefined> {
  return (await txn.meta.get<RemoteDeviceList>(cacheKey(userId)))?.master;
}

/** Whether `value` names a user of `server`. */
export function isUserOf(value: unknown, server: string): value is string {
  return isValidUserId(value) && serverNameOf(value) === server;
}
