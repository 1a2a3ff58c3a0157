// Two homeservers in one process, federating directly (tests/support/federation.ts): a remote invite,
// joining through the inviter's server, messages both ways through the outbox, typing and receipts,
// remote profiles and keys, and joining by room ID and via server.
import { afterEach, describe, expect, test } from 'vitest';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { enc, withUsers, type Client } from '../rooms/helpers.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

async function timeline(client: Client, roomId: string): Promise<any[]> {
  const { status, json } = await client.call('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=50`);
  expect(status, JSON.stringify(json)).toBe(200);
  return json.chunk;
}

describe.each(['12', '11', '10'])('room version %s', (roomVersion) => {
  test('invite across servers, join, chat both ways', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [any, any];
    const [alice] = await withUsers(a, 'alice');
    const [bob] = await withUsers(b, 'bob');

    const roomId = await alice!.createRoom({ preset: 'private_chat', room_version: roomVersion, name: 'Across' });
    const invite = await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId });
    expect(invite.status, JSON.stringify(invite.json)).toBe(200);

    // Bob's server holds the invite (countersigned) and shows it in /sync.
    const sync = await bob!.call('GET', '/sync');
    expect(sync.json.rooms.invite[roomId], JSON.stringify(sync.json.rooms)).toBeDefined();

    const joined = await bob!.call('POST', `/join/${enc(roomId)}`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    await net.flush();
    expect((await a.storage.read((t: any) => t.memberships.get(roomId, bob!.userId)))?.membership).toBe('join');

    const fromAlice = await alice!.send(roomId, { msgtype: 'm.text', body: 'hello bob' });
    await net.flush();
    const fromBob = await bob!.send(roomId, { msgtype: 'm.text', body: 'hello alice' });
    await net.flush();

    const onB = (await timeline(bob!, roomId)).map((e) => e.event_id);
    const onA = (await timeline(alice!, roomId)).map((e) => e.event_id);
    expect(onB).toContain(fromAlice);
    expect(onA).toContain(fromBob);
    // Both servers agree on the room's tips and state.
    const tips = (s: any) => s.storage.read((t: any) => t.dag.extremities(roomId));
    expect(await tips(a)).toEqual(await tips(b));
    const state = (s: any) => s.storage.read(async (t: any) => [...(await t.currentState.load(roomId))].sort());
    expect(await state(a)).toEqual(await state(b));
  });
});
