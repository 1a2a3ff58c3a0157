// The access module on its own (access/room-access.ts): the history visibility algorithm as a table,
// and the room gate, readable state and event filtering over small in-memory rooms (fixtures/rooms.json).
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { stateKeyOf, type PDU } from '../../../src/core/index.js';
import {
  checkUserMayRead,
  isEventVisible,
  isEventVisibleToServer,
  readableState,
  serverMayRead,
  stateWithoutGrant,
  userMayRead,
  visibleEvents,
  withinHorizon,
  type ReadGrant,
} from '../../../src/homeserver/access/room-access.js';
import { MatrixError } from '../../../src/homeserver/http/errors.js';
import { MemoryAccessReader, type FixtureEvent } from './memory-reader.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8'));

interface EventCase {
  name: string;
  hv: string | null;
  before: string | null;
  joinedLater: boolean;
  event?: Pick<PDU, 'type' | 'state_key' | 'content'>;
  visible: boolean;
}
interface ServerEventCase {
  name: string;
  hv: string | null;
  memberships: string[];
  visible: boolean;
}
interface GateCase {
  room: string;
  user: string;
  forgotten?: boolean;
  forbidden?: boolean;
  horizon?: string | null;
  name?: string | null;
  visible?: string[] | 'all';
}
interface ServerCase {
  room: string;
  server: string;
  mayRead: boolean;
}

const visibility = fixture('visibility.json') as { cases: EventCase[]; serverCases: ServerEventCase[] };
const rooms = fixture('rooms.json') as { rooms: Record<string, FixtureEvent[]>; gateCases: GateCase[]; serverCases: ServerCase[] };
const MESSAGE = { type: 'm.room.message', content: { body: 'hi' } };

describe('isEventVisible (the spec algorithm, pure)', () => {
  test.each(visibility.cases)('$name', (c) => {
    const input = {
      userId: '@u:hs.test',
      event: c.event ?? MESSAGE,
      historyVisibility: c.hv ?? undefined,
      membershipBefore: c.before ?? undefined,
      joinedLater: c.joinedLater,
    };
    expect(isEventVisible(input)).toBe(c.visible);
  });
});

describe('isEventVisibleToServer (the federation seam, pure)', () => {
  test.each(visibility.serverCases)('$name', (c) => {
    expect(isEventVisibleToServer({ historyVisibility: c.hv ?? undefined, memberships: c.memberships })).toBe(c.visible);
  });
});

/** A reader holding the one room (event IDs are unique within a room only). */
function readerFor(c: { room: string; user?: string; forgotten?: boolean }): MemoryAccessReader {
  const reader = new MemoryAccessReader(c.room in rooms.rooms ? { [c.room]: rooms.rooms[c.room]! } : {});
  if (c.forgotten) reader.forgotten.add(JSON.stringify([c.user, c.room]));
  return reader;
}

/** The algorithm spelled out event by event, without the shortcuts visibleEvents takes. */
async function oracle(reader: MemoryAccessReader, roomId: string, grant: ReadGrant) {
  const { view } = grant;
  const former =
    (view.membership === 'leave' || view.membership === 'ban') && (await reader.previousMembership(view.memberEvent!)) === 'join';
  const out: string[] = [];
  for (const record of reader.timelines.get(roomId) ?? []) {
    const before = (await reader.stateBefore(record))!;
    const joinedLater = view.membership === 'join' || (former && record.streamOrdering! <= view.memberEvent!.streamOrdering!);
    const visible = isEventVisible({
      userId: view.userId,
      event: record.event,
      historyVisibility: await reader.stateValue(before.get(stateKeyOf('m.room.history_visibility', '')), 'history_visibility'),
      membershipBefore: await reader.stateValue(before.get(stateKeyOf('m.room.member', view.userId)), 'membership'),
      joinedLater,
    });
    if (visible) out.push(record.eventId);
  }
  return out;
}

describe('checkUserMayRead, readableState, visibleEvents (in-memory rooms)', () => {
  test.each(rooms.gateCases)('$room as $user (forgotten: $forgotten)', async (c) => {
    const reader = readerFor(c);
    if (c.forbidden) {
      const refused = await checkUserMayRead(reader, c.room, c.user).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(MatrixError);
      expect(refused).toMatchObject({ status: 403, errcode: 'M_FORBIDDEN' });
      expect(await userMayRead(reader, c.room, c.user)).toBeUndefined();
      return;
    }
    const grant = await checkUserMayRead(reader, c.room, c.user);
    expect(grant.horizon?.eventId ?? null).toBe(c.horizon);
    const state = await readableState(reader, c.room, grant);
    expect(state.get(stateKeyOf('m.room.name', '')) ?? null).toBe(c.name);

    const timeline = reader.timelines.get(c.room)!;
    const visible = (await visibleEvents(reader, c.room, grant.view, timeline)).map((r) => r.eventId);
    expect(visible).toEqual(c.visible === 'all' ? timeline.map((r) => r.eventId) : c.visible);
    // The shortcuts give the algorithm's answers, and nothing visible lies past the horizon.
    expect(visible).toEqual(await oracle(reader, c.room, grant));
    for (const id of visible) expect(withinHorizon(grant, reader.events.get(id)!)).toBe(true);
  });

  test('/joined_members and /aliases ask without former members: they get 403', async () => {
    const reader = readerFor({ room: 'shared' });
    await expect(checkUserMayRead(reader, 'shared', '@bob:hs.test', { formerMembers: false })).rejects.toMatchObject({ status: 403 });
    expect((await checkUserMayRead(reader, 'shared', '@alice:hs.test', { formerMembers: false })).horizon).toBeUndefined();
    // A world_readable room is open to them as to anyone.
    expect((await checkUserMayRead(readerFor({ room: 'world-readable' }), 'world-readable', '@bob:hs.test', { formerMembers: false })).horizon).toBeUndefined();
  });

  test('rejected and soft-failed events are never visible, even to members', async () => {
    const reader = readerFor({ room: 'shared' });
    const grant = await checkUserMayRead(reader, 'shared', '@alice:hs.test');
    const m2 = reader.events.get('$m2')!;
    const m3 = reader.events.get('$m3')!;
    const kept = await visibleEvents(reader, 'shared', grant.view, [{ ...m2, rejected: 'auth' }, { ...m3, softFailed: true }, m3]);
    expect(kept.map((r) => r.eventId)).toEqual(['$m3']);
  });

  test('stateWithoutGrant: only the user\'s own member event', async () => {
    const reader = readerFor({ room: 'invite-rejected' });
    const state = (await reader.stateAfter(reader.events.get('$dl')!))!;
    expect([...stateWithoutGrant('@dave:hs.test', state)]).toEqual([[stateKeyOf('m.room.member', '@dave:hs.test'), '$dl']]);
    expect(stateWithoutGrant('@nobody:hs.test', state).size).toBe(0);
  });

  test('withinHorizon: up to and including the departure', async () => {
    const reader = readerFor({ room: 'shared' });
    const grant = await checkUserMayRead(reader, 'shared', '@bob:hs.test');
    expect(['$m2', '$bl', '$name2'].map((id) => withinHorizon(grant, reader.events.get(id)!))).toEqual([true, true, false]);
  });
});

describe('serverMayRead (the federation seam)', () => {
  test.each(rooms.serverCases)('$server in $room', async (c) => {
    expect(await serverMayRead(readerFor(c), c.room, c.server)).toBe(c.mayRead);
  });
});
