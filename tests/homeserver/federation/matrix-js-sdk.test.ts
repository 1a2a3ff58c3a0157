// Three in-process homeservers federating directly, each with its own matrix-js-sdk 43 client, as an
// app drives them: invites across servers, joins through the inviter's server, chat every way, typing
// and read receipts across, a remote profile, and end-to-end keys queried and claimed across servers.
import { createClient, EventType, MsgType, Preset, RoomMemberEvent, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { registerClient, startAndSync, waitFor } from '../../clients/js-sdk-scenario.js';

let net: FederatedNetwork;
let stopPump: () => void;
const clients: MatrixClient[] = [];

const target = (server: TestServer) => ({
  baseUrl: server.baseUrl,
  fetchFn: ((input: RequestInfo | URL, init?: RequestInit) => server.homeserver.handleClient(new Request(input, init))) as typeof fetch,
});

beforeAll(async () => {
  net = await startFederation(3);
  stopPump = net.pump();
});
afterAll(async () => {
  for (const client of clients) client.stopClient();
  stopPump();
  await net.close();
});

const bodiesIn = (client: MatrixClient, roomId: string) =>
  (client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getType() === EventType.RoomMessage).map((e) => e.getContent().body as string);

test('three servers: invite, join, chat, typing, receipts, profiles and keys across', async () => {
  const [a, b, c] = net.servers as [TestServer, TestServer, TestServer];
  const alice = await registerClient(target(a), 'alice');
  const bob = await registerClient(target(b), 'bob');
  const carol = await registerClient(target(c), 'carol');
  clients.push(alice, bob, carol);
  await bob.setDisplayName('Bob of B');
  await Promise.all([startAndSync(alice), startAndSync(bob), startAndSync(carol)]);

  const { room_id: roomId } = await alice.createRoom({ preset: Preset.PrivateChat, name: 'Three servers' });
  await alice.invite(roomId, bob.getUserId()!);
  await alice.invite(roomId, carol.getUserId()!);

  // Invites arrive through invite v2; accepting joins through the inviter's server.
  await waitFor('bob invited', () => bob.getRoom(roomId)?.getMyMembership() === 'invite');
  await bob.joinRoom(roomId);
  await waitFor('carol invited', () => carol.getRoom(roomId)?.getMyMembership() === 'invite');
  await carol.joinRoom(roomId);
  await waitFor('alice sees both joined', () => alice.getRoom(roomId)?.getJoinedMemberCount() === 3);
  await waitFor('bob sees carol joined', () => bob.getRoom(roomId)?.getMember(carol.getUserId()!)?.membership === 'join');

  // Chat every way.
  await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: 'from A' });
  await bob.sendMessage(roomId, { msgtype: MsgType.Text, body: 'from B' });
  await carol.sendMessage(roomId, { msgtype: MsgType.Text, body: 'from C' });
  for (const [name, client] of [['alice', alice], ['bob', bob], ['carol', carol]] as const) {
    await waitFor(`${name} sees all three messages`, () => ['from A', 'from B', 'from C'].every((body) => bodiesIn(client, roomId).includes(body)));
  }
  expect(bob.getRoom(roomId)!.getMember(alice.getUserId()!)!.membership).toBe('join');

  // Typing on A shows on B.
  const typingSeen = new Promise<void>((resolve) => {
    bob.on(RoomMemberEvent.Typing, (_event, member) => {
      if (member.userId === alice.getUserId() && member.typing) resolve();
    });
  });
  await alice.sendTyping(roomId, true, 10_000);
  await typingSeen;

  // Bob's read receipt (on the latest message, carol's) reaches alice.
  const fromC = alice.getRoom(roomId)!.getLiveTimeline().getEvents().find((e) => e.getContent().body === 'from C')!;
  const onBob = bob.getRoom(roomId)!.findEventById(fromC.getId()!)!;
  await bob.sendReadReceipt(onBob);
  await waitFor('alice sees bob read', () => alice.getRoom(roomId)!.getUsersReadUpTo(fromC).includes(bob.getUserId()!));

  // A remote profile, through federation query/profile.
  expect(await alice.getProfileInfo(bob.getUserId()!)).toMatchObject({ displayname: 'Bob of B' });

  // Keys: bob uploads device and one-time keys on B; alice queries and claims them from A.
  const deviceKeys = {
    user_id: bob.getUserId(),
    device_id: bob.getDeviceId(),
    algorithms: ['m.olm.v1.curve25519-aes-sha2'],
    keys: { [`curve25519:${bob.getDeviceId()}`]: 'Y3VydmU', [`ed25519:${bob.getDeviceId()}`]: 'ZWQyNTUxOQ' },
  };
  await bob.http.authedRequest('POST' as never, '/keys/upload', undefined, { device_keys: deviceKeys, one_time_keys: { 'signed_curve25519:AAAA': { key: 'b3Rr' } } });
  const queried = (await alice.http.authedRequest('POST' as never, '/keys/query', undefined, { device_keys: { [bob.getUserId()!]: [] } })) as any;
  expect(queried.failures).toEqual({});
  expect(queried.device_keys[bob.getUserId()!][bob.getDeviceId()!]).toMatchObject({ device_id: bob.getDeviceId() });
  const claimed = (await alice.http.authedRequest('POST' as never, '/keys/claim', undefined, {
    one_time_keys: { [bob.getUserId()!]: { [bob.getDeviceId()!]: 'signed_curve25519' } },
  })) as any;
  expect(claimed.one_time_keys[bob.getUserId()!][bob.getDeviceId()!]).toEqual({ 'signed_curve25519:AAAA': { key: 'b3Rr' } });
  expect(net.pumpErrors).toEqual([]);
});

void createClient;
