// Who may read a room over the API, written as the attacks of issue 6: users who were never joined (a knock
// withdrawn or refused, a ban before joining, a rejected invite) and users who forgot the room read nothing on any
// read path; former members read up to their departure; world_readable rooms are open to anyone.
// The rules themselves are tested directly in tests/homeserver/access/.
import { afterEach, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, setup, type Client } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

/** Every read path of a room (GET /event answers 404 for what the user may not read, as the spec asks). */
function readPaths(roomId: string, eventId: string): [string, number][] {
  const room = `/rooms/${enc(roomId)}`;
  return [
    [`${room}/state`, 403],
    [`${room}/state/m.room.name`, 403],
    [`${room}/state/m.room.member/${enc('@alice:hs.test')}`, 403],
    [`${room}/members`, 403],
    [`${room}/members?at=s1_0`, 403],
    [`${room}/joined_members`, 403],
    [`${room}/aliases`, 403],
    [`${room}/messages?dir=b`, 403],
    [`${room}/messages?dir=f`, 403],
    [`${room}/context/${enc(eventId)}`, 403],
    [`${room}/event/${enc(eventId)}`, 404],
  ];
}

async function expectShutOut(client: Client, roomId: string, eventId: string): Promise<void> {
  for (const [path, status] of readPaths(roomId, eventId)) {
    const res = await client.call('GET', path);
    expect([path, res.status, res.json.errcode]).toEqual([path, status, status === 403 ? 'M_FORBIDDEN' : 'M_NOT_FOUND']);
  }
}

async function ok(client: Client, path: string): Promise<any> {
  const res = await client.call('GET', path);
  expect(res.status, `${path}: ${JSON.stringify(res.json)}`).toBe(200);
  return res.json;
}

describe('users who were never joined read nothing', () => {
  test('a knock withdrawn, and a knock refused', async () => {
    const { server: s, clients: [alice, carol, dave] } = await setup('alice', 'carol', 'dave');
    server = s;
    const roomId = await alice!.createRoom({ name: 'Secret', initial_state: [{ type: 'm.room.join_rules', content: { join_rule: 'knock' } }] });
    const secret = await alice!.send(roomId, { msgtype: 'm.text', body: 'secret' });
    expect((await carol!.call('POST', `/knock/${enc(roomId)}`, { reason: 'let me in' })).status).toBe(200);
    expect((await carol!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
    expect((await dave!.call('POST', `/knock/${enc(roomId)}`, {})).status).toBe(200);
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/kick`, { user_id: dave!.userId, reason: 'no' })).status).toBe(200);
    await expectShutOut(carol!, roomId, secret);
    await expectShutOut(dave!, roomId, secret);
  });

  test('a ban before ever joining', async () => {
    const { server: s, clients: [alice, erin] } = await setup('alice', 'erin');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Public but not for Erin' });
    const message = await alice!.send(roomId);
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/ban`, { user_id: erin!.userId, reason: 'pre-emptive' })).status).toBe(200);
    await expectShutOut(erin!, roomId, message);
  });

  test('an invite rejected', async () => {
    const { server: s, clients: [alice, dave] } = await setup('alice', 'dave');
    server = s;
    const roomId = await alice!.createRoom({ name: 'Private' });
    const message = await alice!.send(roomId);
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: dave!.userId })).status).toBe(200);
    expect((await dave!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
    await expectShutOut(dave!, roomId, message);
  });
});

describe('former members', () => {
  test('read the room up to their departure and not after', async () => {
    const { server: s, clients: [alice, bob, carol] } = await setup('alice', 'bob', 'carol');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Before' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const during = await alice!.send(roomId, { msgtype: 'm.text', body: 'during' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    await alice!.putState(roomId, 'm.room.name', '', { name: 'After' });
    const after = await alice!.send(roomId, { msgtype: 'm.text', body: 'after' });
    await carol!.call('POST', `/rooms/${enc(roomId)}/join`, {});

    const room = `/rooms/${enc(roomId)}`;
    expect(await ok(bob!, `${room}/state/m.room.name`)).toEqual({ name: 'Before' });
    const members = (await ok(bob!, `${room}/members`)).chunk.map((e: any) => e.state_key);
    expect(members.sort()).toEqual([alice!.userId, bob!.userId].sort());
    const messages = (await ok(bob!, `${room}/messages?dir=b&limit=50`)).chunk.map((e: any) => e.event_id);
    expect(messages).toContain(during);
    expect(messages).not.toContain(after);
    expect((await ok(bob!, `${room}/event/${enc(during)}`)).content.body).toBe('during');
    expect((await bob!.call('GET', `${room}/event/${enc(after)}`)).status).toBe(404);
    expect((await bob!.call('GET', `${room}/context/${enc(after)}`)).status).toBe(404);
    // /joined_members and /aliases describe the room now: members only.
    expect((await bob!.call('GET', `${room}/joined_members`)).status).toBe(403);
    expect((await bob!.call('GET', `${room}/aliases`)).status).toBe(403);
  });

  test('a forgotten room is closed on every read path until they join again', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Forget me' });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});
    const message = await alice!.send(roomId);
    await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
    expect(await ok(bob!, `/rooms/${enc(roomId)}/state/m.room.name`)).toEqual({ name: 'Forget me' });
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/forget`, {})).status).toBe(200);
    await expectShutOut(bob!, roomId, message);

    // An invite is not enough; joining again is.
    await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId });
    await expectShutOut(bob!, roomId, message);
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
    expect((await ok(bob!, `/rooms/${enc(roomId)}/event/${enc(message)}`)).event_id).toBe(message);
  });
});

test('a world_readable room is readable by anyone, on every read path', async () => {
  const { server: s, clients: [alice, carol] } = await setup('alice', 'carol');
  server = s;
  const roomId = await alice!.createRoom({
    preset: 'public_chat',
    name: 'Open',
    initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'world_readable' } }],
  });
  const message = await alice!.send(roomId, { msgtype: 'm.text', body: 'for all' });
  const room = `/rooms/${enc(roomId)}`;
  expect(await ok(carol!, `${room}/state/m.room.name`)).toEqual({ name: 'Open' });
  expect((await ok(carol!, `${room}/members`)).chunk.map((e: any) => e.state_key)).toEqual([alice!.userId]);
  expect(Object.keys((await ok(carol!, `${room}/joined_members`)).joined)).toEqual([alice!.userId]);
  expect((await ok(carol!, `${room}/messages?dir=b`)).chunk.map((e: any) => e.event_id)).toContain(message);
  expect((await ok(carol!, `${room}/context/${enc(message)}`)).event.event_id).toBe(message);
  expect((await ok(carol!, `${room}/event/${enc(message)}`)).content.body).toBe('for all');
  expect(await ok(carol!, `${room}/aliases`)).toEqual({ aliases: [] });
});
