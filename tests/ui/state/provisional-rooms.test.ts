// The room list before matrix-js-sdk is up (src/ui/state/provisional-rooms.ts) against a real homeserver in
// process: one GET /sync without `since` gives the same rows, in the same order, as the SDK's first sync
// (named, unnamed and direct rooms, unread counts, an invite with its inviter); RoomsState keeps those rows
// while the client's first sync is processed and switches to the client's list without a change; an invite
// accepted from the provisional list waits for the client; and the provisional sync acknowledges no
// to-device message (the room keys the SDK's crypto needs from its own first sync).
import { describe, expect, it } from 'vitest';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import type { TestServer } from '../../homeserver/harness.js';
import type { ClientApiGet } from '../../../src/ui/state/host.js';
import { fetchProvisionalRooms, PROVISIONAL_SYNC_FILTER, provisionalRoomsOf } from '../../../src/ui/state/provisional-rooms.js';
import { RoomsState, type RoomSummary } from '../../../src/ui/state/rooms.svelte.js';
import { eventually, fetchFnOf, serverPerTest, startClientFor } from './support.js';

const world = serverPerTest();

type Credentials = { userId: string; accessToken: string; deviceId: string };

function apiOf(server: TestServer, user: Credentials): ClientApiGet {
  return (path) => server.homeserver.handleClient(new Request(server.baseUrl + path, { headers: { authorization: `Bearer ${user.accessToken}` } }));
}

/** What the list shows of a row (the order of rows is the list's). */
function shown(rows: RoomSummary[]) {
  return rows.map(({ id, name, membership, unread, inviter, inviterName, encrypted }) => ({ id, name, membership, unread, inviter, inviterName, encrypted }));
}

/** A client of `user` as src/app/boot.ts makes it, not started yet. */
function unstartedClient(server: TestServer, user: Credentials): MatrixClient {
  const client = createClient({ baseUrl: server.baseUrl, fetchFn: fetchFnOf(server), userId: user.userId, accessToken: user.accessToken, deviceId: user.deviceId, timelineSupport: true });
  world.clients.push(client);
  return client;
}

/**
 * Ann's rooms: "Book club" (Ben sent three messages she has not read), an unnamed room of Cat's with Ben
 * (named by its heroes), a direct chat Ben started (an encrypted invite, named by its inviter), and Ann's
 * client stopped (the tab closed). Returns Ann's credentials and the room IDs.
 */
async function annsRooms(server: TestServer) {
  const annUser = await server.register('ann');
  const ann = await startClientFor(server, annUser);
  world.clients.push(ann);
  await ann.setDisplayName('Ann');
  const ben = await world.user('ben', 'Ben');
  const cat = await world.user('cat', 'Cat');
  const annRooms = world.keep(new RoomsState(ann));

  const bookClub = await annRooms.create({ name: 'Book club' });
  await annRooms.invite(bookClub, ben.client.getUserId()!);
  await eventually('ben is invited', () => ben.rooms.invites.length === 1);
  await ben.rooms.accept(bookClub);

  const { room_id: unnamed } = await cat.client.createRoom({ invite: [annUser.userId, ben.client.getUserId()!] });
  await eventually('ann is invited to the unnamed room', () => annRooms.invites.some((r) => r.id === unnamed));
  await eventually('ben is invited to the unnamed room', () => ben.rooms.invites.some((r) => r.id === unnamed));
  await annRooms.accept(unnamed);
  await ben.rooms.accept(unnamed);
  await cat.client.sendTextMessage(unnamed, 'hello both');

  for (const body of ['one', 'two', 'three']) await ben.client.sendTextMessage(bookClub, body);
  const direct = await ben.rooms.startDirect(annUser.userId);
  await eventually('ann sees the direct chat invite', () => annRooms.invites.some((r) => r.id === direct));
  await eventually('ann has the unread messages', () => annRooms.rooms.find((r) => r.id === bookClub)?.unread === 3);
  ann.stopClient();
  return { annUser, bookClub, unnamed, direct, ben };
}

describe('the provisional room list', () => {
  it('shows the rows the SDK will show, keeps them while its first sync is processed, then switches without a change', async () => {
    const server = world.server;
    const { annUser, bookClub, unnamed, direct } = await annsRooms(server);

    const rows = await fetchProvisionalRooms(apiOf(server, annUser), annUser.userId);
    const rooms = world.keep(new RoomsState());
    expect(rooms.listed).toBe(false);
    rooms.showProvisional(rows);
    expect(rooms.provisional).toBe(true);
    expect(rooms.listed).toBe(true);
    expect(rooms.loaded).toBe(false);
    const provisional = shown(rooms.rooms);
    expect(provisional).toEqual([
      { id: direct, name: 'Ben', membership: 'invite', unread: 0, inviter: `@ben:${server.serverName}`, inviterName: 'Ben', encrypted: true },
      { id: bookClub, name: 'Book club', membership: 'join', unread: 3, inviter: undefined, inviterName: undefined, encrypted: false },
      { id: unnamed, name: 'Ben and Cat', membership: 'join', unread: 1, inviter: undefined, inviterName: undefined, encrypted: false },
    ]);
    rooms.select(bookClub);

    // The tab's client starts: until its first sync is applied, the list stays the provisional one.
    const client = unstartedClient(server, annUser);
    const seenDuringSync: Array<ReturnType<typeof shown>> = [];
    const record = () => seenDuringSync.push(shown(rooms.rooms));
    rooms.attach(client);
    client.on('Room' as never, record as never);
    client.on('Room.timeline' as never, record as never);
    client.on('Room.name' as never, record as never);
    await client.startClient({ initialSyncLimit: 30, lazyLoadMembers: true, pendingEventOrdering: 'detached' as never });
    await eventually('the client list', () => rooms.loaded);
    expect(seenDuringSync.length).toBeGreaterThan(0);
    for (const seen of seenDuringSync) expect(seen).toEqual(provisional);
    expect(rooms.provisional).toBe(false);
    expect(shown(rooms.rooms)).toEqual(provisional);
    expect(rooms.selectedId).toBe(bookClub);

    // Too late to replace the client's list.
    rooms.showProvisional([]);
    expect(shown(rooms.rooms)).toEqual(provisional);
  });

  it('accepts an invite from the provisional list once the client has synced', async () => {
    const server = world.server;
    const { annUser, direct } = await annsRooms(server);
    const rooms = world.keep(new RoomsState());
    rooms.showProvisional(await fetchProvisionalRooms(apiOf(server, annUser), annUser.userId));
    expect(rooms.invites.map((r) => r.id)).toEqual([direct]);

    const accepted = rooms.accept(direct);
    const client = unstartedClient(server, annUser);
    rooms.attach(client);
    await client.startClient({ initialSyncLimit: 30, lazyLoadMembers: true });
    await accepted;
    expect(rooms.invites).toEqual([]);
    expect(rooms.rooms.find((r) => r.id === direct)).toMatchObject({ name: 'Ben', membership: 'join' });
    expect(rooms.selectedId).toBe(direct);
  });

  it('acknowledges no to-device message: the client still receives it in its own first sync', async () => {
    const server = world.server;
    const { annUser, ben } = await annsRooms(server);
    await ben.client.sendToDevice('org.example.room_key', new Map([[annUser.userId, new Map([[annUser.deviceId, { key: 'k1' }]])]]));

    const api = apiOf(server, annUser);
    const sync = `/_matrix/client/v3/sync?${new URLSearchParams({ filter: JSON.stringify(PROVISIONAL_SYNC_FILTER), timeout: '0' })}`;
    for (let i = 0; i < 2; i++) {
      const body = (await (await api(sync)).json()) as { to_device?: { events?: Array<{ type: string }> } };
      expect(body.to_device?.events?.map((e) => e.type)).toEqual(['org.example.room_key']);
    }
    await fetchProvisionalRooms(api, annUser.userId);

    const client = unstartedClient(server, annUser);
    const received = new Promise<string>((resolve) => client.on('toDeviceEvent' as never, ((event: { getType(): string }) => resolve(event.getType())) as never));
    await client.startClient({ initialSyncLimit: 30, lazyLoadMembers: true });
    expect(await received).toBe('org.example.room_key');
  });

  it('skips what is malformed in the response', () => {
    const userId = '@ann:hs.test';
    const body = {
      rooms: {
        join: {
          '!a:hs.test': { timeline: { events: 'nope' }, state: { events: [null, 3, { type: 'm.room.name', state_key: '', sender: '@c:hs.test', content: { name: 'Kept' } }] }, unread_notifications: { notification_count: -4 } },
          '!b:hs.test': 7,
        },
        invite: [],
      },
    };
    expect(provisionalRoomsOf(body, userId)).toEqual([{ id: '!a:hs.test', name: 'Kept', membership: 'join', unread: 0, lastActive: 0, encrypted: false }, { id: '!b:hs.test', name: 'Empty room', membership: 'join', unread: 0, lastActive: 0, encrypted: false }]);
    expect(provisionalRoomsOf(null, userId)).toEqual([]);
  });
});
