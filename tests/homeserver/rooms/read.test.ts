// Reading rooms: state, members (filters, `at`), joined_members, joined_rooms, single events and visibility.
import { afterEach, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, setup, stateOf } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

describe('room reads', () => {
  test('state: members read current state, departed members the state at their departure, others 403', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Before' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    await alice!.putState(roomId, 'm.room.name', '', { name: 'After' });

    expect((await stateOf(alice!, roomId)).get('m.room.name|').content).toEqual({ name: 'After' });
    const bobsView = await stateOf(bob!, roomId);
    expect(bobsView.get('m.room.name|').content).toEqual({ name: 'Before' });
    expect(bobsView.get(`m.room.member|${bob!.userId}`).content.membership).toBe('leave');
    expect((await bob!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name`)).json).toEqual({ name: 'Before' });

    for (const path of [`/rooms/${enc(roomId)}/state`, `/rooms/${enc(roomId)}/state/m.room.name`, `/rooms/${enc(roomId)}/members`]) {
      expect(await carol!.call('GET', path)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    }
    expect(await carol!.call('GET', `/rooms/${enc('!nope:hs.test')}/state`)).toMatchObject({ status: 403 });
    expect(await carol!.call('GET', `/rooms/${enc('nope')}/state`)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });

    // A world-readable room's state is open to anyone.
    await alice!.putState(roomId, 'm.room.history_visibility', '', { history_visibility: 'world_readable' });
    expect((await carol!.call('GET', `/rooms/${enc(roomId)}/state/m.room.name`)).json).toEqual({ name: 'After' });
  });

  test('members with membership filters and `at`; joined_members; joined_rooms', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const before = await s.storage.read((txn) => txn.stream.current());
    await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: carol!.userId });
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    await s.call('PUT', `/_matrix/client/v3/profile/${enc(alice!.userId)}/displayname`, { displayname: 'Alice A.' }, alice!.accessToken);

    const members = async (query: string) => {
      const res = await alice!.call('GET', `/rooms/${enc(roomId)}/members${query}`);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return res.json.chunk.map((e: any) => `${e.state_key}=${e.content.membership}`).sort();
    };
    expect(await members('')).toEqual([`${alice!.userId}=join`, `${bob!.userId}=leave`, `${carol!.userId}=invite`].sort());
    expect(await members('?membership=join')).toEqual([`${alice!.userId}=join`]);
    expect(await members('?not_membership=leave')).toEqual([`${alice!.userId}=join`, `${carol!.userId}=invite`].sort());
    expect(await members(`?at=s${before}_0`)).toEqual([`${alice!.userId}=join`, `${bob!.userId}=join`].sort());
    // A pagination token (depth, stream) works too: the gap right after Bob's join.
    const bobsJoin = await s.storage.read(async (txn) => (await txn.timeline.range(roomId, { dir: 'b', from: before, limit: 1 }))[0]!);
    expect(await members(`?at=t${bobsJoin.depth}_${bobsJoin.streamOrdering}`)).toEqual([`${alice!.userId}=join`, `${bob!.userId}=join`].sort());
    expect(await alice!.call('GET', `/rooms/${enc(roomId)}/members?membership=sleeping`)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice!.call('GET', `/rooms/${enc(roomId)}/members?at=nonsense`)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });

    const joined = await alice!.call('GET', `/rooms/${enc(roomId)}/joined_members`);
    // The profile change reached the room as a new join event (updateProfileInRooms).
    expect(joined.json).toEqual({ joined: { [alice!.userId]: { display_name: 'Alice A.' } } });
    expect(await bob!.call('GET', `/rooms/${enc(roomId)}/joined_members`)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });

    expect((await alice!.call('GET', '/joined_rooms')).json).toEqual({ joined_rooms: [roomId] });
    expect((await carol!.call('GET', '/joined_rooms')).json).toEqual({ joined_rooms: [] });
  });

  test('single events follow history visibility and hide with 404', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat' });
    await alice!.putState(roomId, 'm.room.history_visibility', '', { history_visibility: 'joined' });
    const beforeBob = await alice!.send(roomId, { body: 'before bob' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const whileBob = await alice!.send(roomId, { body: 'while bob' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    const afterBob = await alice!.send(roomId, { body: 'after bob' });

    const get = (who: typeof alice, id: string) => who!.call('GET', `/rooms/${enc(roomId)}/event/${enc(id)}`);
    for (const id of [beforeBob, whileBob, afterBob]) expect((await get(alice, id)).status).toBe(200);
    expect((await get(bob, beforeBob)).status).toBe(404);
    expect((await get(bob, whileBob)).json.content).toEqual({ body: 'while bob' });
    expect((await get(bob, afterBob)).status).toBe(404);
    expect(await get(carol, whileBob)).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });

    // Shared history: a member sees everything from before they joined.
    const shared = await alice!.createRoom({ preset: 'public_chat' });
    const early = await alice!.send(shared, { body: 'early' });
    await carol!.call('POST', `/rooms/${enc(shared)}/join`, {});
    expect((await carol!.call('GET', `/rooms/${enc(shared)}/event/${enc(early)}`)).status).toBe(200);

    // Wrong room, unknown event, malformed ID.
    expect(await alice!.call('GET', `/rooms/${enc(shared)}/event/${enc(whileBob)}`)).toMatchObject({ status: 404 });
    expect(await alice!.call('GET', `/rooms/${enc(roomId)}/event/${enc('$' + 'B'.repeat(43))}`)).toMatchObject({ status: 404 });
    expect(await alice!.call('GET', `/rooms/${enc(roomId)}/event/nope`)).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
  });

});
