// Access tokens at rest: only their hashes reach the disk, and a database written before migration 4 (tokens
// stored as they are) keeps its users logged in once the new code opens it, on SQLite and on IndexedDB.
import 'fake-indexeddb/auto';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import Database from 'better-sqlite3';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations, openIdbStorage } from '../../../src/storage/index.js';
import { encodeKey } from '../../../src/storage/keys.js';
import { openSqliteStorage } from '../../../src/storage/sqlite/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

const V3 = '/_matrix/client/v3';
/** The schema before tokens were hashed. */
const BEFORE_HASHING = migrations.slice(0, 3);
const OLD_TOKEN = 'htk_OldTokenFromBeforeTheUpgrade0123456789ab';
const oldRow = { token: OLD_TOKEN, userId: '@alice:hs.test', deviceId: 'OLDDEVICE', createdAt: 1 };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hometab-tokens-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Whoami with `token`: its user ID, or the status it was refused with. */
async function whoami(server: TestServer, token: string): Promise<string | number> {
  const { status, json } = await server.call('GET', `${V3}/account/whoami`, undefined, token);
  return status === 200 ? json.user_id : status;
}

/** What a user of an upgraded server still does with a token issued before the upgrade. */
async function expectOldTokenWorks(storage: Storage): Promise<void> {
  const server = await startTestServer({ storage });
  try {
    expect(await whoami(server, OLD_TOKEN)).toBe('@alice:hs.test');
    expect((await server.call('POST', `${V3}/logout`, {}, OLD_TOKEN)).status).toBe(200);
    expect(await whoami(server, OLD_TOKEN)).toBe(401);
  } finally {
    await server.close();
  }
}

describe('access tokens at rest', () => {
  it('never reach the SQLite files, and survive a restart', async () => {
    const path = join(dir, 'hs.sqlite');
    let storage = await openSqliteStorage(path);
    let server = await startTestServer({ storage });
    const alice = await server.register('alice', 'pw of alice');
    const login = await server.call('POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'pw of alice' });
    const tokens = [alice.accessToken, login.json.access_token as string];
    expect(await whoami(server, tokens[1]!)).toBe(alice.userId);
    await server.close();

    // While open the WAL holds the latest pages; both it and the main file are searched.
    const onDisk = () => ['', '-wal'].map((suffix) => (existsSync(path + suffix) ? readFileSync(path + suffix).toString('latin1') : '')).join('');
    for (const token of tokens) expect(onDisk()).not.toContain(token);
    await storage.close();
    for (const token of tokens) expect(onDisk()).not.toContain(token);

    storage = await openSqliteStorage(path);
    server = await startTestServer({ storage });
    try {
      for (const token of tokens) expect(await whoami(server, token)).toBe(alice.userId);
      expect((await server.call('POST', `${V3}/logout/all`, {}, tokens[0])).status).toBe(200);
      for (const token of tokens) expect(await whoami(server, token)).toBe(401);
    } finally {
      await server.close();
      await storage.close();
    }
  });

  it('keeps tokens of an SQLite database from before hashing valid', async () => {
    const path = join(dir, 'hs.sqlite');
    await (await openSqliteStorage(path, { migrations: BEFORE_HASHING })).close();
    // The old code's row, as it wrote it: keyed by the token, with its by-device index entry.
    const db = new Database(path);
    const key = Buffer.from(encodeKey([OLD_TOKEN]), 'latin1');
    db.prepare('INSERT INTO "t_access_tokens" (k, v) VALUES (?, ?)').run(key, serialize(oldRow));
    db.prepare('INSERT INTO "x_access_tokens__by_device" (ik, pk) VALUES (?, ?)').run(Buffer.from(encodeKey([oldRow.userId, oldRow.deviceId]), 'latin1'), key);
    expect(db.pragma('user_version', { simple: true })).toBe(3);
    db.close();

    const storage = await openSqliteStorage(path);
    try {
      await expectOldTokenWorks(storage);
    } finally {
      await storage.close();
    }
  });

  it('keeps tokens of an IndexedDB database from before hashing valid', async () => {
    const indexedDB = new IDBFactory();
    await (await openIdbStorage('hs', { indexedDB, IDBKeyRange, migrations: BEFORE_HASHING })).close();
    // The old code's row, put straight into the version 3 object store.
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('hs');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        expect(db.version).toBe(3);
        const tx = db.transaction('access_tokens', 'readwrite');
        tx.objectStore('access_tokens').put(oldRow);
        tx.oncomplete = () => {
          db.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
    });

    const storage = await openIdbStorage('hs', { indexedDB, IDBKeyRange });
    try {
      await expectOldTokenWorks(storage);
    } finally {
      await storage.close();
    }
  });
});
