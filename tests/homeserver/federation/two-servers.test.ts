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

    // Bob's new device keys reach A as m.device_list_update: alice's /sync says his devices changed.
    const since = (await alice!.call('GET', '/sync?timeout=0')).json.next_batch;
    const keys = { user_id: bob!.userId, device_id: bob!.deviceId, algorithms: ['m.olm.v1.curve25519-aes-sha2'], keys: { [`ed25519:${bob!.deviceId}`]: 'ZWQ' } };
    expect((await bob!.call('POST', '/keys/upload', { device_keys: keys })).status).toBe(200);
    await net.flush();
    const later = await alice!.call('GET', `/sync?timeout=0&since=${since}`);
    expect(later.json.device_lists?.changed ?? []).toContain(bob!.userId);
  });
});

/** One federation request from `origin` to `server`; status and JSON. */
async function fed(server: any, origin: any, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await server.homeserver.handleFederation(new Request(`http://${server.serverName}${path}`, init), origin.serverName);
  return { status: response.status, json: await response.json() };
}

test('joining by room ID via a server that is not the creator, while the creator is offline', async () => {
  net = await startFederation(3);
  const [a, b, c] = net.servers as [any, any, any];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const [carol] = await withUsers(c, 'carol');
  const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Store and forward' });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
  const before = await alice!.send(roomId, { msgtype: 'm.text', body: 'before A went away' });
  await net.flush();

  // A goes offline; carol joins through B, which holds the room too.
  net.link(a, c, false);
  net.link(a, b, false);
  const joined = await carol!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}&via=${b.serverName}`, {});
  expect(joined.status, JSON.stringify(joined.json)).toBe(200);
  const hi = await carol!.send(roomId, { msgtype: 'm.text', body: 'hi from C' });
  await net.flush();
  expect((await timeline(bob!, roomId)).map((e) => e.event_id)).toContain(hi);

  // History from before the join comes by backfill, from B.
  const tips = await c.storage.read((t: any) => t.dag.extremities(roomId));
  const back = await fed(b, c, 'GET', `/_matrix/federation/v1/backfill/${enc(roomId)}?v=${enc(tips[0])}&limit=20`);
  expect(back.status, JSON.stringify(back.json)).toBe(200);
  expect(back.json.pdus.map((p: any) => p.content.body)).toContain('before A went away');
  void before;

  // A comes back: the queued events reach it and every server agrees.
  net.link(a, c, true);
  net.link(a, b, true);
  await net.flush();
  expect((await timeline(alice!, roomId)).map((e) => e.event_id)).toContain(hi);
  const state = (s: any) => s.storage.read(async (t: any) => [...(await t.currentState.load(roomId))].sort());
  expect(await state(a)).toEqual(await state(c));
});

test('leaving, rejecting a remote invite, and reads refused to servers not in the room', async () => {
  net = await startFederation(3);
  const [a, b, c] = net.servers as [any, any, any];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const [carol] = await withUsers(c, 'carol');
  const roomId = await alice!.createRoom({ preset: 'private_chat' });
  expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId })).status).toBe(200);
  expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: carol!.userId })).status).toBe(200);

  // Carol rejects through make_leave / send_leave; A records her leave.
  const rejected = await carol!.call('POST', `/rooms/${enc(roomId)}/leave`, {});
  expect(rejected.status, JSON.stringify(rejected.json)).toBe(200);
  expect((await a.storage.read((t: any) => t.memberships.get(roomId, carol!.userId)))?.membership).toBe('leave');
  expect((await c.storage.read((t: any) => t.memberships.get(roomId, carol!.userId)))?.membership).toBe('leave');

  // C has no joined user: the room's reads are closed to it.
  const tips = await a.storage.read((t: any) => t.dag.extremities(roomId));
  expect((await fed(a, c, 'GET', `/_matrix/federation/v1/state_ids/${enc(roomId)}?event_id=${enc(tips[0])}`)).status).toBe(403);
  expect((await fed(a, c, 'POST', `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`, { earliest_events: [], latest_events: tips })).status).toBe(403);
  expect((await fed(a, c, 'POST', '/_matrix/federation/unstable/org.hometab/extremities', { rooms: { [roomId]: [] } })).json.rooms).toEqual({});

  // Bob joins, reads state, then leaves; the leave reaches A through the outbox.
  expect((await bob!.call('POST', `/join/${enc(roomId)}`, {})).status).toBe(200);
  await net.flush();
  const stateIds = await fed(a, b, 'GET', `/_matrix/federation/v1/state_ids/${enc(roomId)}?event_id=${enc(tips[0])}`);
  expect(stateIds.status).toBe(200);
  expect(stateIds.json.pdu_ids.length).toBeGreaterThan(3);
  expect((await b.homeserver.replication.rooms()).map((r: any) => r.roomId)).toEqual([roomId]);
  expect((await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
  await net.flush();
  expect((await a.storage.read((t: any) => t.memberships.get(roomId, bob!.userId)))?.membership).toBe('leave');
  expect(await b.homeserver.replication.rooms()).toEqual([]);

  // Offline: remote work fails clearly, local work goes on.
  b.homeserver.replication.setClient(undefined);
  const offline = await bob!.call('GET', `/profile/${enc(alice!.userId)}`);
  expect(offline.status).toBe(404);
  expect(offline.json.error).toMatch(/not connected/);
  const invite = await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {});
  expect(invite.status).toBe(502);
  expect(invite.json.error).toMatch(/not connected/);
  expect((await bob!.createRoom({})).startsWith('!')).toBe(true);
});

test('createRoom with a remote invitee (a direct chat) invites them through their server', async () => {
  net = await startFederation(2);
  const [a, b] = net.servers as [any, any];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'trusted_private_chat', is_direct: true, invite: [bob!.userId] });
  const invited = (await bob!.call('GET', '/sync')).json.rooms.invite[roomId];
  expect(invited).toBeDefined();
  const member = invited.invite_state.events.find((e: any) => e.type === 'm.room.member' && e.state_key === bob!.userId);
  expect(member.content).toMatchObject({ membership: 'invite', is_direct: true });
  expect((await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {})).status).toBe(200);
  await net.flush();
  expect((await a.storage.read((t: any) => t.memberships.get(roomId, bob!.userId)))?.membership).toBe('join');
});
