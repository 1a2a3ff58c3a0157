/**
 * deviceListChanges: whose devices a user must re-fetch between two stream
 * positions. Rooms are simulated by writing membership events and records
 * straight into storage, so the rules can be checked without a room engine.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PDU } from '../../../src/core/index.js';
import { deviceListChanges } from '../../../src/homeserver/keys/device-lists.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Membership, Storage } from '../../../src/storage/types.js';

const ALICE = '@alice:hs.test';
const BOB = '@bob:hs.test';
const CAROL = '@carol:hs.test';
const DAN = '@dan:hs.test';
let storage: Storage;
let serial = 0;

beforeEach(() => {
  storage = createMemoryStorage();
});
afterEach(() => storage.close());

/** Records a membership as the room engine would: the event on the timeline and the membership row. */
async function member(roomId: string, userId: string, membership: Membership): Promise<void> {
  const eventId = `$m${++serial}`;
  const event: PDU = {
    room_id: roomId,
    sender: userId,
    type: 'm.room.member',
    state_key: userId,
    content: { membership },
    origin_server_ts: 0,
    prev_events: [],
    auth_events: [],
    depth: serial,
  };
  await storage.write(async (txn) => {
    await txn.events.add({ eventId, roomId, event });
    await txn.memberships.set({ roomId, userId, membership, eventId });
  });
}

const position = () => storage.read((txn) => txn.stream.current());
const changes = (userId: string, from: number, to?: number) => storage.read((txn) => deviceListChanges(txn, userId, from, to));
const keysChanged = (userId: string) => storage.write((txn) => txn.deviceLists.add(userId));

describe('deviceListChanges', () => {
  it('reports key changes of the user and of users sharing a room, not of strangers', async () => {
    await member('!r', ALICE, 'join');
    await member('!r', BOB, 'join');
    await member('!other', CAROL, 'join');
    const from = await position();
    await keysChanged(BOB);
    await keysChanged(CAROL);
    await keysChanged(ALICE);
    const result = await changes(ALICE, from);
    expect(result.changed.sort()).toEqual([ALICE, BOB]);
    expect(result.left).toEqual([]);
  });

  it('reports a user who joins a shared room as changed', async () => {
    await member('!r', ALICE, 'join');
    const from = await position();
    await member('!r', BOB, 'join');
    expect(await changes(ALICE, from)).toEqual({ changed: [BOB], left: [] });
  });

  it("reports a room's members as changed when the user joins it", async () => {
    await member('!r', BOB, 'join');
    await member('!r', CAROL, 'join');
    const from = await position();
    await member('!r', ALICE, 'join');
    const result = await changes(ALICE, from);
    expect(result.changed.sort()).toEqual([BOB, CAROL]);
  });

  it('reports users as left once no room is shared any more, not while one still is', async () => {
    await member('!r', ALICE, 'join');
    await member('!s', ALICE, 'join');
    await member('!r', BOB, 'join');
    await member('!r', CAROL, 'join');
    await member('!s', CAROL, 'join');
    const from = await position();
    await member('!r', ALICE, 'leave');
    const result = await changes(ALICE, from);
    expect(result).toEqual({ changed: [], left: [BOB] });
  });

  it('reports another user leaving the only shared room as left', async () => {
    await member('!r', ALICE, 'join');
    await member('!r', BOB, 'join');
    await member('!x', DAN, 'join');
    const from = await position();
    await member('!r', BOB, 'leave');
    await member('!x', DAN, 'leave'); // never shared a room with Alice: not her concern
    expect(await changes(ALICE, from)).toEqual({ changed: [], left: [BOB] });
  });

  it('respects the upper bound of the window', async () => {
    await member('!r', ALICE, 'join');
    await member('!r', BOB, 'join');
    const from = await position();
    await keysChanged(BOB);
    const to = await position();
    await keysChanged(ALICE);
    expect(await changes(ALICE, from, to)).toEqual({ changed: [BOB], left: [] });
  });
});
