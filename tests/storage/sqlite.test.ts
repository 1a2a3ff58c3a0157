// The storage contract on the SQLite backend: one database file per test, in a temporary directory.
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as vitest from 'vitest';
import { migrations } from '../../src/storage/index.js';
import { openSqliteStorage } from '../../src/storage/sqlite/index.js';
import { StorageError } from '../../src/storage/errors.js';
import { plantRow, unreadableRowBytes } from '../support/poisoned-rows.js';
import { runStorageContract } from './contract.js';

runStorageContract(
  'sqlite',
  {
    persistent: true,
    location: () => {
      const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
      return {
        open: (options) => openSqliteStorage(join(dir, 'hometab.sqlite'), options),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  vitest,
);

vitest.describe('sqlite layout', () => {
  vitest.it('upgrades a database whose index list predates multiEntry indexes, and keeps its events\' children', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
    const path = join(dir, 'hometab.sqlite');
    const event = (depth: number, prev: string[]) => ({ room_id: '!r:hs', sender: '@a:hs', type: 'm.room.message', content: {}, origin_server_ts: depth, prev_events: prev, auth_events: [], depth }) as never;
    try {
      // A database at schema 5, its index list in the layout before the multi_entry column.
      const old = await openSqliteStorage(path, { migrations: migrations.slice(0, 5) });
      await old.write(async (txn) => {
        await txn.events.add({ eventId: '$1', roomId: '!r:hs', event: event(1, []) });
        await txn.events.add({ eventId: '$2', roomId: '!r:hs', event: event(2, ['$1']) });
      });
      await old.close();
      const older = new Database(path);
      older.exec('ALTER TABLE _indexes DROP COLUMN multi_entry');
      older.close();

      const storage = await openSqliteStorage(path);
      await storage.write((txn) => txn.events.add({ eventId: '$3', roomId: '!r:hs', event: event(3, ['$2', '$1']) }));
      await storage.read(async (txn) => {
        vitest.expect(await txn.dag.children('$1')).toEqual(['$2', '$3']);
        vitest.expect(await txn.dag.children('$2')).toEqual(['$3']);
        vitest.expect((await txn.timeline.range('!r:hs', { dir: 'f' })).map((e) => e.eventId)).toEqual(['$1', '$2', '$3']);
      });
      await storage.close();
      const db = new Database(path, { readonly: true });
      const indexes = db.prepare('SELECT name, multi_entry FROM _indexes WHERE table_name = ? ORDER BY name').all('events');
      db.close();
      vitest.expect(indexes).toEqual([
        { name: 'by_prev', multi_entry: 1 },
        { name: 'by_room_depth', multi_entry: 0 },
        { name: 'by_room_stream', multi_entry: 0 },
        { name: 'by_stream', multi_entry: 0 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  vitest.it('drops the (pk) indexes older databases kept beside index tables; index reads and moves still work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
    const path = join(dir, 'hometab.sqlite');
    const member = (userId: string, membership: 'join' | 'leave') => ({ roomId: '!r:hs', userId, membership, eventId: `$${userId}` });
    try {
      const first = await openSqliteStorage(path);
      await first.write(async (txn) => {
        await txn.memberships.set(member('@a:hs', 'join'));
        await txn.memberships.set(member('@b:hs', 'join'));
      });
      await first.close();
      // What an index table carried before index entries were found through their rows.
      const older = new Database(path);
      older.exec('CREATE INDEX "x_memberships__by_room__pk" ON "x_memberships__by_room" (pk)');
      older.close();

      const storage = await openSqliteStorage(path);
      await storage.write(async (txn) => {
        await txn.memberships.set(member('@a:hs', 'leave'));
        await txn.memberships.set(member('@c:hs', 'join'));
      });
      const rows = await storage.read((txn) => txn.memberships.forRoom('!r:hs'));
      vitest.expect(rows.map((r) => [r.userId, r.membership])).toEqual([['@a:hs', 'leave'], ['@b:hs', 'join'], ['@c:hs', 'join']]);
      await storage.close();

      const db = new Database(path, { readonly: true });
      const pkIndexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name GLOB 'x_*__pk'`).all();
      db.close();
      vitest.expect(pkIndexes).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

vitest.describe('sqlite files at rest', () => {
  const modeOf = (path: string) => statSync(path).mode & 0o777;

  vitest.it('creates the database and its -wal and -shm files 0600, whatever the umask', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
    const path = join(dir, 'hometab.sqlite');
    const umask = process.umask(0o022);
    try {
      const storage = await openSqliteStorage(path);
      await storage.write((txn) => txn.users.add({ userId: '@a:hs', deactivated: false, createdAt: 1 }));
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        vitest.expect(existsSync(file)).toBe(true);
        vitest.expect({ file, mode: modeOf(file) }).toEqual({ file, mode: 0o600 });
      }
      await storage.close();
    } finally {
      process.umask(umask);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  vitest.it('narrows existing files that others could read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
    const path = join(dir, 'hometab.sqlite');
    try {
      await (await openSqliteStorage(path)).close();
      chmodSync(path, 0o644);
      writeFileSync(`${path}-shm`, '');
      chmodSync(`${path}-shm`, 0o664);
      const storage = await openSqliteStorage(path);
      vitest.expect(modeOf(path)).toBe(0o600);
      vitest.expect(modeOf(`${path}-shm`)).toBe(0o600);
      vitest.expect(modeOf(`${path}-wal`)).toBe(0o600);
      await storage.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

vitest.describe('sqlite rows that cannot be read back', () => {
  const { expect, it } = vitest;
  const ALICE = '@alice:hs';

  async function withDatabase(body: (path: string) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
    try {
      await body(join(dir, 'hometab.sqlite'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('reads one as CORRUPT_ROW, and list reads given onCorrupt skip it, report it, and still fill their limit', async () => {
    await withDatabase(async (path) => {
      const storage = await openSqliteStorage(path);
      for (let i = 0; i < 3; i++) {
        await storage.write((txn) => txn.toDevice.add(ALICE, 'A', { sender: ALICE, type: `m.t${i}`, content: {} }));
      }
      const [first] = await storage.read((txn) => txn.toDevice.list(ALICE, 'A', { limit: 1 }));
      plantRow(path, 'to_device', [ALICE, 'A', first!.streamOrdering], unreadableRowBytes({ ...first }, 'content'));

      await expect(storage.read((txn) => txn.toDevice.list(ALICE, 'A', {}))).rejects.toMatchObject({ code: 'CORRUPT_ROW' });
      const skipped: StorageError[] = [];
      const page = await storage.read((txn) => txn.toDevice.list(ALICE, 'A', { limit: 2 }, (e) => skipped.push(e)));
      expect(page.map((m) => m.type)).toEqual(['m.t1', 'm.t2']);
      expect(skipped.map((e) => [e.name, e.code])).toEqual([['StorageError', 'CORRUPT_ROW']]);
      // Delivered messages are deleted by range, the poisoned one with them.
      await storage.write((txn) => txn.toDevice.deleteUpTo(ALICE, 'A', page[1]!.streamOrdering));
      expect(await storage.read((txn) => txn.toDevice.list(ALICE, 'A', {}))).toEqual([]);
      await storage.close();
    });
  });

  it('replaces or deletes one in an indexed table, moving its index entries', async () => {
    await withDatabase(async (path) => {
      const storage = await openSqliteStorage(path);
      const record = await storage.write((txn) => txn.accountData.put(ALICE, 'm.poison', { a: 1 }));
      plantRow(path, 'account_data', [ALICE, '', 'm.poison'], unreadableRowBytes({ ...record }, 'content'));
      await expect(storage.read((txn) => txn.accountData.get(ALICE, 'm.poison'))).rejects.toBeInstanceOf(StorageError);
      const skipped: StorageError[] = [];
      expect(await storage.read((txn) => txn.accountData.changes(ALICE, { dir: 'f' }, (e) => skipped.push(e)))).toEqual([]);
      expect(skipped).toHaveLength(1);

      const replaced = await storage.write((txn) => txn.accountData.put(ALICE, 'm.poison', { a: 2 }));
      expect(await storage.read((txn) => txn.accountData.changes(ALICE, { dir: 'f' }))).toEqual([replaced]);
      await storage.close();
    });
  });
});
