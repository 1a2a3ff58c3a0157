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
import type { EventRecord, ReadTxn } from '../../storage/types.js';
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

/**
 * Device list changes that concern `userId` in the stream window (from, to].
 * `memberEvents` may pass the window's m.room.member timeline events when the
 * caller already has them (sync does), saving a read of the timeline.
 */
export async function deviceListChanges(
  txn: ReadTxn,
  userId: string,
  from: number,
  to?: number,
  memberEvents?: readonly EventRecord[],
): Promise<DeviceListDelta> {
  const changedUsers = await txn.deviceLists.changes({ from, to });
  const members =
    memberEvents ?? (await txn.timeline.rangeAll({ dir: 'f', from, to })).filter((r) => r.event.type === 'm.room.member');
  if (changedUsers.length === 0 && members.length === 0) return { changed: [], left: [] };

  const shared = await usersSharingRooms(txn, userId);
  const changed = new Set<string>(changedUsers.filter((u) => shared.has(u)));
  const candidatesLeft = new Set<string>();
  const myRooms = new Set((await txn.memberships.forUser(userId, 'join')).map((m) => m.roomId));

  for (const record of members) {
    const target = record.event.state_key;
    if (typeof target !== 'string') continue;
    const membership = (record.event.content as { membership?: unknown }).membership;
    if (target === userId) {
      // The user's own membership changed: every member of that room is news (joined) or may be gone (left).
      const roomMembers = await txn.memberships.forRoom(record.roomId, 'join');
      for (const m of roomMembers) {
        if (m.userId === userId) continue;
        if (membership === 'join') changed.add(m.userId);
        else candidatesLeft.add(m.userId);
      }
    } else if (myRooms.has(record.roomId)) {
      if (membership === 'join' && shared.has(target)) changed.add(target);
      else if (membership !== 'join') candidatesLeft.add(target);
    }
  }
  const left = [...candidatesLeft].filter((u) => !shared.has(u));
  for (const u of left) changed.delete(u);
  return { changed: [...changed], left };
}
