// A client transaction ID the room engine no longer remembers (after a restart) is found through storage: the
// write that would record it again fails with EXISTS and the earlier event is the answer. On IndexedDB that
// check is the insert itself (no read first), so both kinds of backend are run.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, test } from 'vitest';
import { openIdbStorage } from '../../../src/storage/idb/index.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer } from '../harness.js';

const backends: Array<[string, () => Promise<Storage>]> = [
  ['memory', async () => createMemoryStorage()],
  ['IndexedDB', () => openIdbStorage('txn-replay', { indexedDB: new IDBFactory(), IDBKeyRange })],
  ['IndexedDB (exclusive)', () => openIdbStorage('txn-replay', { indexedDB: new IDBFactory(), IDBKeyRange, exclusive: true })],
];

describe.each(backends)('on %s', (_name, open) => {
  test('a replay after a restart, sender still joined, returns the stored event and stores nothing', async () => {
    const storage = await open();
    const first = await startTestServer({ storage });
    const alice = await first.register('alice');
    const created = await first.call('POST', '/_matrix/client/v3/createRoom', {}, alice.accessToken);
    const roomId = created.json.room_id as string;
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`;
    const sent = await first.call('PUT', path, { msgtype: 'm.text', body: 'one' }, alice.accessToken);
    expect(sent.status).toBe(200);
    await first.homeserver.close();

    const restarted = await startTestServer({ storage });
    try {
      const position = await storage.read((txn) => txn.stream.current());
      const again = await restarted.call('PUT', path, { msgtype: 'm.text', body: 'two' }, alice.accessToken);
      expect(again).toMatchObject({ status: 200, json: { event_id: sent.json.event_id } });
      expect(await storage.read((txn) => txn.stream.current())).toBe(position);
      const timeline = await storage.read((txn) => txn.timeline.range(roomId, { dir: 'b', limit: 1 }));
      expect(timeline.map((r) => r.eventId)).toEqual([sent.json.event_id]);
      // The room goes on normally after the refused write.
      const next = await restarted.call('PUT', path.replace(/t1$/, 't2'), { msgtype: 'm.text', body: 'three' }, alice.accessToken);
      expect(next.status).toBe(200);
      expect(next.json.event_id).not.toBe(sent.json.event_id);
    } finally {
      await restarted.homeserver.close();
      await storage.close();
    }
  });
});
