/**
 * Whose device lists a user must re-fetch: the `changed` and `left` lists of
 * GET /keys/changes and of /sync's `device_lists`. A user cares about the
 * devices of everyone who shares a joined room with them (and their own). So,
 * between two stream positions:
 * - changed: users with a recorded device list change (storage.deviceLists)
 *   who share a room with the user now, plus users who newly share a room
 *   (someone joined one of the user's rooms, or the user joined a room: its
 *   members' devices are news to them, as in Synapse);
 * - left: users who stopped sharing any room with the user in the window (the
 *   user or they left, were kicked or banned).
 * Membership is judged by current state, which is what a client acts on.
 */
import { serverNameOf, type JsonObject } from '../../core/index.js';
import type { EventRecord, ReadTxn, WriteTxn } from '../../storage/types.js';
import { joinedServers } from '../federation/edus.js';
import { parseSyncToken } from '../sync/tokens.js';

export interface DeviceListDelta {
  changed: string[];
  left: string[];
}

/**
 * The stream position in a sync token (`s{stream}_{typing}`, see
 * sync/tokens.ts); a bare number is accepted too. Undefined if the token is
 * not one of ours.
 */
export function streamPositionOfToken(token: string): number | undefined {
  const sync = parseSyncToken(token);
  if (sync) return sync.stream;
  return /^\d{1,15}$/.test(token) ? Number(token) : undefined;
}

/** Users sharing at least one joined room with `userId`, the user included. */
export async function usersSharingRooms(txn: ReadTxn, userId: string): Promise<Set<string>> {
  const shared = new Set<string>([userId]);
  for (const { roomId } of await txn.memberships.forUser(userId, 'join')) {
    for (const member of await txn.memberships.forRoom(roomId, 'join')) shared.add(member.userId);
  }
  return shared;
}

/** What happened in a stream window (from, to] that can change whose devices a user must know. */
export interface DeviceListWindow {
  userId: string;
  /** Start of the window (exclusive); member events at or before it are ignored. */
  from: number;
  /** Users with a recorded device list change in the window (storage.deviceLists). */
  listChanges: readonly string[];
  /** Rooms the user joined in the window: their members are news. */
  newlyJoinedRooms: readonly string[];
  /** Rooms the user stopped being joined to in the window: their members may be gone. */
  leftRooms: readonly string[];
  /** m.room.member events in the user's joined rooms (others' events count; the user's own are skipped). */
  memberEvents: readonly EventRecord[];
  /** Users sharing a joined room with the user now, the user included; called at most once. */
  sharedUsers(): Promise<Set<string>>;
}

/**
 * The device list delta of a window: the one rule that both /sync's
 * device_lists and GET /keys/changes answer with, so the two always agree.
 */
export async function deviceListDelta(txn: ReadTxn, window: DeviceListWindow): Promise<DeviceListDelta> {
  const { userId } = window;
  const changed = new Set<string>();
  const candidatesLeft = new Set<string>();
  let shared: Promise<Set<string>> | undefined;
  const sharedUsers = () => (shared ??= window.sharedUsers());

  if (window.listChanges.length > 0) {
    const users = await sharedUsers();
    for (const changedUser of window.listChanges) if (users.has(changedUser)) changed.add(changedUser);
  }
  for (const roomId of window.newlyJoinedRooms) {
    for (const m of await txn.memberships.forRoom(roomId, 'join')) if (m.userId !== userId) changed.add(m.userId);
  }
  for (const record of window.memberEvents) {
    const target = record.event.state_key;
    if (typeof target !== 'string' || target === userId || (record.streamOrdering ?? 0) <= window.from) continue;
    const membership = record.event.content.membership;
    if (membership === 'join') changed.add(target);
    else if (membership === 'leave' || membership === 'ban') candidatesLeft.add(target);
  }
  for (const roomId of window.leftRooms) {
    for (const m of await txn.memberships.forRoom(roomId, 'join')) if (m.userId !== userId) candidatesLeft.add(m.userId);
  }
  const left: string[] = [];
  if (candidatesLeft.size > 0) {
    const users = await sharedUsers();
    for (const candidate of candidatesLeft) {
      if (users.has(candidate)) continue;
      left.push(candidate);
      changed.delete(candidate);
    }
  }
  return { changed: [...changed], left };
}

/** Device list changes that concern `userId` in the stream window (from, to], read from storage (GET /keys/changes). */
export async function deviceListChanges(txn: ReadTxn, userId: string, from: number, to?: number): Promise<DeviceListDelta> {
  const listChanges = await txn.deviceLists.changes({ from, to });
  const members = (await txn.timeline.rangeAll({ dir: 'f', from, to })).filter((r) => r.event.type === 'm.room.member');
  if (listChanges.length === 0 && members.length === 0) return { changed: [], left: [] };

  const myRooms = new Set((await txn.memberships.forUser(userId, 'join')).map((m) => m.roomId));
  const newlyJoinedRooms: string[] = [];
  const leftRooms: string[] = [];
  const memberEvents: EventRecord[] = [];
  for (const record of members) {
    const membership = record.event.content.membership;
    if (record.event.state_key !== userId) {
      if (myRooms.has(record.roomId)) memberEvents.push(record);
    } else if (membership === 'join') {
      newlyJoinedRooms.push(record.roomId);
    } else if (membership === 'leave' || membership === 'ban') {
      leftRooms.push(record.roomId);
    }
  }
  return deviceListDelta(txn, {
    userId,
    from,
    listChanges,
    newlyJoinedRooms,
    leftRooms,
    memberEvents,
    sharedUsers: () => usersSharingRooms(txn, userId),
  });
}

/** What changed in a local user's device list: devices (added, renamed, re-keyed or deleted) and/or cross-signing keys. */
export interface DeviceListChangeDetail {
  devices?: readonly string[];
  /** The master or self-signing key (what other users see) changed. */
  crossSigning?: boolean;
}

/** Meta key of a local user's last device list stream position (the `prev_id` of their next update). */
const streamKey = (userId: string) => `e2ee.deviceListStream:${userId}`;

/** A local user's last device list stream position, 0 before any (user/devices and user/keys/query report it). */
export async function deviceListStreamOf(txn: ReadTxn, userId: string): Promise<number> {
  return (await txn.meta.get<number>(streamKey(userId))) ?? 0;
}

/** The other servers with joined members in any room where `userId` is joined. */
async function serversSharingRooms(txn: ReadTxn, userId: string): Promise<Set<string>> {
  const own = serverNameOf(userId);
  const servers = new Set<string>();
  for (const { roomId } of await txn.memberships.forUser(userId, 'join')) {
    for (const server of await joinedServers(txn, roomId, own)) servers.add(server);
  }
  return servers;
}

/**
 * Records that a local user's devices or keys changed, in the caller's write: for local /sync (storage's
 * device list changes) and, queued in the same write, for every other server sharing a joined room with the
 * user (federation "Device management"): one m.device_list_update per device, each with its own stream_id and
 * the previous one as prev_id (a receiver that sees a prev_id it never got knows it missed one and resyncs
 * through user/devices), carrying the device's keys or `deleted`; and an m.signing_key_update when the
 * master or self-signing key changed. The user-signing key never leaves the server.
 */
export async function recordDeviceListChange(txn: WriteTxn, userId: string, detail: DeviceListChangeDetail = {}): Promise<void> {
  const devices = [...new Set(detail.devices ?? [])];
  const servers = await serversSharingRooms(txn, userId);
  if (devices.length === 0) await txn.deviceLists.add(userId);
  let prev = devices.length > 0 ? await deviceListStreamOf(txn, userId) : 0;
  for (const deviceId of devices) {
    const change = await txn.deviceLists.add(userId);
    if (servers.size > 0) {
      const device = await txn.devices.get(userId, deviceId);
      const content: JsonObject = { user_id: userId, device_id: deviceId, stream_id: change.streamOrdering, prev_id: prev > 0 ? [prev] : [] };
      if (!device) content.deleted = true;
      else {
        if (device.displayName !== undefined) content.device_display_name = device.displayName;
        const keys = await txn.deviceKeys.get(userId, deviceId);
        if (keys) content.keys = keys.keys;
      }
      for (const server of servers) await txn.outbound.enqueue(server, { edu: { edu_type: 'm.device_list_update', content } });
    }
    prev = change.streamOrdering;
  }
  if (devices.length > 0) await txn.meta.put(streamKey(userId), prev);
  if (detail.crossSigning && servers.size > 0) {
    const content: JsonObject = { user_id: userId };
    for (const record of await txn.crossSigningKeys.forUser(userId)) {
      if (record.keyType === 'master') content.master_key = record.keys;
      else if (record.keyType === 'self_signing') content.self_signing_key = record.keys;
    }
    for (const server of servers) await txn.outbound.enqueue(server, { edu: { edu_type: 'm.signing_key_update', content } });
  }
}
