// Where a catch-up's time goes with no wire and no IndexedDB: two real homeservers on memory storage and the
// memory network (tests/p2p/catch-up.test.ts's harness); the second is cut off while the first writes N messages,
// then pulls them in one anti-entropy exchange. Prints the returning server's time per stage: the pages'
// requests (the responder's work: the memory network adds no wire time), the event IDs of each page, the reads of
// which parents are stored, and each receivePdus chunk, split into its own stages by a CPU profile.
// With `idb` the returning server keeps its data in IndexedDB (fake-indexeddb, so no browser's timings) and the
// tool counts the IndexedDB requests and transactions it makes per event caught up: what a browser pays for.
// Usage: node --import tsx tests/bench/node/catch-up.ts [N] [noble|webcrypto] [memory|idb]
import '../../../src/node/polyfills.js';
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { setEd25519Backend } from '../../../src/core/index.js';
import { enc, withUsers } from '../../homeserver/rooms/helpers.js';
import { createRealSim } from '../../p2p/simulation/real-harness.js';
import { openIdbStorage } from '../../../src/storage/idb/index.js';

const n = Number(process.argv[2] ?? 3000);
const backend = (process.argv[3] ?? 'webcrypto') as 'noble' | 'webcrypto';
const storageKind = process.argv[4] ?? 'memory';
const requests = storageKind === 'idb' ? countIdbRequests() : undefined;
const sim = await createRealSim({
  seed: 7,
  servers: 2,
  replicator: { directFanoutMax: 1 },
  network: { maxBodyBytes: 8 << 20, holdTimeForHandlersMs: 600_000 },
  ...(storageKind === 'idb' ? { storage: (i: number) => openIdbStorage(`hs${i}`, { indexedDB: new IDBFactory(), IDBKeyRange, exclusive: true }) } : {}),
});
const [s0, s1] = sim.peers as [(typeof sim.peers)[0], (typeof sim.peers)[0]];
const [alice] = await withUsers(s0.server, 'alice');
const [bob] = await withUsers(s1.server, 'bob');
const roomId = await alice!.createRoom({ preset: 'public_chat' });
if ((await bob!.call('POST', `/join/${enc(roomId)}?server_name=${s0.name}`, {})).status !== 200) throw new Error('join failed');
await sim.quiesce();
sim.network.partition([s0.name], [s1.name]);
const tw = performance.now();
for (let i = 0; i < n; i++) await alice!.send(roomId, { msgtype: 'm.text', body: `away ${i} ${'x'.repeat(40)}` });
console.log(`wrote ${n} in ${((performance.now() - tw) / 1000).toFixed(1)} s`);
await sim.quiesce();
setEd25519Backend(backend);

const spent = new Map<string, { n: number; ms: number }>();
function timed<A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const t = performance.now();
    try {
      return await fn(...args);
    } finally {
      const e = spent.get(name) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += performance.now() - t;
      spent.set(name, e);
    }
  };
}
const replication = s1.server.homeserver.replication;
replication.receivePdus = timed('receivePdus', replication.receivePdus.bind(replication));
replication.eventIds = timed('eventIds', replication.eventIds.bind(replication));
replication.storedEvents = timed('storedEvents', replication.storedEvents.bind(replication));
const request = s1.transport.request.bind(s1.transport);
s1.transport.request = (server, req, options) => timed(`request ${req.path.split('/').slice(0, 5).join('/')}`, request)(server, req, options);

const profiling = process.env.BENCH_PROFILE ? await startProfile() : undefined;
sim.network.heal();
requests?.reset();
const t0 = performance.now();
await s1.replicator.exchange(s0.name);
await sim.quiesce();
const total = performance.now() - t0;
const counted = requests?.counts();
if (profiling) writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(await profiling.stop()));
const held = (await sim.eventIds(s1, roomId)).length;
const want = (await sim.eventIds(s0, roomId)).length;
console.log(`caught up ${n} events in ${(total / 1000).toFixed(2)} s: ${(n / (total / 1000)).toFixed(0)} events/s (${backend}); holds ${held} of ${want}`);
for (const [k, e] of spent) console.log(`  ${k}: ${e.n}×, ${e.ms.toFixed(0)} ms (${((100 * e.ms) / total).toFixed(0)}%)`);
if (requests) {
  // Both servers share the IDB classes: requests are named by database, hs1 is the returning server; transactions are both's.
  const perEvent = (x: number) => (x / n).toFixed(2);
  const { byKind, transactions } = counted!;
  const all = [...byKind.values()].reduce((a, b) => a + b, 0);
  console.log(`  IndexedDB: ${perEvent(all)} requests/event, ${perEvent(transactions.readwrite)} write and ${perEvent(transactions.readonly)} read txns/event`);
  for (const [k, v] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`    ${k}: ${perEvent(v)}/event`);
}
await sim.close();

/** BENCH_PROFILE=file.cpuprofile: a CPU profile of the catch-up alone. */
async function startProfile(): Promise<{ stop(): Promise<unknown> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return { stop: async () => (await session.post('Profiler.stop')).profile };
}
const laps = (globalThis as any).__lap as Map<string, number> | undefined;
if (laps) for (const [k, v] of laps) console.log(`  lap ${k}: ${v.toFixed(0)} ms`);

/** Counts IndexedDB requests by store, index and method, and transactions by mode (fake-indexeddb's classes). */
function countIdbRequests(): { reset(): void; counts(): { byKind: Map<string, number>; transactions: Record<IDBTransactionMode, number> } } {
  const byKind = new Map<string, number>();
  const transactions: Record<IDBTransactionMode, number> = { readonly: 0, readwrite: 0, versionchange: 0 };
  const wrap = (proto: any, kind: 'store' | 'index', methods: string[]) => {
    for (const method of methods) {
      const original = proto[method];
      if (typeof original !== 'function') continue;
      proto[method] = function (this: any, ...args: unknown[]) {
        const store = kind === 'store' ? this : this.objectStore;
        const name = `${store.transaction.db.name}: ${kind === 'store' ? this.name : `${this.objectStore.name}.${this.name}`}`;
        const key = `${name} ${method}`;
        byKind.set(key, (byKind.get(key) ?? 0) + 1);
        if (process.env.STACKS && key === process.env.STACKS) {
          const at = new Error().stack!.split('\n').slice(2, 12).filter((l) => !l.includes('node_modules')).join(' | ');
          byKind.set(at, (byKind.get(at) ?? 0) + 1);
        }
        return original.apply(this, args);
      };
    }
  };
  const g = globalThis as any;
  wrap(g.IDBObjectStore.prototype, 'store', ['get', 'getKey', 'getAll', 'getAllKeys', 'getAllRecords', 'count', 'put', 'add', 'delete', 'clear', 'openCursor']);
  wrap(g.IDBIndex.prototype, 'index', ['get', 'getKey', 'getAll', 'getAllKeys', 'getAllRecords', 'count', 'openCursor']);
  const transaction = g.IDBDatabase.prototype.transaction;
  g.IDBDatabase.prototype.transaction = function (this: unknown, names: unknown, mode: IDBTransactionMode = 'readonly', ...rest: unknown[]) {
    transactions[mode]++;
    return transaction.call(this, names, mode, ...rest);
  };
  return {
    reset() {
      byKind.clear();
      transactions.readonly = transactions.readwrite = transactions.versionchange = 0;
    },
    counts: () => ({ byKind: new Map(byKind), transactions: { ...transactions } }),
  };
}
