// Knocking across servers (make_knock / send_knock v1): a user on B knocks on a knock-rule room held by A, A's
// members see the knock, alice lets bob in with an invite and bob joins; B keeps the knock with the stripped
// state A sent. A room whose join rule is not knock refuses, and nothing changes on either side.
import { afterEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

describe('federated knock', () => {
  it('bob on B knocks on alice\'s room on A, is invited and joins', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [TestServer, TestServer];
    const alice = await a.register('alice');
    const bob = await b.register('bob');
    const created = await a.call('POST', '/_matrix/client/v3/createRoom', { name: 'Knock here', initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'knock' } }] }, alice.accessToken);
    const roomId = created.json.room_id as string;

    const knocked = await b.call('POST', `/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, { reason: 'let me in' }, bob.accessToken);
    expect(knocked.status, JSON.stringify(knocked.json)).toBe(200);
    expect(knocked.json).toEqual({ room_id: roomId });
    expect(net.log).toEqual(expect.arrayContaining([`GET /_matrix/federation/v1/make_knock/${enc(roomId)}/${enc(bob.userId)}`, expect.stringMatching(/^PUT \/_matrix\/federation\/v1\/send_knock\//)]));

    // A holds the knock in the room's state; B keeps it with the stripped state A answered.
    const member = await a.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, undefined, alice.accessToken);
    expect(member.json).toMatchObject({ membership: 'knock', reason: 'let me in' });
    const kept = await b.storage.read(async (t) => {
      const m = await t.memberships.get(roomId, bob.userId);
      return m && { membership: m.membership, event: await t.events.get(m.eventId) };
    });
    expect(kept?.membership).toBe('knock');
    const stripped = (kept!.event!.event.unsigned as { knock_room_state: { type: string; content: Record<string, unknown> }[] }).knock_room_state;
    expect(stripped.find((e) => e.type === 'm.room.name')?.content).toEqual({ name: 'Knock here' });
    expect(stripped.find((e) => e.type === 'm.room.join_rules')?.content).toEqual({ join_rule: 'knock' });

    // Alice lets bob in.
    expect((await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId }, alice.accessToken)).status).toBe(200);
    await net.flush();
    const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {}, bob.accessToken);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    await net.flush();
    const after = await a.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, undefined, alice.accessToken);
    expect(after.json.membership).toBe('join');
  });

  it('a room whose join rule is not knock refuses the knock; nothing is kept on B', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [TestServer, TestServer];
    const alice = await a.register('alice');
    const bob = await b.register('bob');
    const created = await a.call('POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat' }, alice.accessToken);
    const roomId = created.json.room_id as string;
    const refused = await b.call('POST', `/_matrix/client/v3/knock/${enc(roomId)}?via=${a.serverName}`, {}, bob.accessToken);
    expect(refused.status).toBe(403);
    expect(await b.storage.read((t) => t.memberships.get(roomId, bob.userId))).toBeUndefined();
    const member = await a.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/state/m.room.member/${enc(bob.userId)}`, undefined, alice.accessToken);
    expect(member.status).toBe(404);
    // With no server to ask, a knock on an unknown room is 404.
    const nowhere = await b.call('POST', `/_matrix/client/v3/knock/${enc(roomId)}`, {}, bob.accessToken);
    expect(nowhere.status).toBe(404);
  });
});
