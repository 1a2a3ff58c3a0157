// The read side on IndexedDB (fake-indexeddb) and SQLite: one sync-and-paginate scenario per backend, so a
// transaction that would go inactive in a browser fails here. `SYNC_TEST_STORAGE=idb|sqlite` runs every sync suite.
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, describe, expect, test } from 'vitest';
import { openIdbStorage } from '../../../src/storage/idb/index.js';
import { openSqliteStorage } from '../../../src/storage/sqlite/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer } from '../harness.js';
import { bodies, enc, ids, query, userOf } from './helpers.js';

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const backends: Array<[string, () => Promise<Storage>]> = [
  ['IndexedDB', () => openIdbStorage('sync-backend', { indexedDB: new IDBFactory(), IDBKeyRange })],
  [
    'SQLite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'hometab-sync-'));
      tempDirs.push(dir);
      return openSqliteStorage(join(dir, 'hs.sqlite'));
    },
  ],
];

describe.each(backends)('on %s', (_name, open) => {
  test('sync, long-poll, receipts, typing and pagination', async () => {
    const storage = await open();
    const server = await startTestServer({ storage });
    try {
      const alice = userOf(server, await server.register('alice'));
      const bob = userOf(server, await server.register('bob'));
      const roomId = await alice.createRoom({ preset: 'public_chat', name: 'Backends' });
      await bob.join(roomId);
      for (let i = 0; i < 30; i++) await bob.send(roomId, `m${i}`);

      const first = await alice.sync({ filter: { room: { timeline: { limit: 5 }, state: { lazy_load_members: true } } } });
      const timeline = first.rooms.join[roomId].timeline;
      expect(bodies(timeline.events)).toEqual(['m25', 'm26', 'm27', 'm28', 'm29']);

      const waiting = alice.sync({ since: first.next_batch, timeout: 5000 });
      await new Promise((r) => setTimeout(r, 10));
      const sent = await bob.send(roomId, 'wake');
      expect(ids((await waiting).rooms.join[roomId].timeline.events)).toEqual([sent]);

      await alice.ok('POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(sent)}`, {});
      await bob.ok('PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true });
      const ephemeral = await bob.sync();
      const types = ephemeral.rooms.join[roomId].ephemeral.events.map((e: any) => e.type).sort();
      expect(types).toEqual(['m.receipt', 'm.typing']);

      let from = timeline.prev_batch;
      const older: string[] = [];
      for (;;) {
        const page = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', from, limit: 7 })}`);
        older.push(...bodies(page.chunk));
        if (!page.end) break;
        from = page.end;
      }
      expect(older.reverse()).toEqual(Array.from({ length: 25 }, (_, i) => `m${i}`));
    } finally {
      await server.close();
      await storage.close();
    }
  });
});
