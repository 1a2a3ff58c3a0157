// Hometab's forward pages (POST /_matrix/federation/unstable/org.hometab/forward/{roomId}), which catch-up uses
// for a long gap: the room's timeline above the asker's lowest known extremity, oldest first, a page at a time
// through the `next` cursor, none of it for a server with no member in the room, and a malformed cursor refused.
import { expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation } from '../../support/federation.js';
import { enc, withUsers } from '../rooms/helpers.js';

const forward = (server: TestServer, origin: string, roomId: string, body: unknown) =>
  server.homeserver.handleFederation(
    new Request(`http://${server.serverName}/_matrix/federation/unstable/org.hometab/forward/${enc(roomId)}`, { method: 'POST', body: JSON.stringify(body) }),
    origin,
  );

test('forward pages give the timeline above the lowest known extremity, oldest first, page by page, to members only', async () => {
  const net = await startFederation(3);
  const [a, b, c] = net.servers as [TestServer, TestServer, TestServer];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat' });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
  await net.flush();
  const tips = await a.storage.read((t) => t.dag.extremities(roomId));
  const bodies: string[] = [];
  for (let i = 0; i < 7; i++) {
    bodies.push(`m${i}`);
    await alice!.send(roomId, { msgtype: 'm.text', body: `m${i}` });
  }

  const pages: unknown[][] = [];
  let from: unknown;
  for (let n = 0; n < 10; n++) {
    const response = await forward(a, b.serverName, roomId, { earliest_events: tips, limit: 3, ...(from ? { from } : {}) });
    expect(response.status).toBe(200);
    const page = (await response.json()) as { events: Array<{ depth: number; content: { body?: string } }>; next?: unknown };
    pages.push(page.events);
    if (!page.next) break;
    from = page.next;
  }
  const events = pages.flat() as Array<{ depth: number; content: { body?: string } }>;
  expect(events.map((e) => e.content.body)).toEqual(bodies);
  expect(events.map((e) => e.depth)).toEqual([...events.map((e) => e.depth)].sort((x, y) => x - y));
  expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);

  // No member on C: nothing.
  expect((await forward(a, c.serverName, roomId, { earliest_events: tips, limit: 3 })).status).toBe(403);
  // Unknown extremities: an empty page (the asker walks back instead).
  expect(await (await forward(a, b.serverName, roomId, { earliest_events: ['$unknown'], limit: 3 })).json()).toEqual({ events: [] });
  // A cursor that is not a position.
  expect((await forward(a, b.serverName, roomId, { earliest_events: tips, from: { depth: 'x' } })).status).toBe(400);
  await net.close();
});

test('forward pages judge each event by the state before it: a history_visibility change inside a run of messages hides what follows it', async () => {
  const net = await startFederation(2);
  const [a, b] = net.servers as [TestServer, TestServer];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat' });
  const createId = (await a.storage.read((t) => t.currentState.get(roomId, 'm.room.create', '')))!;
  for (const body of ['shared-0', 'shared-1']) await alice!.send(roomId, { msgtype: 'm.text', body });
  expect((await alice!.call('PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility/`, { history_visibility: 'joined' })).status).toBe(200);
  for (const body of ['hidden-0', 'hidden-1', 'hidden-2']) await alice!.send(roomId, { msgtype: 'm.text', body });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
  await net.flush();
  for (const body of ['joined-0', 'joined-1']) await alice!.send(roomId, { msgtype: 'm.text', body });

  // Page sizes that cut the runs in different places; every cut must give the same events.
  for (const limit of [2, 3, 1000]) {
    const bodies: string[] = [];
    let from: unknown;
    for (let n = 0; n < 50; n++) {
      const response = await forward(a, b.serverName, roomId, { earliest_events: [createId], limit, ...(from ? { from } : {}) });
      expect(response.status).toBe(200);
      const page = (await response.json()) as { events: Array<{ type: string; content: { body?: string } }>; next?: unknown };
      for (const e of page.events) if (e.type === 'm.room.message') bodies.push(e.content.body!);
      if (!page.next) break;
      from = page.next;
    }
    expect(bodies, `limit ${limit}`).toEqual(['shared-0', 'shared-1', 'joined-0', 'joined-1']);
  }
  await net.close();
});
