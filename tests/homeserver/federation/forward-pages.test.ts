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
