/**
 * Browser half of the homeserver benchmarks: a homeserver in this page over
 * the browser's real IndexedDB, measured beside a raw IndexedDB batch write
 * in the same run.
 */
import { createSigner } from '../../../src/core/index.js';
import { createHomeserver, NO_RATE_LIMITS } from '../../../src/homeserver/index.js';
import { openIdbStorage } from '../../../src/storage/index.js';
import { createRoom, registerBenchUser, sendToSyncLatency, sequentialSends } from '../homeserver-bench.js';
import type { BenchRow } from '../report.js';
import { rawIdbWrites } from './raw-idb.js';
import { storedEventRate } from './stored-events.js';

async function run(): Promise<BenchRow[]> {
  const where = 'chromium';
  const rows: BenchRow[] = [];
  const oneRecord = await rawIdbWrites(1, 500);
  const batched = await rawIdbWrites(500, 5000);
  rows.push({ where, figure: 'raw IndexedDB write, 1 record/txn', value: oneRecord, unit: 'records/s' });
  rows.push({ where, figure: 'raw IndexedDB write, 500 records/txn', value: batched, unit: 'records/s' });
  rows.push({
    where,
    figure: 'storage: message events stored as a received batch writes them, 1,000 per write (IndexedDB)',
    value: await storedEventRate(10_000, 1_000),
    unit: 'events/s',
    limit: { label: 'raw IndexedDB 500 records/txn', value: batched, unit: 'records/s' },
  });

  // A fresh database only this page uses: the storage is its only writer, as the app's profile lock makes it.
  const storage = await openIdbStorage(`bench-${Date.now()}`, { exclusive: true });
  const signer = await createSigner(crypto.getRandomValues(new Uint8Array(32)), 'bench.local', 'ed25519:1');
  // Thousands of sends as one user measure the server, not its rate limits.
  const homeserver = createHomeserver({ storage, signer, config: { rateLimits: NO_RATE_LIMITS } });
  const handle = (request: Request) => homeserver.handleClient(request);
  const alice = await registerBenchUser(handle, 'http://bench.local', 'alice');
  const roomId = await createRoom(alice, 'latency');
  const latency = await sendToSyncLatency(alice, roomId, 300);
  rows.push({ where, figure: 'send → own /sync wake-up, p50 (in process, IndexedDB)', value: latency.p50, unit: 'ms', limit: { label: 'goal', value: 2, unit: 'ms' } });
  rows.push({ where, figure: 'send → own /sync wake-up, p99', value: latency.p99, unit: 'ms' });
  const sends = await sequentialSends(alice, roomId, 500);
  rows.push({
    where,
    figure: 'sends/s (in process, IndexedDB, sequential)',
    value: sends.rate,
    unit: '/s',
    limit: { label: 'raw IndexedDB 1 record/txn', value: oneRecord, unit: '/s' },
  });
  await homeserver.close();
  await storage.close();
  return rows;
}

const w = window as unknown as { benchDone: Promise<unknown> };
w.benchDone = run();
