// GET /_matrix/client/unstable/org.hometab/rooms/{roomId}/dag: the newest events with their prev_events and
// authoring server, for the app's history graph. A fork made by two cut-off servers shows as two events on
// one parent and the next event as their merge; only members may read it; limit is checked.
import { afterEach, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, setup, twoServersInRoom } from './helpers.js';

let single: TestServer | undefined;
afterEach(async () => {
  await single?.close();
  single = undefined;
});

const dag = (server: TestServer, token: string, roomId: string, query = '') =>
  server.call('GET', `/_matrix/client/unstable/org.hometab/rooms/${enc(roomId)}/dag${query}`, undefined, token);

test('a fork between cut-off servers and its merge, with each event’s origin', async () => {
  const { net, a, b, alice, bob, roomId } = await twoServersInRoom({ preset: 'public_chat', name: 'Fork' });

  net.link(a, b, false);
  const fromA = [await alice!.send(roomId, { msgtype: 'm.text', body: 'a1' }), await alice!.send(roomId, { msgtype: 'm.text', body: 'a2' })];
  const fromB = [await bob!.send(roomId, { msgtype: 'm.text', body: 'b1' })];
  net.link(a, b, true);
  await net.flush();
  const merge = await alice!.send(roomId, { msgtype: 'm.text', body: 'merged' });
  await net.flush();

  for (const [server, token] of [[a, alice!.accessToken], [b, bob!.accessToken]] as const) {
    const { status, json } = await dag(server, token, roomId, '?limit=50');
    expect(status, JSON.stringify(json)).toBe(200);
    const byId = new Map<string, any>(json.events.map((e: any) => [e.event_id, e]));
    // Oldest first, in this server's stream order.
    const streams = json.events.map((e: any) => e.stream_ordering);
    expect(streams).toEqual([...streams].sort((x: number, y: number) => x - y));
    expect(byId.get(fromA[0]!).prev_events).toEqual(byId.get(fromB[0]!).prev_events);
    expect(byId.get(fromA[0]!).origin).toBe(a.serverName);
    expect(byId.get(fromB[0]!).origin).toBe(b.serverName);
    expect(byId.get(fromB[0]!).sender).toBe(bob!.userId);
    expect([...byId.get(merge).prev_events].sort()).toEqual([fromA[1]!, fromB[0]!].sort());
    expect(byId.get(merge).type).toBe('m.room.message');
    expect(byId.get(merge).depth).toBeGreaterThan(byId.get(fromA[1]!).depth);
  }
});

test('the newest `limit` events; bad limits and non-members are refused', async () => {
  const { server, clients } = await setup('alice', 'eve');
  single = server;
  const [alice, eve] = clients as [NonNullable<(typeof clients)[0]>, NonNullable<(typeof clients)[0]>];
  const roomId = await alice.createRoom({ preset: 'private_chat' });
  const sent: string[] = [];
  for (let i = 0; i < 5; i++) sent.push(await alice.send(roomId, { msgtype: 'm.text', body: `m${i}` }));

  const { status, json } = await dag(server, alice.accessToken, roomId, '?limit=3');
  expect(status).toBe(200);
  expect(json.events.map((e: any) => e.event_id)).toEqual(sent.slice(2));
  expect(json.events[1].prev_events).toEqual([sent[2]]);
  // The whole room: create event first, with no parents.
  const all = (await dag(server, alice.accessToken, roomId)).json.events;
  expect(all[0].type).toBe('m.room.create');
  expect(all[0].prev_events).toEqual([]);

  expect((await dag(server, eve.accessToken, roomId)).status).toBe(403);
  for (const bad of ['?limit=0', '?limit=-1', '?limit=abc', '?limit=1e3', '?limit=1234567890']) {
    expect((await dag(server, alice.accessToken, roomId, bad)).status, bad).toBe(400);
  }
  // A limit above the most the route gives is clamped, as Synapse clamps /messages.
  const large = await dag(server, alice.accessToken, roomId, '?limit=99999');
  expect(large.status).toBe(200);
  expect(large.json.events.map((e: any) => e.event_id)).toEqual(all.map((e: any) => e.event_id));
  expect((await dag(server, alice.accessToken, '!nope')).status).toBe(400);
  expect((await server.call('GET', `/_matrix/client/unstable/org.hometab/rooms/${enc(roomId)}/dag`)).status).toBe(401);
});
