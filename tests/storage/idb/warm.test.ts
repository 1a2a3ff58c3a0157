// Opening a profile's database early (src/storage/idb/warm.ts) over fake-indexeddb: it never creates a
// database, and it never holds up the real open, with or without an upgrade.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { openIdbStorage } from '../../../src/storage/index.js';
import { migrations } from '../../../src/storage/schema.js';
import { warmIdbDatabase } from '../../../src/storage/idb/warm.js';

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

async function databaseNames(indexedDB: IDBFactory): Promise<string[]> {
  return (await indexedDB.databases()).map((d) => d.name ?? '');
}

describe('warmIdbDatabase', () => {
  it('leaves a missing database missing, so the real open migrates it from nothing', async () => {
    const indexedDB = new IDBFactory();
    const release = warmIdbDatabase('hometab:fresh', indexedDB);
    await settle();
    expect(await databaseNames(indexedDB)).toEqual([]);
    const storage = await openIdbStorage('hometab:fresh', { indexedDB, IDBKeyRange });
    await storage.write((txn) => txn.meta.put('k', 'v'));
    expect(await storage.read((txn) => txn.meta.get('k'))).toBe('v');
    release();
    await storage.close();
  });

  it('opens an existing database beside the real open, and lets it upgrade', async () => {
    const indexedDB = new IDBFactory();
    const older = await openIdbStorage('hometab:old', { indexedDB, IDBKeyRange, migrations: migrations.slice(0, migrations.length - 1) });
    await older.write((txn) => txn.meta.put('kept', 1));
    await older.close();

    const release = warmIdbDatabase('hometab:old', indexedDB);
    await settle();
    // The current schema is one version newer: the early connection steps aside for the upgrade.
    const storage = await openIdbStorage('hometab:old', { indexedDB, IDBKeyRange });
    expect(await storage.read((txn) => txn.meta.get('kept'))).toBe(1);
    release();
    await storage.close();

    // Released: the database can be deleted at once (no connection left open).
    await new Promise<void>((resolve, reject) => {
      const request = indexedDB.deleteDatabase('hometab:old');
      request.onblocked = () => reject(new Error('a connection was left open'));
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
    });
  });
});
