// Per-PDU cost of receiving over federation: A sends N messages one by one, each delivered to B in its own
// `PUT /send`; B's handleFederation time per PDU. Usage: node --import tsx tests/bench/node/receive-pdus.ts [memory|sqlite] [N]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFederation } from '../../support/federation.js';
import { enc, withUsers } from '../../homeserver/rooms/helpers.js';
import { openSqliteStorage } from '../../../src/storage/sqlite/index.js';
import type { TestServer } from '../../homeserver/harness.js';

const kind = process.argv[2] ?? 'memory';
const n = Number(process.argv[3] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'recv-bench-'));
const net = await startFederation(2, kind === 'sqlite' ? { storage: (i) => openSqliteStorage(join(dir, `hs${i}.db`)) } : {});
const [a, b] = net.servers as [TestServer, TestServer];
const [alice] = await withUsers(a, 'alice');
const [bob] = await withUsers(b, 'bob');
const roomId = await alice!.createRoom({ preset: 'public_chat' });
const joined = await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {});
if (joined.status !== 200) throw new Error(`join ${joined.status}`);
await net.flush();

const times: number[] = [];
const original = b.homeserver.handleFederation.bind(b.homeserver);
b.homeserver.handleFederation = async (request: Request, origin: string) => {
  const start = performance.now();
  const response = await original(request, origin);
  if (request.method === 'PUT' && new URL(request.url).pathname.includes('/send/')) times.push(performance.now() - start);
  return response;
};
let reads = 0;
let counting = false;
const storage = b.storage as { read: (...args: any[]) => Promise<unknown> };
const read = storage.read.bind(b.storage);
storage.read = (...args: any[]) => {
  if (counting) reads++;
  return read(...args);
};
const t0 = performance.now();
for (let i = 0; i < n; i++) {
  await alice!.send(roomId, { msgtype: 'm.text', body: `m${i}` });
  counting = true;
  await net.flush();
  counting = false;
}
const wall = performance.now() - t0;
times.sort((x, y) => x - y);
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
const total = times.reduce((s, x) => s + x, 0);
console.log(`${kind} n=${times.length} receive p50 ${q(0.5)} ms p90 ${q(0.9)} ms p99 ${q(0.99)} ms mean ${(total / times.length).toFixed(2)} ms; ${(times.length / (total / 1000)).toFixed(0)} PDUs/s in B; wall ${(wall / 1000).toFixed(1)} s; B read txns/PDU ${(reads / times.length).toFixed(2)}`);
await net.close();
rmSync(dir, { recursive: true, force: true });
