/**
 * Issue 6, "values stored that cannot be read back", written as the attack: a
 * value nested 2,400 deep (about 14 KB) that V8 serializes but cannot
 * deserialize, sent where another user's reads would meet it (their to-device
 * inbox, one's own cross-signing keys as read by keys/query). The ingress
 * refuses it; and a row like it already on disk (planted in SQLite, as an older
 * version would have left it) is skipped with a warning, across a restart,
 * instead of answering 500 to everyone who reads past it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/homeserver/context.js';
import { openSqliteStorage } from '../../../src/storage/sqlite/index.js';
import { plantRow, unreadableRowBytes } from '../../support/poisoned-rows.js';
import { startTestServer, type TestServer } from '../harness.js';

const DEPTH = 2_400;
/** `{"a":{"a":...1...}}` nested DEPTH deep, as text: JSON.stringify of it would itself be fine, but this is the wire form. */
const deepJson = (inner = '1') => '{"a":'.repeat(DEPTH) + inner + '}'.repeat(DEPTH);

let server: TestServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('a value nested 2,400 deep', () => {
  it('sent to a device is refused with 400 M_BAD_JSON, and the recipient still syncs', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const body = `{"messages":{"${bob.userId}":{"${bob.deviceId}":${deepJson()}}}}`;
    expect(body.length).toBeGreaterThan(14_000);
    const sent = await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.evil/t1', body, alice.accessToken);
    expect([sent.status, sent.json.errcode]).toEqual([400, 'M_BAD_JSON']);

    const sync = await server.call('GET', '/_matrix/client/v3/sync', undefined, bob.accessToken);
    expect(sync.status).toBe(200);
    expect(sync.json.to_device?.events ?? []).toEqual([]);
  });

  it('uploaded as a cross-signing key is refused with 400, and keys/query naming the user still answers 200', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const body = `{"master_key":${deepJson()}}`;
    const upload = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', body, alice.accessToken);
    expect([upload.status, upload.json.errcode]).toEqual([400, 'M_BAD_JSON']);

    const query = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [] } }, bob.accessToken);
    expect(query.status).toBe(200);
    expect(query.json.master_keys ?? {}).toEqual({});
  });
});

describe('a row on disk that cannot be read back', () => {
  it('is skipped with a logged reason by /sync (to-device, account data) and /keys/query, across a restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'hometab-poison-'));
    const path = join(dir, 'hometab.sqlite');
    const warnings: string[] = [];
    const log: Logger = { debug() {}, warn: (message) => warnings.push(message), error: (message, detail) => console.error(message, detail) };

    let storage = await openSqliteStorage(path);
    server = await startTestServer({ storage, log });
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const send = (txnId: string, content: object) =>
      server!.call('PUT', `/_matrix/client/v3/sendToDevice/m.test/${txnId}`, { messages: { [bob.userId]: { [bob.deviceId]: content } } }, alice.accessToken);
    expect((await send('t1', { n: 1 })).status).toBe(200);
    const [first] = await storage.read((txn) => txn.toDevice.list(bob.userId, bob.deviceId, {}));
    expect((await send('t2', { n: 2 })).status).toBe(200);
    const crossSigning = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', { master_key: { user_id: alice.userId, usage: ['master'], keys: { 'ed25519:x': 'x' } } }, alice.accessToken);
    const tagged = await server.call('PUT', `/_matrix/client/v3/user/${encodeURIComponent(bob.userId)}/account_data/m.poison`, { a: 1 }, bob.accessToken);
    expect([crossSigning.status, tagged.status]).toEqual([200, 200]);
    const [accountRow] = await storage.read((txn) => txn.accountData.list(bob.userId));
    await server.close();
    await storage.close();

    // What an older version would have left behind: bob's first message, alice's master key and bob's account data.
    plantRow(path, 'to_device', [bob.userId, bob.deviceId, first!.streamOrdering], unreadableRowBytes({ ...first }, 'content'));
    plantRow(path, 'cross_signing_keys', [alice.userId, 'master'], unreadableRowBytes({ userId: alice.userId, keyType: 'master' }, 'keys'));
    plantRow(path, 'account_data', [bob.userId, '', 'm.poison'], unreadableRowBytes({ ...accountRow }, 'content'));

    for (let restart = 0; restart < 2; restart++) {
      storage = await openSqliteStorage(path);
      server = await startTestServer({ storage, log });
      const sync = await server.call('GET', '/_matrix/client/v3/sync', undefined, bob.accessToken);
      expect(sync.status).toBe(200);
      if (restart === 0) expect(sync.json.to_device.events.map((e: { content: unknown }) => e.content)).toEqual([{ n: 2 }]);
      expect((sync.json.account_data?.events ?? []).filter((e: { type: string }) => e.type === 'm.poison')).toEqual([]);
      const query = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [] } }, bob.accessToken);
      expect(query.status).toBe(200);
      expect(query.json.master_keys ?? {}).toEqual({});
      await server.close();
      await storage.close();
      server = undefined;
    }
    // Alice can replace her poisoned key: the upload reads it as absent (no UIA), and storage overwrites it.
    storage = await openSqliteStorage(path);
    server = await startTestServer({ storage, log });
    const master = { user_id: alice.userId, usage: ['master'], keys: { 'ed25519:y': 'y' } };
    expect((await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', { master_key: master }, alice.accessToken)).status).toBe(200);
    const after = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [] } }, bob.accessToken);
    expect(after.json.master_keys[alice.userId]).toEqual(master);
    await server.close();
    await storage.close();
    server = undefined;

    expect(warnings.some((w) => w.includes('to-device inbox'))).toBe(true);
    expect(warnings.some((w) => w.includes('cross-signing keys'))).toBe(true);
    expect(warnings.some((w) => w.includes('account data'))).toBe(true);
  });
});
