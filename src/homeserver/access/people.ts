/**
 * Who may see whom outside a room's timeline: presence and the user
 * directory. The rule is Synapse's default: a user sees people they share a
 * room with (both joined now), and the directory adds the members of public
 * rooms (publicly joinable or world_readable: anyone could read their member
 * list anyway), as with `user_directory.search_all_users: false`. Strangers
 * learn nothing, not even whether a user exists.
 *
 * The cost is a scan of memberships: the user's joined rooms for presence,
 * and for the directory every room's join rule and history visibility. A
 * Hometab server holds the rooms of a handful of local users, so this stays
 * small; a big server would keep a table of public rooms instead.
 */
import type { ReadTxn } from '../../storage/types.js';

/** Whether `observer` may see `target`: the same user, or both joined to some room now. */
export async function sharesRoom(txn: ReadTxn, observer: string, target: string): Promise<boolean> {
  if (observer === target) return true;
  for (const { roomId } of await txn.memberships.forUser(observer, 'join')) {
    if ((await txn.memberships.get(roomId, target))?.membership === 'join') return true;
  }
  return false;
}

/** Whether anyone may join or read the room, so its member list is no secret. */
async function isPublicRoom(txn: ReadTxn, roomId: string): Promise<boolean> {
  const ids = [await txn.currentState.get(roomId, 'm.room.join_rules', ''), await txn.currentState.get(roomId, 'm.room.history_visibility', '')];
  const records = await txn.events.getMany(ids.filter((id): id is string => id !== undefined));
  const [joinRules, visibility] = ids.map((id) => (id === undefined ? undefined : records.get(id)?.event.content));
  // Both fields survive redaction, so the stored content is the truth.
  return joinRules?.join_rule === 'public' || visibility?.history_visibility === 'world_readable';
}

/** The users `searcher` may find in the user directory: themselves, people they share a room with, members of public rooms. */
export async function visibleInDirectory(txn: ReadTxn, searcher: string): Promise<Set<string>> {
  const out = new Set([searcher]);
  const mine = new Set((await txn.memberships.forUser(searcher, 'join')).map((m) => m.roomId));
  for (const { roomId } of await txn.rooms.list()) {
    if (!mine.has(roomId) && !(await isPublicRoom(txn, roomId))) continue;
    for (const member of await txn.memberships.forRoom(roomId, 'join')) out.add(member.userId);
  }
  return out;
}
