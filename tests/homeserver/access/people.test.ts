// access/people.ts on its own: who shares a room with whom, and who may be found in the user directory,
// over memberships written straight into memory storage.
import { afterEach, describe, expect, test } from 'vitest';
import { stateKeyOf, type PDU } from '../../../src/core/index.js';
import { sharesRoom, visibleInDirectory } from '../../../src/homeserver/access/people.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Membership, ReadTxn, Storage } from '../../../src/storage/types.js';

let storage: Storage;
afterEach(async () => storage?.close());

let counter = 0;

/** A room with the given state events (type, content) and memberships, as the engine would record them. */
async function room(roomId: string, state: Record<string, Record<string, unknown>>, members: Record<string, Membership>): Promise<void> {
  await storage.write(async (txn) => {
    await txn.rooms.put({ roomId, roomVersion: '12', creator: '@alice:hs.test', createdAt: 0 });
    const delta = new Map<string, string | null>();
    const add = async (type: string, stateKey: string, content: Record<string, unknown>) => {
      const eventId = `$e${++counter}`;
      const event = { type, state_key: stateKey, content, sender: '@alice:hs.test', room_id: roomId } as unknown as PDU;
      await txn.events.add({ eventId, roomId, event, depth: counter });
      delta.set(stateKeyOf(type, stateKey), eventId);
      return eventId;
    };
    for (const [type, content] of Object.entries(state)) await add(type, '', content);
    for (const [userId, membership] of Object.entries(members)) {
      const eventId = await add('m.room.member', userId, { membership });
      await txn.memberships.set({ roomId, userId, membership, eventId });
    }
    await txn.currentState.apply(roomId, delta);
  });
}

const read = <T>(fn: (txn: ReadTxn) => Promise<T>): Promise<T> => storage.read(fn);

describe('people', () => {
  test('sharesRoom: oneself, or both joined to one room now', async () => {
    storage = createMemoryStorage();
    await room('!private:hs.test', { 'm.room.join_rules': { join_rule: 'invite' } }, {
      '@alice:hs.test': 'join',
      '@bob:hs.test': 'join',
      '@carol:hs.test': 'invite',
      '@dave:hs.test': 'leave',
      '@erin:hs.test': 'ban',
    });
    const shares = (a: string, b: string) => read((txn) => sharesRoom(txn, a, b));
    expect(await shares('@alice:hs.test', '@bob:hs.test')).toBe(true);
    expect(await shares('@bob:hs.test', '@alice:hs.test')).toBe(true);
    expect(await shares('@zed:hs.test', '@zed:hs.test')).toBe(true);
    for (const other of ['@carol:hs.test', '@dave:hs.test', '@erin:hs.test', '@nobody:hs.test']) {
      expect(await shares('@alice:hs.test', other)).toBe(false);
      expect(await shares(other, '@alice:hs.test')).toBe(false);
    }
  });

  test('visibleInDirectory: oneself, people sharing a room, joined members of public or world_readable rooms', async () => {
    storage = createMemoryStorage();
    await room('!private:hs.test', { 'm.room.join_rules': { join_rule: 'invite' } }, { '@alice:hs.test': 'join', '@bob:hs.test': 'join', '@carol:hs.test': 'invite' });
    await room('!public:hs.test', { 'm.room.join_rules': { join_rule: 'public' } }, { '@dave:hs.test': 'join', '@erin:hs.test': 'leave' });
    await room('!readable:hs.test', { 'm.room.join_rules': { join_rule: 'invite' }, 'm.room.history_visibility': { history_visibility: 'world_readable' } }, { '@fay:hs.test': 'join' });
    await room('!knock:hs.test', { 'm.room.join_rules': { join_rule: 'knock' } }, { '@gus:hs.test': 'join' });
    const visible = async (searcher: string) => [...(await read((txn) => visibleInDirectory(txn, searcher)))].sort();
    expect(await visible('@alice:hs.test')).toEqual(['@alice:hs.test', '@bob:hs.test', '@dave:hs.test', '@fay:hs.test']);
    // Invited is not joined: Carol sees only the public rooms' members, and nobody sees her through the private room.
    expect(await visible('@carol:hs.test')).toEqual(['@carol:hs.test', '@dave:hs.test', '@fay:hs.test']);
    expect(await visible('@gus:hs.test')).toEqual(['@dave:hs.test', '@fay:hs.test', '@gus:hs.test']);
  });
});
