// What one page of GET /rooms/{roomId}/messages costs in IndexedDB requests, paging back through a room
// of a few thousand events seeded the way the app benchmark seeds its scroll room (one local send, the
// rest signed here and handed to the receive path), with the filter matrix-js-sdk sends when it lazily
// loads members. In Chromium every request is a round trip to the browser process, so the bound is on
// requests and transactions: a page must cost the same few of each however deep into the room it starts
// (no walk from the room's end, no read per event for its visibility or its sender's membership).
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createSigner, eventIdOf, signEvent, type PDU } from '../../../src/core/index.js';
import { openIdbStorage } from '../../../src/storage/idb/index.js';
import { startTestServer } from '../harness.js';
import { enc, query, userOf } from './helpers.js';

const ROOM_EVENTS = 2500;
const PAGE = 30;
const PAGES = 12;
/** The page's events in one index read, then the first event's record and state groups, and the user's membership. */
const MAX_REQUESTS_PER_PAGE = 6;

const counts = { transactions: 0, requests: 0 };
const restores: Array<() => void> = [];

/** Counts calls of `method` on the fake-indexeddb class `className` (installed globally by fake-indexeddb/auto). */
function countCalls(className: string, method: string, counter: keyof typeof counts): void {
  const proto = (globalThis as unknown as Record<string, { prototype: Record<string, unknown> }>)[className]!.prototype;
  const original = proto[method];
  if (typeof original !== 'function') return;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    counts[counter]++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  restores.push(() => (proto[method] = original));
}

beforeAll(() => {
  countCalls('IDBDatabase', 'transaction', 'transactions');
  for (const method of ['get', 'getAll', 'getAllKeys', 'getAllRecords', 'openCursor', 'openKeyCursor', 'count']) {
    countCalls('IDBObjectStore', method, 'requests');
    countCalls('IDBIndex', method, 'requests');
  }
});
afterAll(() => {
  for (const restore of restores) restore();
});

test('a page back through a large room costs one transaction and a few requests, however deep', async () => {
  const storage = await openIdbStorage('messages-cost', { indexedDB: new IDBFactory(), IDBKeyRange });
  const signer = await createSigner(new Uint8Array(32).fill(7), 'hs.test', 'ed25519:1');
  const server = await startTestServer({ storage, signer });
  try {
    const alice = userOf(server, await server.register('alice'));
    const roomId = await alice.createRoom({ preset: 'private_chat', name: 'Long room' });
    const firstId = await alice.send(roomId, 'm0');
    const first = (await storage.read((txn) => txn.events.get(firstId)))!;
    const roomVersion = (await storage.read((txn) => txn.rooms.get(roomId)))!.roomVersion;
    const { hashes: _hashes, signatures: _signatures, unsigned: _unsigned, ...template } = first.event as PDU & { unsigned?: unknown };
    let previous = { id: firstId, depth: first.event.depth as number, ts: first.event.origin_server_ts };
    for (let i = 1; i < ROOM_EVENTS; i += 500) {
      const pdus: PDU[] = [];
      for (let k = i; k < Math.min(ROOM_EVENTS, i + 500); k++) {
        const next = { ...template, content: { msgtype: 'm.text', body: `m${k}` }, prev_events: [previous.id], depth: previous.depth + 1, origin_server_ts: previous.ts + 1 } as PDU;
        const signed = await signEvent(next, signer, roomVersion);
        pdus.push(signed);
        previous = { id: eventIdOf(signed, roomVersion), depth: previous.depth + 1, ts: previous.ts + 1 };
      }
      const outcomes = await server.homeserver.replication.receivePdus(pdus, 'hs.test');
      expect(outcomes.filter((o) => o.outcome !== 'accepted')).toEqual([]);
    }

    const synced = await alice.sync({ filter: { room: { timeline: { limit: PAGE }, state: { lazy_load_members: true } } } });
    let from: string = synced.rooms.join[roomId].timeline.prev_batch;
    const filter = JSON.stringify({ lazy_load_members: true });
    let expected = ROOM_EVENTS - PAGE - 1;
    for (let page = 0; page < PAGES; page++) {
      counts.transactions = 0;
      counts.requests = 0;
      const answer = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', from, limit: PAGE, filter })}`);
      // The page itself is right: the next PAGE messages back, newest first, and the sender's member event.
      expect(answer.chunk.map((e: { content: { body: string } }) => e.content.body)).toEqual(Array.from({ length: PAGE }, (_, k) => `m${expected - k}`));
      expect(answer.state.map((e: { state_key: string }) => e.state_key)).toEqual([alice.userId]);
      // One for the access token's lookup, one for the page.
      expect(counts.transactions).toBeLessThanOrEqual(2);
      expect(counts.requests).toBeLessThanOrEqual(MAX_REQUESTS_PER_PAGE + 2);
      expected -= PAGE;
      from = answer.end;
    }
  } finally {
    await server.close();
  }
}, 120_000);
