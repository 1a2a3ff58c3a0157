// /sync answered from SyncMemory must equal /sync answered from storage: two sync services over one storage,
// one of them without Storage.observe (so it always reads), compute every sync of a scripted conversation
// from every token seen so far, and the answers must be identical. The scripted traffic covers what memory
// follows or must refuse: sends, redactions, profile changes, joins and leaves, receipts, typing, account data,
// to-device, key uploads and claims, filters (limits, lazy loading, senders) and more events than memory keeps.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, test } from 'vitest';
import { createSigner } from '../../../src/core/index.js';
import { DEFAULT_CONFIG, type HomeserverContext } from '../../../src/homeserver/context.js';
import { parseFilter, SyncFilter } from '../../../src/homeserver/sync/filters.js';
import { SyncService } from '../../../src/homeserver/sync/sync.js';
import { parseSyncToken } from '../../../src/homeserver/sync/tokens.js';
import { TypingTracker } from '../../../src/homeserver/sync/typing.js';
import { openIdbStorage } from '../../../src/storage/idb/index.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer } from '../harness.js';
import { enc, userOf } from './helpers.js';

const FILTERS: Record<string, unknown> = {
  none: {},
  short: { room: { timeline: { limit: 2 } } },
  lazy: { room: { timeline: { limit: 3 }, state: { lazy_load_members: true } } },
  senders: { room: { timeline: { not_senders: ['@bob:hs.test'] } } },
};

/** The storage as seen through `read`/`write`/`subscribe` only: a sync service over it keeps no memory. */
function withoutObserve(storage: Storage): Storage {
  return {
    read: (fn) => storage.read(fn),
    write: (fn) => storage.write(fn),
    subscribe: (listener) => storage.subscribe(listener),
    close: () => storage.close(),
  };
}

const backends: Array<[string, () => Promise<Storage>]> = [
  ['memory', async () => createMemoryStorage()],
  ['IndexedDB', () => openIdbStorage('sync-memory', { indexedDB: new IDBFactory(), IDBKeyRange })],
  ['IndexedDB (exclusive)', () => openIdbStorage('sync-memory', { indexedDB: new IDBFactory(), IDBKeyRange, exclusive: true })],
];

describe.each(backends)('sync from memory on %s', (_name, open) => {
  test('answers exactly what a storage read answers', { timeout: 60_000 }, async () => {
    const storage = await open();
    const server = await startTestServer({ storage });
    let reads = 0;
    const counting: Storage = {
      read: (fn) => {
        reads++;
        return storage.read(fn);
      },
      write: (fn) => storage.write(fn),
      subscribe: (listener) => storage.subscribe(listener),
      observe: (listener) => storage.observe!(listener),
      close: () => storage.close(),
    };
    const signer = await createSigner(new Uint8Array(32).fill(7), 'hs.test', 'ed25519:1');
    const base: HomeserverContext = {
      serverName: 'hs.test',
      storage: counting,
      signer,
      clock: { now: () => 1_800_000_000_000 },
      config: DEFAULT_CONFIG,
      log: { debug() {}, warn() {}, error() {} },
      randomBytes: (n) => new Uint8Array(n),
    };
    const typing = new TypingTracker();
    const fast = new SyncService(base, typing);
    const slow = new SyncService({ ...base, storage: withoutObserve(storage) }, typing);
    try {
      const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async (name) => userOf(server, await server.register(name))));
      const users = [alice!, bob!, carol!];
      // Tokens each user's device has been handed, per filter.
      const tokens = new Map<string, string[]>();
      let checks = 0;
      // Syncs from the newest token (what a client's next sync uses), and those of them memory answered alone.
      let latest = 0;
      let served = 0;

      const compare = async (label: string) => {
        for (const user of users) {
          for (const [name, raw] of Object.entries(FILTERS)) {
            const filter = new SyncFilter(parseFilter(raw));
            const key = `${user.userId} ${name}`;
            const seen = tokens.get(key) ?? [];
            // The newest tokens (the usual incremental syncs) and the oldest (windows reaching past what memory keeps).
            const sinces = [undefined, ...new Set([...seen.slice(0, 1), ...seen.slice(-4)])];
            const newest = seen[seen.length - 1];
            for (const sinceRaw of sinces) {
              const params = { userId: user.userId, deviceId: user.deviceId, since: sinceRaw === undefined ? undefined : parseSyncToken(sinceRaw), timeoutMs: 0, filter, fullState: false };
              const before = reads;
              const fromMemory = await fast.sync(params);
              if (sinceRaw !== undefined && sinceRaw === newest) {
                latest++;
                if (reads === before) served++;
              }
              const fromStorage = await slow.sync(params);
              expect(fromMemory, `${label}: ${key} since ${sinceRaw}`).toEqual(fromStorage);
              checks++;
              seen.push(fromMemory.next_batch as string);
            }
            tokens.set(key, seen);
          }
        }
      };

      const roomId = await alice!.createRoom({ preset: 'private_chat', name: 'Memory' });
      await compare('created');
      await alice!.invite(roomId, bob!.userId);
      await compare('invited');
      await bob!.join(roomId);
      await compare('joined');
      const sent: string[] = [];
      for (let i = 0; i < 6; i++) {
        sent.push(await (i % 2 ? bob! : alice!).send(roomId, `hello ${i} alice`));
        await compare(`message ${i}`);
      }
      await alice!.ok('PUT', `/rooms/${enc(roomId)}/redact/${enc(sent[1]!)}/r1`, { reason: 'oops' });
      await compare('redacted');
      await bob!.ok('PUT', `/profile/${enc(bob!.userId)}/displayname`, { displayname: 'Bobby' });
      await compare('renamed');
      await bob!.send(roomId, 'Alice, look');
      await compare('mention');
      await alice!.ok('POST', `/rooms/${enc(roomId)}/receipt/m.read/${enc(sent[4]!)}`, {});
      await compare('receipt');
      typing.set(roomId, bob!.userId, true);
      await compare('typing');
      typing.set(roomId, bob!.userId, false);
      await alice!.ok('PUT', `/user/${enc(alice!.userId)}/rooms/${enc(roomId)}/account_data/m.tag.x`, { a: 1 });
      await alice!.ok('PUT', `/user/${enc(alice!.userId)}/account_data/m.global.x`, { b: 2 });
      await compare('account data');
      await bob!.ok('PUT', '/sendToDevice/m.test/td1', { messages: { [alice!.userId]: { [alice!.deviceId]: { n: 1 } } } });
      await compare('to-device');
      await alice!.ok('POST', '/keys/upload', { one_time_keys: { 'signed_curve25519:AAAA': { key: 'k1' }, 'signed_curve25519:AAAB': { key: 'k2' } } });
      await compare('keys uploaded');
      await bob!.ok('POST', '/keys/claim', { one_time_keys: { [alice!.userId]: { [alice!.deviceId]: 'signed_curve25519' } } });
      await compare('key claimed');
      await alice!.invite(roomId, carol!.userId);
      await carol!.join(roomId);
      await carol!.send(roomId, 'hi all');
      await compare('carol joined');
      await carol!.leave(roomId);
      await compare('carol left');
      await alice!.ok('POST', `/rooms/${enc(roomId)}/kick`, { user_id: bob!.userId, reason: 'bye' });
      await compare('bob kicked');
      await alice!.invite(roomId, bob!.userId);
      await bob!.join(roomId);
      await compare('bob back');

      // More events than memory keeps for one room: the oldest go, and reads reaching them go to storage.
      const busy = await bob!.createRoom({ preset: 'public_chat' });
      await alice!.join(busy);
      await compare('busy room');
      for (let i = 0; i < 300; i++) {
        await (i % 3 ? alice! : bob!).send(busy, `busy ${i}`);
        if (i % 50 === 0) await compare(`busy ${i}`);
      }
      await compare('busy done');

      expect(checks).toBeGreaterThan(1000);
      // Most syncs from the newest token needed no storage read at all.
      expect(served).toBeGreaterThan(latest / 2);
    } finally {
      fast.close();
      slow.close();
      typing.close();
      await server.close();
      await storage.close();
    }
  });
});

