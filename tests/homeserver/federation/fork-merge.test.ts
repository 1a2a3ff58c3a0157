// Forks are normal: two servers write into one room while cut off from each other, then catch up by
// hand the way p2p's anti-entropy does (compare extremities, get_missing_events, receivePdus). Both
// end with the same events, the same resolved state, and the next event merges both branches.
import { expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, twoServersInRoom } from '../rooms/helpers.js';

/** One federation request from `origin` to `server`, as the transport would deliver it. */
async function fed(server: TestServer, origin: TestServer, method: string, path: string, body?: unknown): Promise<any> {
  const init: RequestInit = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await server.homeserver.handleFederation(new Request(`http://${server.serverName}${path}`, init), origin.serverName);
  const json = await response.json();
  expect(response.status, JSON.stringify(json)).toBe(200);
  return json;
}

/** What `to` lacks of `from`'s branch of the room: extremities, the events between, then the tips themselves. */
async function catchUp(to: TestServer, from: TestServer, roomId: string): Promise<void> {
  const ours = await to.storage.read((t) => t.dag.extremities(roomId));
  const theirs: string[] = (await fed(from, to, 'POST', '/_matrix/federation/unstable/org.hometab/extremities', { rooms: { [roomId]: ours } })).rooms[roomId];
  const unknown = [];
  for (const id of theirs) if (!(await to.storage.read((t) => t.events.has(id)))) unknown.push(id);
  if (unknown.length === 0) return;
  const missing = await fed(from, to, 'POST', `/_matrix/federation/v1/get_missing_events/${enc(roomId)}`, { earliest_events: ours, latest_events: unknown, limit: 50 });
  const tips = await Promise.all(unknown.map(async (id) => (await fed(from, to, 'GET', `/_matrix/federation/v1/event/${enc(id)}`)).pdus[0]));
  // Any order: receivePdus sorts parents first.
  const outcomes = await to.homeserver.replication.receivePdus([...tips, ...missing.events].reverse(), from.serverName);
  for (const outcome of outcomes) expect(['accepted', 'duplicate'], JSON.stringify(outcome)).toContain(outcome.outcome);
}

const eventSet = (s: TestServer, roomId: string) =>
  s.storage.read(async (t) => {
    const ids = new Set<string>();
    let frontier = await t.dag.extremities(roomId);
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const id of frontier) {
        if (ids.has(id)) continue;
        ids.add(id);
        const record = await t.events.get(id);
        if (record) next.push(...record.event.prev_events);
      }
      frontier = next;
    }
    return [...ids].sort();
  });

test('concurrent messages and topic changes on two cut-off servers merge into one room', async () => {
  const { net, a, b, alice, bob, roomId } = await twoServersInRoom({ preset: 'public_chat', name: 'Fork' });
  const levels = (await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.power_levels/`)).json;
  expect((await alice!.putState(roomId, 'm.room.power_levels', '', { ...levels, users: { ...levels.users, [bob!.userId]: 100 } })).status).toBe(200);
  await net.flush();

  // Cut off: each side writes messages and a topic.
  net.link(a, b, false);
  for (let i = 0; i < 3; i++) await alice!.send(roomId, { msgtype: 'm.text', body: `a${i}` });
  expect((await alice!.putState(roomId, 'm.room.topic', '', { topic: 'from A' })).status).toBe(200);
  for (let i = 0; i < 4; i++) await bob!.send(roomId, { msgtype: 'm.text', body: `b${i}` });
  expect((await bob!.putState(roomId, 'm.room.topic', '', { topic: 'from B' })).status).toBe(200);
  expect(await eventSet(a, roomId)).not.toEqual(await eventSet(b, roomId));

  // Anti-entropy by hand, both ways.
  await catchUp(a, b, roomId);
  await catchUp(b, a, roomId);
  expect(await eventSet(a, roomId)).toEqual(await eventSet(b, roomId));
  const tipsA = (await a.storage.read((t) => t.dag.extremities(roomId))).sort();
  expect(tipsA).toHaveLength(2);
  expect((await b.storage.read((t) => t.dag.extremities(roomId))).sort()).toEqual(tipsA);
  const state = (s: TestServer) => s.storage.read(async (t) => [...(await t.currentState.load(roomId))].sort());
  expect(await state(a)).toEqual(await state(b));
  const topicA = (await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.topic/`)).json.topic;
  expect((await bob!.call('GET', `/rooms/${enc(roomId)}/state/m.room.topic/`)).json.topic).toBe(topicA);

  // The queued pushes arrive after the fact: all duplicates, nothing changes.
  net.link(a, b, true);
  await net.flush();
  expect(await eventSet(a, roomId)).toEqual(await eventSet(b, roomId));

  // The next event merges both branches, and both servers take it.
  const merge = await alice!.send(roomId, { msgtype: 'm.text', body: 'merged' });
  const record = await a.storage.read((t) => t.events.get(merge));
  expect([...record!.event.prev_events].sort()).toEqual(tipsA);
  await net.flush();
  expect(await b.storage.read((t) => t.dag.extremities(roomId))).toEqual([merge]);
  expect(await state(a)).toEqual(await state(b));
});
