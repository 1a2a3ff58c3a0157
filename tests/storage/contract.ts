/**
 * The storage contract: one suite every backend must pass (memory, IndexedDB,
 * SQLite; in Node and, via contract-browser-entry.ts, in a browser). It covers
 * each store, ordering and pagination in both directions, stream windows,
 * state group chains, atomicity, commit notices, serialised writes, and, for
 * persistent backends, reopening and schema upgrades. The test functions come
 * in as a parameter, so a browser bundle can run it without vitest's runner.
 */
import type { ExpectStatic } from 'vitest';
import { stateKeyOf, type JsonObject, type PDU } from '../../src/core/index.js';
import {
  accessTokenHash,
  type Commit,
  MEDIA_CHUNK_BYTES,
  type Migration,
  migrations,
  type ReadTxn,
  STATE_DELTA_CHAIN_LIMIT,
  type Storage,
  StorageError,
  type StorageErrorCode,
  type WriteTxn,
} from '../../src/storage/index.js';
import { DROPPED_TABLES, T } from '../../src/storage/schema.js';

/** One isolated place a backend keeps data (an IDBFactory and name, a file). */
export interface StorageLocation {
  /** Opens the storage here; called again after close() it reopens the same data. */
  open(options?: { migrations?: readonly Migration[] }): Promise<Storage>;
  /** Removes what the location left behind. */
  cleanup?(): Promise<void>;
}

/** The test API the suite is written against: vitest's, or a small runner in the browser. */
export interface TestApi {
  describe(name: string, body: () => void): void;
  it(name: string, body: () => Promise<void>): void;
  beforeEach(hook: () => Promise<void>): void;
  afterEach(hook: () => Promise<void>): void;
  expect: ExpectStatic;
}

export interface ContractBackend {
  /** A new, empty location. */
  location(): StorageLocation;
  /** Whether data survives close() and a second open() of one location. */
  persistent: boolean;
}

const ROOM = '!room:hs';
const OTHER_ROOM = '!other:hs';
const ALICE = '@alice:hs';
const BOB = '@bob:hs';

function pdu(roomId: string, depth: number, prev: string[] = [], extra: Partial<PDU> = {}): PDU {
  return {
    room_id: roomId,
    sender: ALICE,
    type: 'm.room.message',
    content: { body: `message at ${depth}` },
    origin_server_ts: 1_000 + depth,
    prev_events: prev,
    auth_events: ['$create'],
    depth,
    unsigned: { age_ts: 5 },
    ...extra,
  };
}

/**
 * Writes something into every store, as one homeserver operation might. With
 * `v1Layout`, only into stores whose rows have kept the layout of migration 1
 * (access tokens changed in 4, media in 5), for databases at that version.
 */
async function writeEverything(txn: WriteTxn, { v1Layout = false } = {}): Promise<void> {
  await txn.events.add({ eventId: '$create', roomId: ROOM, event: pdu(ROOM, 0, [], { type: 'm.room.create', state_key: '' }) });
  await txn.events.add({ eventId: '$a1', roomId: ROOM, event: pdu(ROOM, 1, ['$create']) });
  await txn.events.add({ eventId: '$out', roomId: ROOM, event: pdu(ROOM, 1, ['$create']), outlier: true });
  await txn.dag.setExtremities(ROOM, ['$a1']);
  const group = await txn.stateGroups.create(ROOM, new Map([[stateKeyOf('m.room.create', ''), '$create']]));
  await txn.eventState.set({ eventId: '$a1', before: group, after: group });
  await txn.currentState.replace(ROOM, new Map([[stateKeyOf('m.room.create', ''), '$create']]));
  await txn.rooms.put({ roomId: ROOM, roomVersion: '12', creator: ALICE, createdAt: 1 });
  await txn.directory.setPublic(ROOM, true);
  await txn.memberships.set({ roomId: ROOM, userId: ALICE, membership: 'join', eventId: '$create' });
  await txn.aliases.add({ alias: '#room:hs', roomId: ROOM, creator: ALICE });
  await txn.users.add({ userId: ALICE, passwordHash: 'hash', deactivated: false, createdAt: 1 });
  await txn.devices.put({ userId: ALICE, deviceId: 'DEV', displayName: 'phone', createdAt: 1 });
  if (!v1Layout) await txn.accessTokens.put({ token: 'tok', userId: ALICE, deviceId: 'DEV', createdAt: 1 });
  await txn.filters.create(ALICE, { room: { timeline: { limit: 10 } } });
  await txn.accountData.put(ALICE, 'm.direct', { [BOB]: [ROOM] });
  await txn.accountData.put(ALICE, 'm.tag', { tags: {} }, ROOM);
  await txn.receipts.put({ roomId: ROOM, receiptType: 'm.read', userId: ALICE, eventId: '$a1', ts: 7 });
  await txn.deviceKeys.put({ userId: ALICE, deviceId: 'DEV', keys: { algorithms: ['m.olm.v1'] } });
  await txn.crossSigningKeys.put({ userId: ALICE, keyType: 'master', keys: { usage: ['master'] } });
  await txn.oneTimeKeys.add(ALICE, 'DEV', { 'signed_curve25519:AAA': { key: 'k1' } });
  await txn.fallbackKeys.put(ALICE, 'DEV', 'signed_curve25519:FB', { key: 'fb' });
  await txn.toDevice.add(ALICE, 'DEV', { sender: BOB, type: 'm.room_key', content: { k: 1 } });
  await txn.deviceLists.add(ALICE);
  if (!v1Layout) await txn.media.add({ mediaId: 'm1', contentType: 'image/png', bytes: new Uint8Array([1, 2, 3]), uploader: ALICE, createdAt: 1 });
  await txn.transactionIds.put({ userId: ALICE, deviceId: 'DEV', txnId: 't1', eventId: '$a1', response: { event_id: '$a1' } });
  await txn.outbound.enqueue('peer.example', { pdus: ['$a1'] });
  await txn.meta.put('signing_seed', new Uint8Array([9, 9]));
}

/**
 * Reads every store: equal snapshots mean equal contents. `children: false` leaves out the DAG's children,
 * whose index a database before migration 6 lacks.
 */
async function readEverything(txn: ReadTxn, { children = true } = {}): Promise<unknown> {
  const eventState = await txn.eventState.get('$a1');
  return {
    events: await txn.events.getMany(['$create', '$a1', '$out']),
    timeline: await txn.timeline.rangeAll({ dir: 'f' }),
    children: children ? await txn.dag.children('$create') : undefined,
    extremities: await txn.dag.extremities(ROOM),
    eventState,
    state: eventState && (await txn.stateGroups.load(eventState.after)),
    currentState: await txn.currentState.load(ROOM),
    rooms: await txn.rooms.list(),
    directory: await txn.directory.list(),
    memberships: await txn.memberships.forUser(ALICE),
    aliases: await txn.aliases.forRoom(ROOM),
    users: await txn.users.list(),
    devices: await txn.devices.forUser(ALICE),
    tokens: await txn.accessTokens.forDevice(ALICE, 'DEV'),
    filter: await txn.filters.get(ALICE, '1'),
    accountData: await txn.accountData.changes(ALICE, { dir: 'f' }),
    receipts: await txn.receipts.forRoom(ROOM),
    deviceKeys: await txn.deviceKeys.forUser(ALICE),
    crossSigning: await txn.crossSigningKeys.forUser(ALICE),
    oneTimeKeys: await txn.oneTimeKeys.counts(ALICE, 'DEV'),
    fallback: await txn.fallbackKeys.get(ALICE, 'DEV', 'signed_curve25519'),
    toDevice: await txn.toDevice.list(ALICE, 'DEV', {}),
    deviceLists: await txn.deviceLists.changes({}),
    media: await txn.media.get('m1'),
    mediaContent: await txn.media.chunk('m1', 0),
    transactionId: await txn.transactionIds.get(ALICE, 'DEV', 't1'),
    outbound: await txn.outbound.destinations(),
    meta: await txn.meta.get('signing_seed'),
    stream: await txn.stream.current(),
  };
}

/** Adds a linear chain of `count` timeline events to `roomId`; returns their IDs. */
async function addChain(storage: Storage, roomId: string, count: number, prefix = roomId.slice(1, 4)): Promise<string[]> {
  return storage.write(async (txn) => {
    const ids: string[] = [];
    let prev: string[] = [];
    for (let i = 1; i <= count; i++) {
      const eventId = `$${prefix}${i}`;
      await txn.events.add({ eventId, roomId, event: pdu(roomId, i, prev) });
      ids.push(eventId);
      prev = [eventId];
    }
    return ids;
  });
}

export function runStorageContract(name: string, backend: ContractBackend, t: TestApi): void {
  const { describe, it, beforeEach, afterEach, expect } = t;

  async function expectCode(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, `expected StorageError ${code}`).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe(code);
  }

  describe(`storage contract: ${name}`, () => {
    let location: StorageLocation;
    let storage: Storage;

    beforeEach(async () => {
      location = backend.location();
      storage = await location.open();
    });

    afterEach(async () => {
      await storage.close();
      await location.cleanup?.();
    });

    describe('events', () => {
      it('adds, reads and refuses duplicates', async () => {
        const added = await storage.write((txn) =>
          txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 3, ['$p']) }),
        );
        expect(added).toEqual({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 3, ['$p']), depth: 3, outlier: false, streamOrdering: 1 });
        await storage.read(async (txn) => {
          expect(await txn.events.get('$a')).toEqual(added);
          expect(await txn.events.has('$a')).toBe(true);
          expect(await txn.events.has('$missing')).toBe(false);
          expect(await txn.events.get('$missing')).toBeUndefined();
          const many = await txn.events.getMany(['$a', '$missing']);
          expect([...many.keys()]).toEqual(['$a']);
          // By key alone; an ID that is a prefix of a stored one is not stored.
          expect(await txn.events.storedIds(['$missing', '$a', '$', '$a'])).toEqual(new Set(['$a']));
          expect(await txn.events.storedIds([])).toEqual(new Set());
        });
        await expectCode(
          storage.write((txn) => txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 3) })),
          'EXISTS',
        );
      });

      it('keeps outliers out of the stream until promoted', async () => {
        await storage.write(async (txn) => {
          const outlier = await txn.events.add({ eventId: '$o', roomId: ROOM, event: pdu(ROOM, 1), outlier: true });
          expect(outlier.streamOrdering).toBeUndefined();
          await txn.events.add({ eventId: '$t', roomId: ROOM, event: pdu(ROOM, 2) });
        });
        expect((await storage.read((txn) => txn.timeline.range(ROOM, { dir: 'f' }))).map((e) => e.eventId)).toEqual(['$t']);
        const promoted = await storage.write((txn) => txn.events.promote('$o'));
        expect(promoted).toMatchObject({ outlier: false, streamOrdering: 2 });
        expect(await storage.write((txn) => txn.events.promote('$o'))).toEqual(promoted);
        expect((await storage.read((txn) => txn.timeline.range(ROOM, { dir: 'f' }))).map((e) => e.eventId)).toEqual(['$t', '$o']);
        await expectCode(storage.write((txn) => txn.events.promote('$missing')), 'NOT_FOUND');
      });

      it('places backfilled events at negative stream positions, in topological order, with no commit news', async () => {
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$live', roomId: ROOM, event: pdu(ROOM, 5) });
          await txn.events.add({ eventId: '$state', roomId: ROOM, event: pdu(ROOM, 2), outlier: true });
        });
        const heard: string[] = [];
        const stop = storage.subscribe((commit) => {
          for (const change of commit.changes) if (change.kind === 'event') heard.push(change.eventId);
        });
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$old', roomId: ROOM, event: pdu(ROOM, 3), historicalPosition: -1 });
          expect(await txn.events.promote('$state', -2)).toMatchObject({ outlier: false, streamOrdering: -2 });
        });
        stop();
        expect(heard).toEqual([]);
        await storage.read(async (txn) => {
          expect((await txn.timeline.topological(ROOM, { dir: 'f' })).map((e) => e.eventId)).toEqual(['$state', '$old', '$live']);
          expect((await txn.timeline.range(ROOM, { dir: 'b', limit: 3 })).map((e) => e.eventId)).toEqual(['$live', '$old', '$state']);
          expect((await txn.timeline.range(ROOM, { dir: 'f', from: 1 })).map((e) => e.eventId)).toEqual([]);
        });
        // The next live event still takes the next positive position.
        expect((await storage.write((txn) => txn.events.add({ eventId: '$next', roomId: ROOM, event: pdu(ROOM, 6) }))).streamOrdering).toBe(2);
        for (const bad of [0, 3, -1.5]) {
          await expectCode(storage.write((txn) => txn.events.add({ eventId: `$bad${bad}`, roomId: ROOM, event: pdu(ROOM, 1), historicalPosition: bad })), 'UNSTORABLE');
        }
        await expectCode(storage.write((txn) => txn.events.add({ eventId: '$badOutlier', roomId: ROOM, event: pdu(ROOM, 1), outlier: true, historicalPosition: -9 })), 'UNSTORABLE');
      });

      it('updates records and removes fields patched to undefined', async () => {
        await storage.write((txn) =>
          txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 1), rejected: 'auth', softFailed: true }),
        );
        const redacted = { ...pdu(ROOM, 1), content: {} };
        await storage.write((txn) => txn.events.update('$a', { redactedBy: '$r', event: redacted, rejected: undefined }));
        const record = await storage.read((txn) => txn.events.get('$a'));
        expect(record).toMatchObject({ redactedBy: '$r', event: redacted, softFailed: true });
        expect(record).not.toHaveProperty('rejected');
        await expectCode(storage.write((txn) => txn.events.update('$missing', { softFailed: true })), 'NOT_FOUND');
      });

      it('takes depth from the event unless given', async () => {
        const [a, b] = await storage.write(async (txn) => [
          await txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 7) }),
          await txn.events.add({ eventId: '$b', roomId: ROOM, event: pdu(ROOM, 7), depth: 9 }),
        ]);
        expect([a.depth, b.depth]).toEqual([7, 9]);
      });

      it('returns copies, not the stored objects', async () => {
        await storage.write((txn) => txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 1) }));
        await storage.read(async (txn) => {
          const record = (await txn.events.get('$a'))!;
          record.event.content.body = 'changed';
        });
        expect((await storage.read((txn) => txn.events.get('$a')))!.event.content.body).toBe('message at 1');
      });
    });

    describe('timeline', () => {
      it('pages a room forwards and backwards with half-open windows', async () => {
        // Interleave two rooms so stream orderings of one room have gaps.
        await storage.write(async (txn) => {
          for (let i = 1; i <= 5; i++) {
            await txn.events.add({ eventId: `$r${i}`, roomId: ROOM, event: pdu(ROOM, i) });
            await txn.events.add({ eventId: `$o${i}`, roomId: OTHER_ROOM, event: pdu(OTHER_ROOM, i) });
          }
        });
        const ids = async (window: Parameters<ReadTxn['timeline']['range']>[1]) =>
          (await storage.read((txn) => txn.timeline.range(ROOM, window))).map((e) => e.eventId);
        // Room events sit at stream orderings 1, 3, 5, 7, 9.
        expect(await ids({ dir: 'f' })).toEqual(['$r1', '$r2', '$r3', '$r4', '$r5']);
        expect(await ids({ dir: 'b' })).toEqual(['$r5', '$r4', '$r3', '$r2', '$r1']);
        expect(await ids({ dir: 'f', limit: 2 })).toEqual(['$r1', '$r2']);
        expect(await ids({ dir: 'b', limit: 2 })).toEqual(['$r5', '$r4']);
        expect(await ids({ dir: 'f', from: 3 })).toEqual(['$r3', '$r4', '$r5']); // (3, ∞): orderings 5, 7, 9
        expect(await ids({ dir: 'f', from: 2, to: 7 })).toEqual(['$r2', '$r3', '$r4']);
        expect(await ids({ dir: 'b', from: 7 })).toEqual(['$r4', '$r3', '$r2', '$r1']); // (−∞, 7] descending
        expect(await ids({ dir: 'b', from: 8, to: 3 })).toEqual(['$r4', '$r3']); // (3, 8]
        expect(await ids({ dir: 'b', from: 9, to: 1, limit: 3 })).toEqual(['$r5', '$r4', '$r3']);
        expect(await ids({ dir: 'f', from: 9 })).toEqual([]);
        expect(await ids({ dir: 'f', from: 7, to: 3 })).toEqual([]);
        expect(await ids({ dir: 'b', from: 0 })).toEqual([]);
        expect(await ids({ dir: 'f', limit: 0 })).toEqual([]);
        const records = await storage.read((txn) => txn.timeline.range(OTHER_ROOM, { dir: 'f' }));
        expect(records.map((e) => e.streamOrdering)).toEqual([2, 4, 6, 8, 10]);
      });

      it('reads every room by stream window', async () => {
        await addChain(storage, ROOM, 3, 'r');
        await addChain(storage, OTHER_ROOM, 3, 'o');
        const all = async (window: Parameters<ReadTxn['timeline']['rangeAll']>[0]) =>
          (await storage.read((txn) => txn.timeline.rangeAll(window))).map((e) => `${e.eventId}@${e.streamOrdering}`);
        expect(await all({ dir: 'f' })).toEqual(['$r1@1', '$r2@2', '$r3@3', '$o1@4', '$o2@5', '$o3@6']);
        expect(await all({ dir: 'f', from: 2, to: 4 })).toEqual(['$r3@3', '$o1@4']);
        expect(await all({ dir: 'b', from: 5, limit: 2 })).toEqual(['$o2@5', '$o1@4']);
      });

      it('orders topologically by depth, then stream ordering', async () => {
        await storage.write(async (txn) => {
          // Arrival order differs from depth order, as after a fork is merged.
          await txn.events.add({ eventId: '$d2', roomId: ROOM, event: pdu(ROOM, 2) }); // stream 1
          await txn.events.add({ eventId: '$d1', roomId: ROOM, event: pdu(ROOM, 1) }); // stream 2
          await txn.events.add({ eventId: '$d3', roomId: ROOM, event: pdu(ROOM, 3) }); // stream 3
          await txn.events.add({ eventId: '$d2b', roomId: ROOM, event: pdu(ROOM, 2) }); // stream 4
          await txn.events.add({ eventId: '$x', roomId: ROOM, event: pdu(ROOM, 2), outlier: true });
          await txn.events.add({ eventId: '$other', roomId: OTHER_ROOM, event: pdu(OTHER_ROOM, 2) });
        });
        const ids = async (window: Parameters<ReadTxn['timeline']['topological']>[1]) =>
          (await storage.read((txn) => txn.timeline.topological(ROOM, window))).map((e) => e.eventId);
        expect(await ids({ dir: 'f' })).toEqual(['$d1', '$d2', '$d2b', '$d3']);
        expect(await ids({ dir: 'b', limit: 3 })).toEqual(['$d3', '$d2b', '$d2']);
        expect(await ids({ dir: 'b', from: { depth: 2, streamOrdering: 4 } })).toEqual(['$d2b', '$d2', '$d1']);
        expect(await ids({ dir: 'b', from: { depth: 2, streamOrdering: 3 } })).toEqual(['$d2', '$d1']);
        expect(await ids({ dir: 'f', from: { depth: 2, streamOrdering: 1 } })).toEqual(['$d2b', '$d3']);
        expect(await ids({ dir: 'f', to: { depth: 2, streamOrdering: 1 } })).toEqual(['$d1', '$d2']);
      });
    });

    describe('dag', () => {
      it('derives prev and auth events, records children, replaces extremities', async () => {
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$a', roomId: ROOM, event: pdu(ROOM, 1) });
          await txn.events.add({ eventId: '$b', roomId: ROOM, event: pdu(ROOM, 2, ['$a']) });
          await txn.events.add({ eventId: '$c', roomId: ROOM, event: pdu(ROOM, 2, ['$a']) });
          await txn.events.add({ eventId: '$d', roomId: ROOM, event: pdu(ROOM, 3, ['$b', '$c']) });
          await txn.dag.setExtremities(ROOM, ['$b', '$c']);
          await txn.dag.setExtremities(OTHER_ROOM, ['$z']);
        });
        await storage.read(async (txn) => {
          expect(await txn.dag.prevEvents('$d')).toEqual(['$b', '$c']);
          expect(await txn.dag.authEvents('$d')).toEqual(['$create']);
          expect(await txn.dag.prevEvents('$missing')).toBeUndefined();
          expect(await txn.dag.children('$a')).toEqual(['$b', '$c']);
          expect(await txn.dag.children('$d')).toEqual([]);
          expect(await txn.dag.extremities(ROOM)).toEqual(['$b', '$c']);
        });
        await storage.write((txn) => txn.dag.setExtremities(ROOM, ['$d']));
        expect(await storage.read((txn) => txn.dag.extremities(ROOM))).toEqual(['$d']);
        expect(await storage.read((txn) => txn.dag.extremities(OTHER_ROOM))).toEqual(['$z']);
      });

      it('lists a child once however often it names the parent, and follows a rewritten event', async () => {
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$p', roomId: ROOM, event: pdu(ROOM, 1) });
          await txn.events.add({ eventId: '$q', roomId: ROOM, event: pdu(ROOM, 1) });
          await txn.events.add({ eventId: '$twice', roomId: ROOM, event: pdu(ROOM, 2, ['$p', '$q', '$p']) });
          await txn.events.add({ eventId: '$rejected', roomId: ROOM, event: pdu(ROOM, 2, ['$p']), outlier: true, rejected: 'bad' });
        });
        await storage.read(async (txn) => {
          expect(await txn.dag.children('$p')).toEqual(['$rejected', '$twice']);
          expect(await txn.dag.children('$q')).toEqual(['$twice']);
        });
        // A redaction keeps prev_events; a record rewritten keeps its place in the DAG.
        await storage.write((txn) => txn.events.update('$twice', { redactedBy: '$r', event: pdu(ROOM, 2, ['$q']) }));
        await storage.read(async (txn) => {
          expect(await txn.dag.children('$p')).toEqual(['$rejected']);
          expect(await txn.dag.children('$q')).toEqual(['$twice']);
        });
      });
    });

    describe('state', () => {
      const key = (type: string, stateKey = '') => stateKeyOf(type, stateKey);

      it('stores groups as deltas and loads full states', async () => {
        const [g1, g2, g3] = await storage.write(async (txn) => {
          const g1 = await txn.stateGroups.create(ROOM, new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$j']]));
          const g2 = await txn.stateGroups.create(ROOM, new Map([[key('m.room.name'), '$n']]), g1);
          const g3 = await txn.stateGroups.create(ROOM, new Map([[key('m.room.name'), null], [key('m.room.member', BOB), '$b']]), g2);
          return [g1, g2, g3];
        });
        await storage.read(async (txn) => {
          expect(await txn.stateGroups.load(g1)).toEqual(new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$j']]));
          expect(await txn.stateGroups.load(g2)).toEqual(
            new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$j'], [key('m.room.name'), '$n']]),
          );
          expect(await txn.stateGroups.load(g3)).toEqual(
            new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$j'], [key('m.room.member', BOB), '$b']]),
          );
          expect(await txn.stateGroups.get(g3)).toEqual({
            id: g3,
            roomId: ROOM,
            prevGroupId: g2,
            delta: new Map([[key('m.room.name'), null], [key('m.room.member', BOB), '$b']]),
          });
          expect((await txn.stateGroups.get(g1))!.prevGroupId).toBeUndefined();
          expect(await txn.stateGroups.get(999)).toBeUndefined();
          await expectCode(txn.stateGroups.load(999), 'NOT_FOUND');
        });
      });

      it('shares the previous group when the state did not change', async () => {
        await storage.write(async (txn) => {
          const state = new Map([[key('m.room.create'), '$c']]);
          const g1 = await txn.stateGroups.createFromState(ROOM, state);
          expect(await txn.stateGroups.createFromState(ROOM, new Map(state), g1)).toBe(g1);
          const next = new Map([[key('m.room.topic'), '$t']]);
          const g2 = await txn.stateGroups.createFromState(ROOM, next, g1);
          expect(g2).not.toBe(g1);
          expect(await txn.stateGroups.get(g2)).toMatchObject({
            prevGroupId: g1,
            delta: new Map<string, string | null>([[key('m.room.topic'), '$t'], [key('m.room.create'), null]]),
          });
          expect(await txn.stateGroups.load(g2)).toEqual(next);
        });
      });

      it('cuts delta chains longer than the limit with a snapshot', async () => {
        const groups = await storage.write(async (txn) => {
          const ids = [await txn.stateGroups.create(ROOM, new Map([[key('m.room.create'), '$c']]))];
          for (let i = 1; i <= STATE_DELTA_CHAIN_LIMIT + 5; i++) {
            ids.push(await txn.stateGroups.create(ROOM, new Map([[key('m.room.member', `@u${i}:hs`), `$m${i}`]]), ids[i - 1]));
          }
          return ids;
        });
        await storage.read(async (txn) => {
          const snapshots = [];
          for (const id of groups) if ((await txn.stateGroups.get(id))!.prevGroupId === undefined) snapshots.push(groups.indexOf(id));
          expect(snapshots).toEqual([0, STATE_DELTA_CHAIN_LIMIT + 1]);
          const last = await txn.stateGroups.load(groups.at(-1)!);
          expect(last.size).toBe(STATE_DELTA_CHAIN_LIMIT + 6);
          expect(last.get(key('m.room.member', '@u1:hs'))).toBe('$m1');
          expect((await txn.stateGroups.get(groups.at(-1)!))!.delta.size).toBe(1);
        });
      });

      it('records the groups around an event', async () => {
        await storage.write((txn) => txn.eventState.set({ eventId: '$e', before: 1, after: 2 }));
        expect(await storage.read((txn) => txn.eventState.get('$e'))).toEqual({ eventId: '$e', before: 1, after: 2 });
        expect(await storage.read((txn) => txn.eventState.get('$x'))).toBeUndefined();
      });

      it('keeps an event\'s groups on its record, stored with it or set later', async () => {
        const written: string[] = [];
        storage.observe?.((summary) => written.push(...summary.events.map((e) => `${e.eventId} ${JSON.stringify(e.stateGroups)}`)));
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$with', roomId: ROOM, event: pdu(ROOM, 1), stateGroups: { before: 3, after: 4 } });
          await txn.events.add({ eventId: '$later', roomId: ROOM, event: pdu(ROOM, 2, ['$with']) });
          await txn.events.add({ eventId: '$none', roomId: ROOM, event: pdu(ROOM, 2, ['$with']), outlier: true, rejected: 'bad' });
          await txn.eventState.set({ eventId: '$later', before: 4, after: 5 });
        });
        await storage.read(async (txn) => {
          const withGroups = (await txn.events.get('$with'))!;
          expect(withGroups.stateGroups).toEqual({ before: 3, after: 4 });
          expect(await txn.eventState.of(withGroups)).toEqual({ before: 3, after: 4 });
          expect(await txn.eventState.get('$with')).toEqual({ eventId: '$with', before: 3, after: 4 });
          const later = (await txn.events.get('$later'))!;
          expect(later.stateGroups).toEqual({ before: 4, after: 5 });
          expect(await txn.eventState.get('$later')).toEqual({ eventId: '$later', before: 4, after: 5 });
          expect(await txn.eventState.of((await txn.events.get('$none'))!)).toBeUndefined();
          expect(await txn.eventState.get('$none')).toBeUndefined();
          // Promoting and updating keep them.
          expect((await txn.timeline.range(ROOM, { dir: 'f' })).map((e) => e.stateGroups)).toEqual([{ before: 3, after: 4 }, { before: 4, after: 5 }]);
        });
        await storage.write((txn) => txn.events.update('$with', { redactedBy: '$r' }));
        expect((await storage.read((txn) => txn.events.get('$with')))!.stateGroups).toEqual({ before: 3, after: 4 });
        if (storage.observe) expect(written).toContain('$later {"before":4,"after":5}');
      });

      it('keeps current state per room', async () => {
        // State keys may hold any character, including separators and NUL.
        const odd = '@we|rd\u0000:hs';
        await storage.write(async (txn) => {
          await txn.currentState.replace(ROOM, new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$ja']]));
          await txn.currentState.apply(ROOM, new Map([[key('m.room.member', odd), '$jw'], [key('m.room.name'), '$n']]));
          await txn.currentState.apply(OTHER_ROOM, new Map([[key('m.room.create'), '$oc']]));
        });
        await storage.read(async (txn) => {
          expect(await txn.currentState.get(ROOM, 'm.room.member', odd)).toBe('$jw');
          expect(await txn.currentState.get(ROOM, 'm.room.topic', '')).toBeUndefined();
          expect(await txn.currentState.ofType(ROOM, 'm.room.member')).toEqual(new Map([[ALICE, '$ja'], [odd, '$jw']]));
          expect(await txn.currentState.load(ROOM)).toEqual(
            new Map([[key('m.room.create'), '$c'], [key('m.room.member', ALICE), '$ja'], [key('m.room.member', odd), '$jw'], [key('m.room.name'), '$n']]),
          );
        });
        await storage.write((txn) => txn.currentState.apply(ROOM, new Map([[key('m.room.name'), null]])));
        expect((await storage.read((txn) => txn.currentState.load(ROOM))).has(key('m.room.name'))).toBe(false);
        await storage.write((txn) => txn.currentState.replace(ROOM, new Map([[key('m.room.create'), '$c2']])));
        expect(await storage.read((txn) => txn.currentState.load(ROOM))).toEqual(new Map([[key('m.room.create'), '$c2']]));
        expect(await storage.read((txn) => txn.currentState.load(OTHER_ROOM))).toEqual(new Map([[key('m.room.create'), '$oc']]));
      });
    });

    describe('rooms', () => {
      it('stores rooms and the public directory', async () => {
        await storage.write(async (txn) => {
          await txn.rooms.put({ roomId: ROOM, roomVersion: '12', creator: ALICE, createdAt: 5 });
          await txn.rooms.put({ roomId: OTHER_ROOM, roomVersion: '11', creator: BOB, createdAt: 6 });
          await txn.directory.setPublic(ROOM, true);
          await txn.directory.setPublic(OTHER_ROOM, true);
          await txn.directory.setPublic(OTHER_ROOM, false);
        });
        await storage.read(async (txn) => {
          expect(await txn.rooms.get(ROOM)).toEqual({ roomId: ROOM, roomVersion: '12', creator: ALICE, createdAt: 5 });
          expect((await txn.rooms.list()).map((r) => r.roomId)).toEqual([OTHER_ROOM, ROOM]);
          expect(await txn.directory.isPublic(ROOM)).toBe(true);
          expect(await txn.directory.isPublic(OTHER_ROOM)).toBe(false);
          expect(await txn.directory.list()).toEqual([ROOM]);
        });
      });

      it('indexes memberships by user and by room', async () => {
        await storage.write(async (txn) => {
          await txn.memberships.set({ roomId: ROOM, userId: ALICE, membership: 'join', eventId: '$1' });
          await txn.memberships.set({ roomId: ROOM, userId: BOB, membership: 'invite', eventId: '$2' });
          await txn.memberships.set({ roomId: OTHER_ROOM, userId: ALICE, membership: 'invite', eventId: '$3' });
          await txn.memberships.set({ roomId: OTHER_ROOM, userId: ALICE, membership: 'join', eventId: '$4' });
          await txn.memberships.set({ roomId: ROOM, userId: BOB, membership: 'leave', eventId: '$5' });
        });
        await storage.read(async (txn) => {
          expect(await txn.memberships.get(ROOM, BOB)).toEqual({ roomId: ROOM, userId: BOB, membership: 'leave', eventId: '$5' });
          expect((await txn.memberships.forUser(ALICE)).map((m) => m.roomId)).toEqual([OTHER_ROOM, ROOM]);
          expect((await txn.memberships.forUser(ALICE, 'join')).map((m) => m.eventId)).toEqual(['$4', '$1']);
          expect((await txn.memberships.forRoom(ROOM)).map((m) => m.userId)).toEqual([ALICE, BOB]);
          expect((await txn.memberships.forRoom(ROOM, 'join')).map((m) => m.userId)).toEqual([ALICE]);
          expect(await txn.memberships.forRoom(OTHER_ROOM, 'invite')).toEqual([]);
        });
      });

      it('manages aliases', async () => {
        await storage.write(async (txn) => {
          await txn.aliases.add({ alias: '#a:hs', roomId: ROOM, creator: ALICE });
          await txn.aliases.add({ alias: '#b:hs', roomId: ROOM, creator: ALICE });
          await txn.aliases.add({ alias: '#c:hs', roomId: OTHER_ROOM, creator: BOB });
        });
        await expectCode(storage.write((txn) => txn.aliases.add({ alias: '#a:hs', roomId: OTHER_ROOM, creator: BOB })), 'EXISTS');
        expect(await storage.read((txn) => txn.aliases.get('#a:hs'))).toEqual({ alias: '#a:hs', roomId: ROOM, creator: ALICE });
        await storage.write((txn) => txn.aliases.delete('#a:hs'));
        expect(await storage.read((txn) => txn.aliases.get('#a:hs'))).toBeUndefined();
        expect((await storage.read((txn) => txn.aliases.forRoom(ROOM))).map((a) => a.alias)).toEqual(['#b:hs']);
      });

      it('keeps one receipt per user, type and thread, on the stream', async () => {
        await storage.write(async (txn) => {
          await txn.receipts.put({ roomId: ROOM, receiptType: 'm.read', userId: ALICE, eventId: '$1', ts: 1 }); // 1
          await txn.receipts.put({ roomId: ROOM, receiptType: 'm.read', userId: BOB, eventId: '$1', ts: 2 }); // 2
          await txn.receipts.put({ roomId: ROOM, receiptType: 'm.read', userId: ALICE, eventId: '$1', ts: 3, threadId: '$t' }); // 3
          await txn.receipts.put({ roomId: OTHER_ROOM, receiptType: 'm.read', userId: ALICE, eventId: '$9', ts: 4 }); // 4
        });
        const updated = await storage.write((txn) =>
          txn.receipts.put({ roomId: ROOM, receiptType: 'm.read', userId: ALICE, eventId: '$2', ts: 5 }),
        );
        expect(updated).toEqual({ roomId: ROOM, receiptType: 'm.read', userId: ALICE, threadId: '', eventId: '$2', ts: 5, streamOrdering: 5 });
        await storage.read(async (txn) => {
          expect(await txn.receipts.get(ROOM, 'm.read', ALICE)).toEqual(updated);
          expect((await txn.receipts.get(ROOM, 'm.read', ALICE, '$t'))!.eventId).toBe('$1');
          expect((await txn.receipts.forRoom(ROOM)).length).toBe(3);
          const changed = await txn.receipts.changes(ROOM, { dir: 'f', from: 1 });
          expect(changed.map((r) => [r.userId, r.threadId, r.streamOrdering])).toEqual([
            [BOB, '', 2],
            [ALICE, '$t', 3],
            [ALICE, '', 5],
          ]);
          expect((await txn.receipts.changes(ROOM, { dir: 'b', limit: 1 }))[0].eventId).toBe('$2');
        });
      });
    });

    describe('accounts', () => {
      it('registers, updates and lists users', async () => {
        await storage.write(async (txn) => {
          for (const userId of ['@c:hs', '@a:hs', '@b:hs']) await txn.users.add({ userId, deactivated: false, createdAt: 1 });
        });
        await expectCode(storage.write((txn) => txn.users.add({ userId: '@a:hs', deactivated: false, createdAt: 2 })), 'EXISTS');
        const updated = await storage.write((txn) => txn.users.update('@a:hs', { displayname: 'A', avatarUrl: 'mxc://hs/a' }));
        expect(updated).toEqual({ userId: '@a:hs', deactivated: false, createdAt: 1, displayname: 'A', avatarUrl: 'mxc://hs/a' });
        await storage.write((txn) => txn.users.update('@a:hs', { avatarUrl: undefined, deactivated: true }));
        await storage.read(async (txn) => {
          expect(await txn.users.get('@a:hs')).toEqual({ userId: '@a:hs', deactivated: true, createdAt: 1, displayname: 'A' });
          expect((await txn.users.list()).map((u) => u.userId)).toEqual(['@a:hs', '@b:hs', '@c:hs']);
          expect((await txn.users.list({ after: '@a:hs', limit: 1 })).map((u) => u.userId)).toEqual(['@b:hs']);
        });
        await expectCode(storage.write((txn) => txn.users.update('@nobody:hs', { admin: true })), 'NOT_FOUND');
      });

      it('manages devices and access tokens', async () => {
        await storage.write(async (txn) => {
          await txn.devices.put({ userId: ALICE, deviceId: 'B', createdAt: 1 });
          await txn.devices.put({ userId: ALICE, deviceId: 'A', displayName: 'laptop', createdAt: 1 });
          await txn.devices.put({ userId: BOB, deviceId: 'A', createdAt: 1 });
          await txn.accessTokens.put({ token: 't1', userId: ALICE, deviceId: 'A', createdAt: 1 });
          await txn.accessTokens.put({ token: 't2', userId: ALICE, deviceId: 'A', createdAt: 2 });
          await txn.accessTokens.put({ token: 't3', userId: ALICE, deviceId: 'B', createdAt: 3 });
          await txn.devices.update(ALICE, 'A', { lastSeenTs: 99, lastSeenIp: '127.0.0.1' });
        });
        await storage.read(async (txn) => {
          expect((await txn.devices.forUser(ALICE)).map((d) => d.deviceId)).toEqual(['A', 'B']);
          expect(await txn.devices.get(ALICE, 'A')).toEqual({
            userId: ALICE, deviceId: 'A', displayName: 'laptop', createdAt: 1, lastSeenTs: 99, lastSeenIp: '127.0.0.1',
          });
          expect(await txn.accessTokens.get('t2')).toEqual({ tokenHash: accessTokenHash('t2'), userId: ALICE, deviceId: 'A', createdAt: 2 });
          expect((await txn.accessTokens.forDevice(ALICE, 'A')).map((t) => t.tokenHash).sort()).toEqual(
            [accessTokenHash('t1'), accessTokenHash('t2')].sort(),
          );
        });
        await storage.write(async (txn) => {
          await txn.accessTokens.deleteForDevice(ALICE, 'A');
          await txn.devices.delete(ALICE, 'A');
          await txn.accessTokens.delete('t3');
        });
        await storage.read(async (txn) => {
          expect(await txn.accessTokens.get('t1')).toBeUndefined();
          expect(await txn.accessTokens.get('t3')).toBeUndefined();
          expect(await txn.devices.get(ALICE, 'A')).toBeUndefined();
          expect((await txn.devices.forUser(ALICE)).map((d) => d.deviceId)).toEqual(['B']);
        });
        await expectCode(storage.write((txn) => txn.devices.update(ALICE, 'A', { displayName: 'x' })), 'NOT_FOUND');
      });

      it('revokes all of a device\'s tokens but one, and reports revocations by hash', async () => {
        const revoked: string[] = [];
        storage.observe?.((written) => revoked.push(...written.revokedTokenHashes));
        await storage.write(async (txn) => {
          for (const token of ['k1', 'k2', 'k3']) await txn.accessTokens.put({ token, userId: ALICE, deviceId: 'A', createdAt: 1 });
        });
        await storage.write((txn) => txn.accessTokens.deleteForDevice(ALICE, 'A', { except: 'k2' }));
        await storage.read(async (txn) => {
          expect(await txn.accessTokens.get('k1')).toBeUndefined();
          expect(await txn.accessTokens.get('k2')).toMatchObject({ userId: ALICE, deviceId: 'A' });
          expect(await txn.accessTokens.get('k3')).toBeUndefined();
        });
        if (storage.observe) expect(revoked.sort()).toEqual([accessTokenHash('k1'), accessTokenHash('k3')].sort());
      });

      it('converts access tokens stored before migration 4 to their hashes', async () => {
        const old = backend.location();
        // Rows in the layout before migration 4: keyed by the token itself.
        const oldRows: Migration = async (schema) => {
          await schema.txn.put('access_tokens', { token: 'old-1', userId: ALICE, deviceId: 'A', createdAt: 1 });
          await schema.txn.put('access_tokens', { token: 'old-2', userId: BOB, deviceId: 'B', createdAt: 2 });
        };
        const upgraded = await old.open({ migrations: [...migrations.slice(0, 3), oldRows, ...migrations.slice(3)] });
        try {
          await upgraded.read(async (txn) => {
            expect(await txn.accessTokens.get('old-1')).toEqual({ tokenHash: accessTokenHash('old-1'), userId: ALICE, deviceId: 'A', createdAt: 1 });
            expect((await txn.accessTokens.forDevice(BOB, 'B')).map((t) => t.tokenHash)).toEqual([accessTokenHash('old-2')]);
          });
          await upgraded.write((txn) => txn.accessTokens.deleteForDevice(ALICE, 'A'));
          expect(await upgraded.read((txn) => txn.accessTokens.get('old-1'))).toBeUndefined();
        } finally {
          await upgraded.close();
          await old.cleanup?.();
        }
      });

      if (backend.persistent) it('keeps no access token in any stored row', async () => {
        const tokens = ['syt_secret_one_4f7a', 'syt_secret_two_9b2c'];
        await storage.write(async (txn) => {
          for (const token of tokens) await txn.accessTokens.put({ token, userId: ALICE, deviceId: 'A', createdAt: 1 });
        });
        await storage.write(writeEverything);
        await storage.close();
        // A step after the last one reads every row of every table as stored.
        const rows: unknown[] = [];
        const dump: Migration = async (schema) => {
          for (const table of Object.values(T)) if (!DROPPED_TABLES.has(table)) rows.push(...(await schema.txn.scan(table)));
        };
        storage = await location.open({ migrations: [...migrations, dump] });
        const stored = JSON.stringify(rows, (_key, value: unknown) => (value instanceof Uint8Array ? Array.from(value) : value));
        expect(rows.length).toBeGreaterThan(20);
        for (const token of tokens) {
          expect(stored).not.toContain(token);
          expect(stored).toContain(accessTokenHash(token));
        }
      });

      it('stores filters under fresh IDs', async () => {
        const [f1, f2] = await storage.write(async (txn) => [
          await txn.filters.create(ALICE, { a: 1 }),
          await txn.filters.create(BOB, { b: 2 }),
        ]);
        expect(f1).not.toBe(f2);
        await storage.read(async (txn) => {
          expect(await txn.filters.get(ALICE, f1)).toEqual({ a: 1 });
          expect(await txn.filters.get(BOB, f2)).toEqual({ b: 2 });
          expect(await txn.filters.get(ALICE, f2)).toBeUndefined();
        });
      });

      it('keeps global and per-room account data on the stream', async () => {
        await storage.write(async (txn) => {
          await txn.accountData.put(ALICE, 'm.push_rules', { global: {} }); // 1
          await txn.accountData.put(ALICE, 'm.tag', { tags: { u: {} } }, ROOM); // 2
          await txn.accountData.put(BOB, 'm.direct', {}); // 3
          await txn.accountData.put(ALICE, 'm.direct', { [BOB]: [ROOM] }); // 4
          await txn.accountData.put(ALICE, 'm.push_rules', { global: { override: [] } }); // 5
        });
        await storage.read(async (txn) => {
          expect(await txn.accountData.get(ALICE, 'm.push_rules')).toEqual({
            userId: ALICE, roomId: '', type: 'm.push_rules', content: { global: { override: [] } }, streamOrdering: 5,
          });
          expect((await txn.accountData.get(ALICE, 'm.tag', ROOM))!.content).toEqual({ tags: { u: {} } });
          expect(await txn.accountData.get(ALICE, 'm.tag')).toBeUndefined();
          expect((await txn.accountData.list(ALICE)).map((d) => d.type)).toEqual(['m.direct', 'm.push_rules']);
          expect((await txn.accountData.list(ALICE, ROOM)).map((d) => d.type)).toEqual(['m.tag']);
          const since = await txn.accountData.changes(ALICE, { dir: 'f', from: 2 });
          expect(since.map((d) => [d.type, d.streamOrdering])).toEqual([['m.direct', 4], ['m.push_rules', 5]]);
          expect((await txn.accountData.changes(ALICE, { dir: 'f' })).length).toBe(3);
        });
      });
    });

    describe('end-to-end encryption', () => {
      it('stores device and cross-signing keys', async () => {
        await storage.write(async (txn) => {
          await txn.deviceKeys.put({ userId: ALICE, deviceId: 'A', keys: { keys: { 'ed25519:A': 'x' } } });
          await txn.deviceKeys.put({ userId: ALICE, deviceId: 'B', keys: { keys: { 'ed25519:B': 'y' } } });
          await txn.crossSigningKeys.put({ userId: ALICE, keyType: 'master', keys: { usage: ['master'] } });
          await txn.crossSigningKeys.put({ userId: ALICE, keyType: 'self_signing', keys: { usage: ['self_signing'] } });
          await txn.deviceKeys.delete(ALICE, 'B');
        });
        await storage.read(async (txn) => {
          expect(await txn.deviceKeys.get(ALICE, 'A')).toEqual({ userId: ALICE, deviceId: 'A', keys: { keys: { 'ed25519:A': 'x' } } });
          expect((await txn.deviceKeys.forUser(ALICE)).map((k) => k.deviceId)).toEqual(['A']);
          expect((await txn.crossSigningKeys.get(ALICE, 'master'))!.keys).toEqual({ usage: ['master'] });
          expect((await txn.crossSigningKeys.forUser(ALICE)).map((k) => k.keyType)).toEqual(['master', 'self_signing']);
          expect(await txn.crossSigningKeys.forUser(BOB)).toEqual([]);
        });
      });

      it('claims each one-time key once', async () => {
        await storage.write((txn) =>
          txn.oneTimeKeys.add(ALICE, 'A', {
            'signed_curve25519:BBB': { key: 'b' },
            'signed_curve25519:AAA': { key: 'a' },
            'curve25519:ZZZ': 'z',
          }),
        );
        expect(await storage.read((txn) => txn.oneTimeKeys.counts(ALICE, 'A'))).toEqual({ signed_curve25519: 2, curve25519: 1 });
        expect(await storage.read((txn) => txn.oneTimeKeys.get(ALICE, 'A', 'curve25519:ZZZ'))).toBe('z');
        // Two claims racing: each must get a different key.
        const claims = await Promise.all([
          storage.write((txn) => txn.oneTimeKeys.claim(ALICE, 'A', 'signed_curve25519')),
          storage.write((txn) => txn.oneTimeKeys.claim(ALICE, 'A', 'signed_curve25519')),
          storage.write((txn) => txn.oneTimeKeys.claim(ALICE, 'A', 'signed_curve25519')),
        ]);
        expect(claims).toEqual([
          { id: 'signed_curve25519:AAA', key: { key: 'a' } },
          { id: 'signed_curve25519:BBB', key: { key: 'b' } },
          undefined,
        ]);
        expect(await storage.read((txn) => txn.oneTimeKeys.counts(ALICE, 'A'))).toEqual({ curve25519: 1 });
        await storage.write((txn) => txn.oneTimeKeys.deleteForDevice(ALICE, 'A'));
        expect(await storage.read((txn) => txn.oneTimeKeys.counts(ALICE, 'A'))).toEqual({});
        await expectCode(storage.write((txn) => txn.oneTimeKeys.add(ALICE, 'A', { nocolon: 'x' })), 'BAD_KEY');
      });

      it('hands out fallback keys until replaced', async () => {
        await storage.write(async (txn) => {
          await txn.fallbackKeys.put(ALICE, 'A', 'signed_curve25519:F1', { key: 'f1' });
          await txn.fallbackKeys.put(ALICE, 'A', 'other_alg:F9', 'f9');
        });
        expect(await storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(ALICE, 'A'))).toEqual(['other_alg', 'signed_curve25519']);
        const first = await storage.write((txn) => txn.fallbackKeys.claim(ALICE, 'A', 'signed_curve25519'));
        const again = await storage.write((txn) => txn.fallbackKeys.claim(ALICE, 'A', 'signed_curve25519'));
        expect(first).toEqual({ id: 'signed_curve25519:F1', key: { key: 'f1' } });
        expect(again).toEqual(first);
        expect(await storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(ALICE, 'A'))).toEqual(['other_alg']);
        await storage.write((txn) => txn.fallbackKeys.put(ALICE, 'A', 'signed_curve25519:F2', { key: 'f2' }));
        expect(await storage.read((txn) => txn.fallbackKeys.get(ALICE, 'A', 'signed_curve25519'))).toEqual({
          userId: ALICE, deviceId: 'A', algorithm: 'signed_curve25519', keyId: 'F2', key: { key: 'f2' }, used: false,
        });
        expect(await storage.write((txn) => txn.fallbackKeys.claim(ALICE, 'A', 'nope'))).toBeUndefined();
        await storage.write((txn) => txn.fallbackKeys.deleteForDevice(ALICE, 'A'));
        expect(await storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(ALICE, 'A'))).toEqual([]);
      });

      it('queues to-device messages per device and deletes delivered ones', async () => {
        await storage.write(async (txn) => {
          for (let i = 1; i <= 3; i++) await txn.toDevice.add(ALICE, 'A', { sender: BOB, type: 'm.test', content: { i } });
          await txn.toDevice.add(ALICE, 'B', { sender: BOB, type: 'm.test', content: { i: 4 } });
          await txn.toDevice.add(BOB, 'A', { sender: ALICE, type: 'm.test', content: { i: 5 } });
        });
        const inbox = async (userId: string, deviceId: string, window = {}) =>
          (await storage.read((txn) => txn.toDevice.list(userId, deviceId, window))).map((m) => m.content.i);
        expect(await inbox(ALICE, 'A')).toEqual([1, 2, 3]);
        expect(await inbox(ALICE, 'A', { from: 1, limit: 1 })).toEqual([2]);
        expect(await inbox(ALICE, 'A', { to: 2 })).toEqual([1, 2]);
        await storage.write((txn) => txn.toDevice.deleteUpTo(ALICE, 'A', 2));
        expect(await inbox(ALICE, 'A')).toEqual([3]);
        expect(await inbox(ALICE, 'B')).toEqual([4]);
        expect(await inbox(BOB, 'A')).toEqual([5]);
        const [message] = await storage.read((txn) => txn.toDevice.list(ALICE, 'A', {}));
        expect(message).toEqual({ userId: ALICE, deviceId: 'A', streamOrdering: 3, sender: BOB, type: 'm.test', content: { i: 3 } });
      });

      it('keeps only the newest to-device messages of a device when asked', async () => {
        await storage.write(async (txn) => {
          for (let i = 1; i <= 5; i++) await txn.toDevice.add(ALICE, 'A', { sender: BOB, type: 'm.test', content: { i } });
          await txn.toDevice.add(ALICE, 'B', { sender: BOB, type: 'm.test', content: { i: 6 } });
        });
        const inbox = async (deviceId: string) => (await storage.read((txn) => txn.toDevice.list(ALICE, deviceId, {}))).map((m) => m.content.i);
        expect(await storage.write((txn) => txn.toDevice.keepNewest(ALICE, 'A', 10))).toBe(0);
        expect(await storage.write((txn) => txn.toDevice.keepNewest(ALICE, 'A', 2))).toBe(3);
        expect(await inbox('A')).toEqual([4, 5]);
        expect(await inbox('B')).toEqual([6]);
        expect(await storage.write((txn) => txn.toDevice.keepNewest(ALICE, 'A', 0))).toBe(2);
        expect(await inbox('A')).toEqual([]);
      });

      it('streams device list changes, each user once', async () => {
        await storage.write(async (txn) => {
          await txn.deviceLists.add(ALICE); // 1
          await txn.deviceLists.add(BOB); // 2
          await txn.deviceLists.add(ALICE); // 3
          await txn.deviceLists.add('@carol:hs'); // 4
        });
        await storage.read(async (txn) => {
          expect(await txn.deviceLists.changes({})).toEqual([BOB, ALICE, '@carol:hs']);
          expect(await txn.deviceLists.changes({ from: 1, to: 2 })).toEqual([BOB]);
          expect(await txn.deviceLists.changes({ from: 4 })).toEqual([]);
        });
      });
    });

    describe('server', () => {
      it('stores media bytes', async () => {
        const bytes = new Uint8Array(1024).map((_, i) => i % 251);
        const added = await storage.write((txn) =>
          txn.media.add({ mediaId: 'abc', contentType: 'image/png', filename: 'a.png', bytes, uploader: ALICE, createdAt: 3 }),
        );
        expect(added.size).toBe(1024);
        const media = (await storage.read((txn) => txn.media.get('abc')))!;
        expect(media).toEqual({ mediaId: 'abc', contentType: 'image/png', filename: 'a.png', uploader: ALICE, size: 1024, chunks: 1, createdAt: 3 });
        const content = (await storage.read((txn) => txn.media.chunk('abc', 0)))!;
        expect(content).toBeInstanceOf(Uint8Array);
        expect(Array.from(content)).toEqual(Array.from(bytes));
        expect(await storage.read((txn) => txn.media.chunk('abc', 1))).toBeUndefined();
        await expectCode(
          storage.write((txn) => txn.media.add({ mediaId: 'abc', contentType: 'x', bytes, uploader: ALICE, createdAt: 4 })),
          'EXISTS',
        );
        await storage.write((txn) => txn.media.delete('abc'));
        expect(await storage.read((txn) => txn.media.get('abc'))).toBeUndefined();
      });

      it('splits media added whole into chunks', async () => {
        const bytes = new Uint8Array(2 * MEDIA_CHUNK_BYTES + 10).map((_, i) => i % 253);
        await storage.write((txn) => txn.media.add({ mediaId: 'big', contentType: 'x/y', bytes, uploader: ALICE, createdAt: 1 }));
        const media = (await storage.read((txn) => txn.media.get('big')))!;
        expect(media).toMatchObject({ size: bytes.byteLength, chunks: 3 });
        const joined = new Uint8Array(bytes.byteLength);
        await storage.read(async (txn) => {
          for (let i = 0; i < 3; i++) joined.set((await txn.media.chunk('big', i))!, i * MEDIA_CHUNK_BYTES);
        });
        // Compared in a loop: toEqual over half a million elements takes seconds.
        expect(joined.every((b, i) => b === bytes[i])).toBe(true);
        await storage.write((txn) => txn.media.delete('big'));
        expect(await storage.read((txn) => txn.media.chunk('big', 0))).toBeUndefined();
      });

      it('streams an upload in over several transactions and shows it only once finished', async () => {
        const upload = { mediaId: 'up', contentType: 'text/plain', uploader: ALICE, createdAt: 5, blobId: 'blob1', size: 5 };
        await storage.write((txn) => txn.media.beginUpload('blob1', 100));
        await expectCode(storage.write((txn) => txn.media.beginUpload('blob1', 100)), 'EXISTS');
        await storage.write((txn) => txn.media.putChunk('blob1', 0, new Uint8Array([1, 2, 3])));
        await storage.write((txn) => txn.media.putChunk('blob1', 1, new Uint8Array([4, 5])));
        expect(await storage.read((txn) => txn.media.get('up'))).toBeUndefined();
        expect(await storage.read((txn) => txn.media.staleUploads(101))).toEqual(['blob1']);
        expect(await storage.read((txn) => txn.media.staleUploads(100))).toEqual([]);
        expect(await storage.write((txn) => txn.media.finishUpload(upload))).toEqual({
          mediaId: 'up', contentType: 'text/plain', uploader: ALICE, size: 5, chunks: 2, createdAt: 5,
        });
        expect(Array.from((await storage.read((txn) => txn.media.chunk('up', 1)))!)).toEqual([4, 5]);
        expect(await storage.read((txn) => txn.media.staleUploads(1_000))).toEqual([]);
        // Finished: no more chunks, and the ID is taken.
        await expectCode(storage.write((txn) => txn.media.putChunk('blob1', 2, new Uint8Array([6]))), 'NOT_FOUND');
        await storage.write((txn) => txn.media.beginUpload('blob2', 200));
        await expectCode(storage.write((txn) => txn.media.finishUpload({ ...upload, blobId: 'blob2' })), 'EXISTS');
        // Abandoned: its chunks go, and it can no longer be finished.
        await storage.write((txn) => txn.media.putChunk('blob2', 0, new Uint8Array([9])));
        await storage.write((txn) => txn.media.abortUpload('blob2'));
        await expectCode(storage.write((txn) => txn.media.finishUpload({ ...upload, mediaId: 'up2', blobId: 'blob2' })), 'NOT_FOUND');
        await storage.write((txn) => txn.media.delete('up'));
        expect(await storage.read((txn) => txn.media.chunk('up', 0))).toBeUndefined();
      });

      it('reads media stored whole before migration 5 as one chunk', async () => {
        const old = backend.location();
        const oldRow: Migration = async (schema) => {
          await schema.txn.put('media', { mediaId: 'legacy', contentType: 'image/png', bytes: new Uint8Array([7, 8, 9]), uploader: ALICE, size: 3, createdAt: 1 });
        };
        const upgraded = await old.open({ migrations: [...migrations.slice(0, 4), oldRow, ...migrations.slice(4)] });
        try {
          expect(await upgraded.read((txn) => txn.media.get('legacy'))).toEqual({
            mediaId: 'legacy', contentType: 'image/png', uploader: ALICE, size: 3, chunks: 1, createdAt: 1,
          });
          expect(Array.from((await upgraded.read((txn) => txn.media.chunk('legacy', 0)))!)).toEqual([7, 8, 9]);
          expect(await upgraded.read((txn) => txn.media.chunk('legacy', 1))).toBeUndefined();
          await upgraded.write((txn) => txn.media.delete('legacy'));
          expect(await upgraded.read((txn) => txn.media.get('legacy'))).toBeUndefined();
        } finally {
          await upgraded.close();
          await old.cleanup?.();
        }
      });

      it('remembers client transaction IDs per device', async () => {
        await storage.write((txn) =>
          txn.transactionIds.put({ userId: ALICE, deviceId: 'A', txnId: 't', eventId: '$e', response: { event_id: '$e' } }),
        );
        await storage.read(async (txn) => {
          expect(await txn.transactionIds.get(ALICE, 'A', 't')).toEqual({ userId: ALICE, deviceId: 'A', txnId: 't', eventId: '$e', response: { event_id: '$e' } });
          expect(await txn.transactionIds.get(ALICE, 'B', 't')).toBeUndefined();
        });
      });

      it('queues outbound payloads per destination until acknowledged', async () => {
        const records = await storage.write(async (txn) => [
          await txn.outbound.enqueue('b.example', { n: 1 }),
          await txn.outbound.enqueue('a.example', { n: 2 }),
          await txn.outbound.enqueue('b.example', { n: 3 }),
          await txn.outbound.enqueue('b.example', { n: 4 }),
        ]);
        expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
        await storage.read(async (txn) => {
          expect(await txn.outbound.destinations()).toEqual(['a.example', 'b.example']);
          expect((await txn.outbound.peek('b.example')).map((r) => r.payload)).toEqual([{ n: 1 }, { n: 3 }, { n: 4 }]);
          expect((await txn.outbound.peek('b.example', 1))[0]).toEqual({ destination: 'b.example', seq: 1, payload: { n: 1 } });
        });
        await storage.write((txn) => txn.outbound.ack('b.example', 3));
        expect((await storage.read((txn) => txn.outbound.peek('b.example'))).map((r) => r.seq)).toEqual([4]);
        await storage.write((txn) => txn.outbound.ack('a.example', 2));
        expect(await storage.read((txn) => txn.outbound.destinations())).toEqual(['b.example']);
        // Sequence numbers are never reused, even after the queue empties.
        await storage.write((txn) => txn.outbound.ack('b.example', 4));
        expect((await storage.write((txn) => txn.outbound.enqueue('a.example', {}))).seq).toBe(5);
      });

      it('keeps meta values, binary included', async () => {
        await storage.write(async (txn) => {
          await txn.meta.put('seed', new Uint8Array([1, 2, 3]));
          await txn.meta.put('settings', { a: [1, 'two'] });
          await txn.meta.put('gone', 1);
          await txn.meta.delete('gone');
        });
        await storage.read(async (txn) => {
          expect(Array.from((await txn.meta.get<Uint8Array>('seed'))!)).toEqual([1, 2, 3]);
          expect(await txn.meta.get('settings')).toEqual({ a: [1, 'two'] });
          expect(await txn.meta.get('gone')).toBeUndefined();
        });
      });

      it('hands out stream positions in order', async () => {
        expect(await storage.read((txn) => txn.stream.current())).toBe(0);
        expect(await storage.write(async (txn) => [await txn.stream.next(), await txn.stream.next()])).toEqual([1, 2]);
        await storage.write((txn) => txn.events.add({ eventId: '$e', roomId: ROOM, event: pdu(ROOM, 1) }));
        expect(await storage.read((txn) => txn.stream.current())).toBe(3);
      });
    });

    describe('keys', () => {
      it('orders string keys by UTF-16 code unit on every backend', async () => {
        // Astral characters (surrogates D800-DFFF) sort before U+E000..U+FFFF by code unit, after by code point.
        const ids = ['@b:hs', '@a:hs', '@a\u0000:hs', '@\uffff:hs', '@\u{1f600}:hs', '@\u00e9:hs', '@A:hs', '@', '@a'];
        await storage.write(async (txn) => {
          for (const userId of ids) await txn.users.add({ userId, deactivated: false, createdAt: 0 });
        });
        const listed = (await storage.read((txn) => txn.users.list())).map((u) => u.userId);
        expect(listed).toEqual([...ids].sort());
      });

      it('rejects rows without a valid key', async () => {
        await expectCode(
          storage.write((txn) => txn.users.add({ userId: undefined as unknown as string, deactivated: false, createdAt: 0 })),
          'BAD_KEY',
        );
      });
    });

    describe('transactions', () => {
      it('leaves nothing behind when a write throws midway', async () => {
        await storage.write((txn) => txn.users.add({ userId: BOB, deactivated: false, createdAt: 0 }));
        const before = await storage.read(readEverything);
        const commits: Commit[] = [];
        storage.subscribe((commit) => commits.push(commit));
        await expect(
          storage.write(async (txn) => {
            await writeEverything(txn);
            await txn.users.update(BOB, { displayname: 'changed' });
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        expect(await storage.read(readEverything)).toEqual(before);
        expect(await storage.read((txn) => txn.users.get(BOB))).toEqual({ userId: BOB, deactivated: false, createdAt: 0 });
        expect(commits).toEqual([]);
        // The counters rolled back too: the next write continues where the last commit left off.
        expect(await storage.write((txn) => txn.stream.next())).toBe(1);
      });

      it('refuses a row nested 2,400 deep (past what V8 can read back) with UNSTORABLE and writes nothing', async () => {
        let deep: JsonObject = { leaf: true };
        for (let i = 0; i < 2_400; i++) deep = { d: deep };
        await storage.write((txn) => txn.users.add({ userId: BOB, deactivated: false, createdAt: 0 }));
        const before = await storage.read(readEverything);
        const commits: Commit[] = [];
        storage.subscribe((commit) => commits.push(commit));
        await expectCode(
          storage.write(async (txn) => {
            await writeEverything(txn);
            await txn.toDevice.add(BOB, 'B', { sender: ALICE, type: 'm.deep', content: deep });
          }),
          'UNSTORABLE',
        );
        await expectCode(
          storage.write((txn) => txn.crossSigningKeys.put({ userId: BOB, keyType: 'master', keys: deep })),
          'UNSTORABLE',
        );
        expect(await storage.read(readEverything)).toEqual(before);
        expect(await storage.read((txn) => txn.toDevice.list(BOB, 'B', {}))).toEqual([]);
        expect(await storage.read((txn) => txn.crossSigningKeys.forUser(BOB))).toEqual([]);
        expect(commits).toEqual([]);
      });

      it('refuses values that are not JSON or bytes with UNSTORABLE', async () => {
        for (const bad of [new Date(0), new Map(), () => 1, Symbol('s'), 1n, new Uint16Array(1)]) {
          await expectCode(
            storage.write((txn) => txn.accountData.put(BOB, 'm.bad', { value: bad as never })),
            'UNSTORABLE',
          );
        }
        expect(await storage.read((txn) => txn.accountData.list(BOB))).toEqual([]);
      });

      it('stores rows nested up to 512 deep and bytes, and reads them back', async () => {
        // Rows may hold bytes (media, keys); event content never does, hence the cast.
        let deep = { bytes: new Uint8Array([1, 2, 3]) } as unknown as JsonObject;
        for (let i = 0; i < 500; i++) deep = { d: deep };
        await storage.write((txn) => txn.toDevice.add(BOB, 'B', { sender: ALICE, type: 'm.deep', content: deep }));
        const [message] = await storage.read((txn) => txn.toDevice.list(BOB, 'B', {}));
        expect(message?.content).toEqual(deep);
      });

      it('leaves nothing behind when a store refuses a write', async () => {
        await storage.write((txn) => txn.aliases.add({ alias: '#taken:hs', roomId: ROOM, creator: ALICE }));
        const before = await storage.read(readEverything);
        await expectCode(
          storage.write(async (txn) => {
            await writeEverything(txn);
            await txn.aliases.add({ alias: '#taken:hs', roomId: OTHER_ROOM, creator: BOB });
          }),
          'EXISTS',
        );
        expect(await storage.read(readEverything)).toEqual(before);
      });

      it('commits everything a write did', async () => {
        await storage.write(writeEverything);
        const after = (await storage.read(readEverything)) as Record<string, unknown>;
        for (const [store, value] of Object.entries(after)) {
          expect(value, store).not.toBeUndefined();
          if (Array.isArray(value)) expect(value.length, store).toBeGreaterThan(0);
        }
      });

      it('notifies subscribers after commit, with what changed', async () => {
        const seen: { commit: Commit; visible: Promise<boolean> }[] = [];
        storage.subscribe((commit) => {
          // A transaction started by the listener must already see the committed data.
          seen.push({ commit, visible: storage.read((txn) => txn.events.has('$e')) });
        });
        const unsubscribed: Commit[] = [];
        storage.subscribe((commit) => unsubscribed.push(commit))();
        await storage.write(async (txn) => {
          await txn.events.add({ eventId: '$e', roomId: ROOM, event: pdu(ROOM, 1) });
          await txn.memberships.set({ roomId: ROOM, userId: ALICE, membership: 'join', eventId: '$e' });
          expect(seen).toEqual([]); // nothing announced before the commit
          await txn.outbound.enqueue('peer', {});
        });
        expect(seen.map((s) => s.commit)).toEqual([
          {
            position: 1,
            changes: [
              { kind: 'event', roomId: ROOM, eventId: '$e', streamOrdering: 1 },
              { kind: 'membership', roomId: ROOM, userId: ALICE, membership: 'join' },
              { kind: 'outbound', destination: 'peer', record: { destination: 'peer', seq: expect.any(Number), payload: {} } },
            ],
          },
        ]);
        expect(await seen[0].visible).toBe(true);
        expect(unsubscribed).toEqual([]);
      });

      it('stays quiet for reads and for writes that change nothing worth announcing', async () => {
        const commits: Commit[] = [];
        const unsubscribe = storage.subscribe((commit) => commits.push(commit));
        await storage.read((txn) => txn.users.list());
        await storage.write((txn) => txn.users.add({ userId: ALICE, deactivated: false, createdAt: 0 }));
        expect(commits).toEqual([]);
        await storage.write((txn) => txn.deviceLists.add(ALICE));
        expect(commits).toEqual([{ position: 1, changes: [{ kind: 'deviceList', userId: ALICE, streamOrdering: 1 }] }]);
        unsubscribe();
        await storage.write((txn) => txn.deviceLists.add(ALICE));
        expect(commits.length).toBe(1);
      });

      it('keeps a failing listener from failing the write', async () => {
        const errors: unknown[] = [];
        const original = console.error;
        console.error = (...args: unknown[]) => errors.push(args);
        try {
          storage.subscribe(() => {
            throw new Error('listener bug');
          });
          await expect(storage.write((txn) => txn.deviceLists.add(ALICE))).resolves.toMatchObject({ streamOrdering: 1 });
        } finally {
          console.error = original;
        }
        expect(errors.length).toBe(1);
      });

      it('serialises concurrent writes', async () => {
        // Each write reads a counter, then writes it back incremented: interleaving would lose updates.
        const increment = () =>
          storage.write(async (txn) => {
            const value = (await txn.meta.get<number>('counter')) ?? 0;
            await txn.users.get(ALICE); // another request between read and write
            await txn.meta.put('counter', value + 1);
            return txn.stream.next();
          });
        const commits: number[] = [];
        storage.subscribe((commit) => commits.push(commit.position));
        await storage.write((txn) => txn.deviceLists.add(ALICE));
        const positions = await Promise.all(Array.from({ length: 20 }, increment));
        expect(await storage.read((txn) => txn.meta.get('counter'))).toBe(20);
        expect([...positions].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
        expect(commits).toEqual([1]);
      });

      it('announces commits in commit order', async () => {
        const positions: number[] = [];
        storage.subscribe((commit) => positions.push(commit.position));
        await Promise.all(Array.from({ length: 10 }, () => storage.write((txn) => txn.deviceLists.add(ALICE))));
        expect(positions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      });

      it('refuses writes in read transactions', async () => {
        await expectCode(
          storage.read((txn) => (txn as WriteTxn).users.add({ userId: ALICE, deactivated: false, createdAt: 0 })),
          'READ_ONLY',
        );
        await expectCode(storage.read((txn) => (txn as WriteTxn).stream.next()), 'READ_ONLY');
      });

      it('fails a transaction used after awaiting something else', async () => {
        await expectCode(
          storage.write(async (txn) => {
            await txn.users.get(ALICE);
            await new Promise((resolve) => setTimeout(resolve, 5));
            await txn.users.add({ userId: ALICE, deactivated: false, createdAt: 0 });
          }),
          'TXN_INACTIVE',
        );
        expect(await storage.read((txn) => txn.users.get(ALICE))).toBeUndefined();
      });

      it('rejects use after close', async () => {
        await storage.close();
        await expectCode(storage.read((txn) => txn.users.list()), 'CLOSED');
        await expectCode(storage.write((txn) => txn.stream.next()), 'CLOSED');
        storage = await location.open(); // for afterEach
      });
    });

    describe('schema', () => {
      it('keeps the children and state groups of events stored before migration 6', async () => {
        const old = backend.location();
        // Rows in the layout before migration 6: an event row, an event_edges row per edge, an event_state row.
        const oldRows: Migration = async (schema) => {
          const chain: [string, string[]][] = [['$o1', []], ['$o2', ['$o1']], ['$o3', ['$o2', '$o1']]];
          for (const [i, [eventId, prevs]] of chain.entries()) {
            await schema.txn.put('events', { eventId, roomId: ROOM, event: pdu(ROOM, i + 1, prevs), depth: i + 1, outlier: false, streamOrdering: i + 1 });
            for (const prevId of prevs) await schema.txn.put('event_edges', { prevId, eventId });
            await schema.txn.put('event_state', { eventId, before: 10 + i, after: 11 + i });
          }
          await schema.txn.put('counters', { name: 'stream', value: chain.length });
        };
        const upgraded = await old.open({ migrations: [...migrations.slice(0, 5), oldRows, ...migrations.slice(5)] });
        try {
          // New events beside the old: a child of an old event, and a merge of an old and a new one.
          await upgraded.write(async (txn) => {
            await txn.events.add({ eventId: '$n1', roomId: ROOM, event: pdu(ROOM, 4, ['$o3']), stateGroups: { before: 13, after: 14 } });
            await txn.events.add({ eventId: '$n2', roomId: ROOM, event: pdu(ROOM, 5, ['$n1', '$o2']), stateGroups: { before: 14, after: 14 } });
          });
          await upgraded.read(async (txn) => {
            expect(await txn.dag.children('$o1')).toEqual(['$o2', '$o3']);
            expect(await txn.dag.children('$o2')).toEqual(['$n2', '$o3']);
            expect(await txn.dag.children('$o3')).toEqual(['$n1']);
            expect(await txn.dag.children('$n1')).toEqual(['$n2']);
            expect(await txn.dag.children('$n2')).toEqual([]);
            const o2 = (await txn.events.get('$o2'))!;
            expect(o2.stateGroups).toBeUndefined();
            expect(await txn.eventState.of(o2)).toEqual({ before: 11, after: 12 });
            expect(await txn.eventState.get('$o3')).toEqual({ eventId: '$o3', before: 12, after: 13 });
            expect(await txn.eventState.get('$n2')).toEqual({ eventId: '$n2', before: 14, after: 14 });
            expect((await txn.timeline.range(ROOM, { dir: 'f' })).map((e) => e.eventId)).toEqual(['$o1', '$o2', '$o3', '$n1', '$n2']);
          });
          // Set again, an old event's groups move onto its row and win over the old record.
          await upgraded.write((txn) => txn.eventState.set({ eventId: '$o1', before: 20, after: 21 }));
          expect(await upgraded.read((txn) => txn.eventState.get('$o1'))).toEqual({ eventId: '$o1', before: 20, after: 21 });
        } finally {
          await upgraded.close();
          await old.cleanup?.();
        }
      });

      it('indexes each element of an array under a multiEntry index, following the rows it indexes', async () => {
        const old = backend.location();
        const seen: Record<string, unknown> = {};
        // The engine itself, through a migration's transaction: a table whose rows carry tags at a nested path.
        const tagged: Migration = async (schema) => {
          schema.createTable('tagged', ['id']);
          await schema.txn.put('tagged', { id: 1, meta: { tags: ['a', 'b', 'a'] } });
          // Filled from the rows already there, as IndexedDB fills a new index.
          schema.createIndex('tagged', 'by_tag', ['meta.tags'], { multiEntry: true });
          await schema.txn.put('tagged', { id: 2, meta: { tags: ['b', 3, null, { no: 'key' }] } });
          await schema.txn.put('tagged', { id: 3, meta: { tags: 'c' } });
          await schema.txn.put('tagged', { id: 4, meta: {} });
          const ids = async (prefix: (string | number)[]) => (await schema.txn.scan('tagged', { index: 'by_tag', prefix })).map((row) => row.id);
          seen.a = await ids(['a']);
          seen.b = await ids(['b']);
          seen.three = await ids([3]);
          seen.c = await ids(['c']);
          seen.countB = await schema.txn.count('tagged', { index: 'by_tag', prefix: ['b'] });
          seen.range = (await schema.txn.scan('tagged', { index: 'by_tag', lower: ['a'], upper: ['b'], upperOpen: true })).map((row) => row.id);
          await schema.txn.put('tagged', { id: 1, meta: { tags: ['c'] } });
          await schema.txn.delete('tagged', [2]);
          seen.bAfter = await ids(['b']);
          seen.cAfter = await ids(['c']);
          let refused: unknown;
          try {
            schema.createIndex('tagged', 'two_fields', ['id', 'meta.tags'], { multiEntry: true });
          } catch (error) {
            refused = error;
          }
          seen.refused = (refused as StorageError | undefined)?.code;
        };
        const upgraded = await old.open({ migrations: [...migrations, tagged] });
        try {
          // The memory backend migrates on its first transaction.
          await upgraded.read(async () => undefined);
          expect(seen).toEqual({ a: [1], b: [1, 2], three: [2], c: [3], countB: 2, range: [1], bAfter: [], cAfter: [1, 3], refused: 'SCHEMA' });
        } finally {
          await upgraded.close();
          await old.cleanup?.();
        }
      });

      it('lacks later indexes at an older version', async () => {
        const old = backend.location();
        const storage = await old.open({ migrations: migrations.slice(0, 1) });
        try {
          await addChain(storage, ROOM, 2);
          await expectCode(storage.read((txn) => txn.timeline.topological(ROOM, { dir: 'f' })), 'SCHEMA');
        } finally {
          await storage.close();
          await old.cleanup?.();
        }
      });

      if (backend.persistent) it('upgrades a database opened at an older version', async () => {
        await storage.close();
        await location.cleanup?.();
        location = backend.location();
        storage = await location.open({ migrations: migrations.slice(0, 1) });
        await addChain(storage, ROOM, 3);
        await storage.write((txn) => writeEverything(txn, { v1Layout: true }));
        const before = await storage.read((txn) => readEverything(txn, { children: false }));
        await storage.close();
        storage = await location.open();
        expect(await storage.read((txn) => readEverything(txn, { children: false }))).toEqual(before);
        // The index added by migration 6 covers events stored before it existed.
        expect(await storage.read((txn) => txn.dag.children('$create'))).toEqual(['$a1', '$out']);
        expect(await storage.read((txn) => txn.dag.children('$roo1'))).toEqual(['$roo2']);
        // The index added by migration 2 covers events stored before it existed.
        const topological = await storage.read((txn) => txn.timeline.topological(ROOM, { dir: 'b' }));
        expect(topological.map((e) => e.eventId)).toEqual(['$roo3', '$roo2', '$a1', '$roo1', '$create']);
      });

      if (backend.persistent) it('keeps forward extremities of before migration 3, one row per room after it', async () => {
        await storage.close();
        await location.cleanup?.();
        location = backend.location();
        // Rows in the layout before migration 3: one per (room, event).
        const oldLayout: Migration = async (schema) => {
          for (const [roomId, eventId] of [[ROOM, '$b'], [ROOM, '$a'], [OTHER_ROOM, '$z']]) {
            await schema.txn.put('extremities', { roomId, eventId });
          }
        };
        storage = await location.open({ migrations: [...migrations.slice(0, 2), oldLayout] });
        await storage.close();
        storage = await location.open({ migrations: [...migrations.slice(0, 2), oldLayout, migrations[2]!] });
        expect(await storage.read((txn) => txn.dag.extremities(ROOM))).toEqual(['$a', '$b']);
        expect(await storage.read((txn) => txn.dag.extremities(OTHER_ROOM))).toEqual(['$z']);
        await storage.write((txn) => txn.dag.setExtremities(ROOM, ['$c']));
        expect(await storage.read((txn) => txn.dag.extremities(ROOM))).toEqual(['$c']);
        await storage.write((txn) => txn.dag.setExtremities(OTHER_ROOM, []));
        expect(await storage.read((txn) => txn.dag.extremities(OTHER_ROOM))).toEqual([]);
      });

      if (backend.persistent) it('refuses a database newer than the code', async () => {
        await storage.close();
        const error = await location.open({ migrations: migrations.slice(0, 1) }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StorageError);
        expect((error as StorageError).code).toBe('SCHEMA');
        storage = await location.open();
      });

      if (backend.persistent) it('rolls back a failing migration', async () => {
        await storage.close();
        await location.cleanup?.();
        location = backend.location();
        storage = await location.open({ migrations: migrations.slice(0, 1) });
        await storage.write((txn) => txn.users.add({ userId: ALICE, deactivated: false, createdAt: 0 }));
        await storage.close();
        const failing: Migration = async (schema) => {
          schema.createTable('scratch', ['id']);
          await schema.txn.put('scratch', { id: 1 });
          throw new Error('migration bug');
        };
        await expect(location.open({ migrations: [...migrations.slice(0, 1), failing] })).rejects.toThrow('migration bug');
        storage = await location.open({ migrations: migrations.slice(0, 1) });
        expect(await storage.read((txn) => txn.users.get(ALICE))).toMatchObject({ userId: ALICE });
      });
    });

    if (backend.persistent) describe('persistence', () => {
      it('keeps data and counters across close and reopen', async () => {
        await addChain(storage, ROOM, 3);
        await storage.write(writeEverything);
        const before = await storage.read(readEverything);
        const group = await storage.write((txn) => txn.stateGroups.create(ROOM, new Map()));
        await storage.close();
        storage = await location.open();
        expect(await storage.read(readEverything)).toEqual(before);
        const position = (before as { stream: number }).stream;
        expect(await storage.write((txn) => txn.stream.next())).toBe(position + 1);
        expect(await storage.write((txn) => txn.stateGroups.create(ROOM, new Map()))).toBe(group + 1);
        expect((await storage.write((txn) => txn.filters.create(ALICE, {})))).toBe('2');
        expect((await storage.write((txn) => txn.outbound.enqueue('x', {}))).seq).toBe(2);
        const timeline = await storage.read((txn) => txn.timeline.range(ROOM, { dir: 'b', limit: 2 }));
        expect(timeline.map((e) => e.eventId)).toEqual(['$a1', '$create']);
      });
    });
  });
}
