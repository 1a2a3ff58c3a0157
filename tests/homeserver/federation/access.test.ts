// Who may read what over federation, and restricted joins across servers: history the room hides from
// a server stays out of backfill; a restricted room admits a remote user who is in an allowed room,
// with the resident server countersigning the join.
import { afterEach, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { enc, twoServersInRoom, withUsers } from '../rooms/helpers.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

async function fed(server: TestServer, origin: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await server.homeserver.handleFederation(new Request(`http://${server.serverName}${path}`, init), origin.serverName);
  return { status: response.status, json: await response.json() };
}

test('history_visibility joined: backfill leaves out what came before the server joined', async () => {
  net = await startFederation(2);
  const [a, b] = net.servers as [TestServer, TestServer];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'joined' } }] });
  await alice!.send(roomId, { msgtype: 'm.text', body: 'before bob' });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
  await alice!.send(roomId, { msgtype: 'm.text', body: 'after bob' });
  await net.flush();
  const tips = await a.storage.read((t) => t.dag.extremities(roomId));
  const back = await fed(a, b, 'GET', `/_matrix/federation/v1/backfill/${enc(roomId)}?v=${enc(tips[0]!)}&limit=50`);
  expect(back.status).toBe(200);
  const bodies = back.json.pdus.map((p: any) => p.content.body).filter(Boolean);
  expect(bodies).toContain('after bob');
  expect(bodies).not.toContain('before bob');
});

test('a restricted room admits a remote member of an allowed room; the resident countersigns', async () => {
  const { net, a, b, alice, bob, roomId: space } = await twoServersInRoom({ preset: 'public_chat', name: 'Allowed' });
  const restricted = await alice!.createRoom({
    preset: 'private_chat',
    initial_state: [{ type: 'm.room.join_rules', state_key: '', content: { join_rule: 'restricted', allow: [{ type: 'm.room_membership', room_id: space }] } }],
  });
  const joined = await bob!.call('POST', `/join/${enc(restricted)}?via=${a.serverName}`, {});
  expect(joined.status, JSON.stringify(joined.json)).toBe(200);
  const joinId = (await a.storage.read((t) => t.memberships.get(restricted, bob!.userId)))!.eventId;
  const join = (await a.storage.read((t) => t.events.get(joinId)))!.event;
  expect(join.content.join_authorised_via_users_server).toBe(alice!.userId);
  expect(Object.keys(join.signatures!).sort()).toEqual([a.serverName, b.serverName].sort());

  // Someone in no allowed room is refused by make_join.
  const [carol] = await withUsers(b, 'carol');
  const refused = await carol!.call('POST', `/join/${enc(restricted)}?via=${a.serverName}`, {});
  expect(refused.status).toBe(403);
});
