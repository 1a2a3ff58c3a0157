// Membership endpoints: join (ID, alias), invite, leave, forget, kick, ban, unban, and their refusals.
import { afterEach, describe, expect, test } from 'vitest';
import { forgottenRoomKey } from '../../../src/homeserver/rooms/types.js';
import type { TestServer } from '../harness.js';
import { enc, expectUnchanged, setup, stateOf } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

const membershipIn = (s: TestServer, roomId: string, userId: string) =>
  s.storage.read((txn) => txn.memberships.get(roomId, userId)).then((m) => m?.membership);

describe.each(['10', '11', '12'])('membership in room version %s', (roomVersion) => {
  test('invite, join, leave, forget; rejoin un-forgets', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ room_version: roomVersion, name: 'Room' });

    // Not invited yet: the invite join rule refuses.
    const early = await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    expect(early.status).toBe(403);
    expect(early.json.errcode).toBe('M_FORBIDDEN');

    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId, reason: 'welcome' })).status).toBe(200);
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('invite');
    const invite = (await stateOf(alice!, roomId)).get(`m.room.member|${bob!.userId}`);
    expect(invite.content).toEqual({ membership: 'invite', reason: 'welcome', displayname: 'bob' });
    expect(invite.unsigned.invite_room_state.length).toBeGreaterThan(0);

    const joined = await bob!.call('POST', `/join/${enc(roomId)}?server_name=hs.test&via=hs.test`, { reason: 'hi' });
    expect(joined).toMatchObject({ status: 200, json: { room_id: roomId } });
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('join');
    const joinEvent = (await stateOf(bob!, roomId)).get(`m.room.member|${bob!.userId}`);
    expect(joinEvent.content).toEqual({ membership: 'join', reason: 'hi', displayname: 'bob' });
    expect(joinEvent.unsigned.prev_content).toEqual(invite.content);

    // Joining again with the same content changes nothing.
    const position = await s.storage.read((txn) => txn.stream.current());
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/join`, { reason: 'hi' })).status).toBe(200);
    expect(await s.storage.read((txn) => txn.stream.current())).toBe(position);

    expect((await bob!.call('GET', '/joined_rooms')).json).toEqual({ joined_rooms: [roomId] });

    // Forgetting needs leaving first.
    const tooEarly = await bob!.call('POST', `/rooms/${enc(roomId)}/forget`, {});
    expect(tooEarly).toMatchObject({ status: 400, json: { errcode: 'M_UNKNOWN' } });
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('leave');
    expect((await bob!.call('GET', '/joined_rooms')).json).toEqual({ joined_rooms: [] });
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/forget`, {})).status).toBe(200);
    const key = forgottenRoomKey(bob!.userId, roomId);
    expect(await s.storage.read((txn) => txn.meta.get(key))).toBe(true);

    // Invited again and joining: the room is no longer forgotten.
    await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId });
    expect(await s.storage.read((txn) => txn.meta.get(key))).toBeUndefined();
  });

  test('kick, ban, unban with reasons and Synapse checks', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const roomId = await alice!.createRoom({ room_version: roomVersion, preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    await carol!.call('POST', `/rooms/${enc(roomId)}/join`, {});

    // Bob (level 0) cannot kick Carol.
    await expectUnchanged(s.storage, async () => {
      const res = await bob!.call('POST', `/rooms/${enc(roomId)}/kick`, { user_id: carol!.userId });
      expect(res).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    });
    const kicked = await alice!.call('POST', `/rooms/${enc(roomId)}/kick`, { user_id: bob!.userId, reason: 'spam' });
    expect(kicked.status).toBe(200);
    const kick = (await stateOf(alice!, roomId)).get(`m.room.member|${bob!.userId}`);
    expect(kick).toMatchObject({ sender: alice!.userId, content: { membership: 'leave', reason: 'spam' } });

    // Kicking someone who is not in the room, unbanning someone not banned: refused, nothing written.
    await expectUnchanged(s.storage, async () => {
      expect(await alice!.call('POST', `/rooms/${enc(roomId)}/kick`, { user_id: bob!.userId })).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
      expect(await alice!.call('POST', `/rooms/${enc(roomId)}/unban`, { user_id: bob!.userId })).toMatchObject({ status: 403, json: { errcode: 'M_BAD_STATE' } });
    });

    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/ban`, { user_id: bob!.userId, reason: 'more spam' })).status).toBe(200);
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('ban');
    await expectUnchanged(s.storage, async () => {
      expect(await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {})).toMatchObject({ status: 403 });
      expect(await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId })).toMatchObject({ status: 403, json: { errcode: 'M_BAD_STATE' } });
    });
    // Banning someone who never was in the room works too.
    const outsider = '@dave:elsewhere.test';
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/ban`, { user_id: outsider })).status).toBe(200);

    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/unban`, { user_id: bob!.userId, reason: 'ok' })).status).toBe(200);
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('leave');
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
  });
});

describe('membership refusals', () => {
  test('join by alias; unknown rooms and aliases; bad parameters', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', room_alias_name: 'lobby' });
    const byAlias = await bob!.call('POST', `/join/${enc('#lobby:hs.test')}`, {});
    expect(byAlias).toMatchObject({ status: 200, json: { room_id: roomId } });

    const unknownRoom = '!unknown:hs.test';
    const cases: [string, string, unknown, number, string][] = [
      ['POST', `/join/${enc('#nope:hs.test')}`, {}, 404, 'M_NOT_FOUND'],
      ['POST', `/join/${enc(unknownRoom)}`, {}, 404, 'M_NOT_FOUND'],
      ['POST', `/join/${enc('not-a-room')}`, {}, 400, 'M_INVALID_PARAM'],
      ['POST', `/join/${enc('#bad alias:hs.test')}`, {}, 400, 'M_INVALID_PARAM'],
      ['POST', `/join/${enc(roomId)}?via=bad%20server`, {}, 400, 'M_INVALID_PARAM'],
      ['POST', `/rooms/${enc(unknownRoom)}/leave`, {}, 404, 'M_NOT_FOUND'],
      ['POST', `/rooms/${enc(unknownRoom)}/invite`, { user_id: alice!.userId }, 403, 'M_FORBIDDEN'],
      ['POST', `/rooms/${enc('nope')}/leave`, {}, 400, 'M_INVALID_PARAM'],
      ['POST', `/rooms/${enc(roomId)}/invite`, {}, 400, 'M_MISSING_PARAM'],
      ['POST', `/rooms/${enc(roomId)}/invite`, { user_id: 5 }, 400, 'M_BAD_JSON'],
      ['POST', `/rooms/${enc(roomId)}/invite`, { user_id: 'carol' }, 400, 'M_INVALID_PARAM'],
      ['POST', `/rooms/${enc(roomId)}/ban`, { user_id: alice!.userId, reason: 7 }, 400, 'M_BAD_JSON'],
      ['POST', `/rooms/${enc(roomId)}/join`, '{not json', 400, 'M_NOT_JSON'],
      ['POST', `/rooms/${enc(roomId)}/join`, [], 400, 'M_BAD_JSON'],
      // Bob is joined, so inviting him is refused by the auth rules; he cannot ban the creator.
      ['POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId }, 403, 'M_FORBIDDEN'],
      ['POST', `/rooms/${enc(roomId)}/ban`, { user_id: alice!.userId }, 403, 'M_FORBIDDEN'],
    ];
    for (const [method, path, body, status, errcode] of cases) {
      const client = path.includes('/invite') && status !== 403 ? alice! : bob!;
      await expectUnchanged(s.storage, async () => {
        const res = await client.call(method, path, body);
        expect({ path, body, status: res.status, errcode: res.json?.errcode }).toEqual({ path, body, status, errcode });
      });
    }
    // Leaving a room one is not in is refused by the auth rules.
    const [carol] = await (await import('./helpers.js')).withUsers(s, 'carol');
    await expectUnchanged(s.storage, async () => {
      expect(await carol!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
      expect(await carol!.call('POST', `/rooms/${enc(roomId)}/forget`, {})).toMatchObject({ status: 200 });
    });
  });

  test('PUT state m.room.member goes through the membership path', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ room_version: '11' });
    const res = await alice!.putState(roomId, 'm.room.member', bob!.userId, { membership: 'invite' });
    expect(res.status).toBe(200);
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('invite');
    const own = await alice!.putState(roomId, 'm.room.member', alice!.userId, { membership: 'join', displayname: 'Alice in room' });
    expect(own.status).toBe(200);
    expect((await stateOf(alice!, roomId)).get(`m.room.member|${alice!.userId}`).content).toEqual({ membership: 'join', displayname: 'Alice in room' });
    await expectUnchanged(s.storage, async () => {
      expect(await alice!.putState(roomId, 'm.room.member', bob!.userId, { membership: 5 })).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
      expect(await alice!.putState(roomId, 'm.room.member', bob!.userId, { membership: 'party' })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      expect(await alice!.putState(roomId, 'm.room.member', 'bob', { membership: 'invite' })).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
      // Joining on behalf of someone else.
      expect(await alice!.putState(roomId, 'm.room.member', bob!.userId, { membership: 'join' })).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    });
  });
});

describe('restricted rooms and knocking', () => {
  test('members of an allowed room join a restricted room, authorised by a local moderator', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const space = await alice!.createRoom({ room_version: '11', preset: 'public_chat' });
    await bob!.call('POST', `/rooms/${enc(space)}/join`, {});
    const roomId = await alice!.createRoom({
      room_version: '11',
      initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] } }],
    });
    const joined = await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    const event = (await stateOf(bob!, roomId)).get(`m.room.member|${bob!.userId}`);
    expect(event.content).toMatchObject({ membership: 'join', join_authorised_via_users_server: alice!.userId });
    // Carol is in no allowed room.
    await expectUnchanged(s.storage, async () => {
      expect(await carol!.call('POST', `/rooms/${enc(roomId)}/join`, {})).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    });
  });

  test('knock, then the knock is accepted with an invite', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }], room_alias_name: 'door' });
    const knocked = await bob!.call('POST', `/knock/${enc('#door:hs.test')}`, { reason: 'let me in' });
    expect(knocked).toMatchObject({ status: 200, json: { room_id: roomId } });
    expect(await membershipIn(s, roomId, bob!.userId)).toBe('knock');
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId })).status).toBe(200);
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
    // Knocking on an invite-only room is refused.
    const closed = await alice!.createRoom({});
    await expectUnchanged(s.storage, async () => {
      expect(await bob!.call('POST', `/knock/${enc(closed)}`, {})).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    });
  });
});
