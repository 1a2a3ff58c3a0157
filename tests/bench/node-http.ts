/**
 * Node half of the homeserver benchmarks: `npm run homeserver` with SQLite in
 * a child process, driven over real HTTP from this process. The limit beside
 * each figure is a bare node:http server answering `{}` in a child process,
 * measured in the same run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHomeserverProcess } from '../support/homeserver-process.js';
import { concurrentSends, createRoom, registerBenchUser, sequentialSends, sendMessage, type Handler } from './homeserver-bench.js';
import { percentile, type BenchRow } from './report.js';

const BARE_SERVER = `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => { s.setHeader('content-type', 'application/json'); s.end('{}'); }); })
  .listen(0, '127.0.0.1', function () { console.log('listening on http://127.0.0.1:' + this.address().port); });`;

async function bareServerRate(n: number): Promise<{ rate: number; p50: number }> {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((ok) => child.stdout!.on('data', (d) => ok(/listening on (\S+)/.exec(String(d))![1]!)));
  try {
    const samples: number[] = [];
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const response = await fetch(`${url}/x/${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"msgtype":"m.text","body":"x"}' });
      await response.json();
      samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    return { rate: (n * 1000) / (performance.now() - start), p50: percentile(samples, 50) };
  } finally {
    child.kill();
  }
}

const viaFetch: Handler = (request) => fetch(request);

export async function runNodeHttpBench(): Promise<BenchRow[]> {
  const where = 'node http';
  const rows: BenchRow[] = [];
  const bare = await bareServerRate(2000);
  const dataDir = await mkdtemp(join(tmpdir(), 'hometab-bench-'));
  const server = await startHomeserverProcess(['--data', dataDir]);
  try {
    const handle = viaFetch;
    const alice = await registerBenchUser(handle, server.url, 'alice');
    const roomId = await createRoom(alice, 'bench');
    await sequentialSends(alice, roomId, 200); // warm-up
    const sequential = await sequentialSends(alice, roomId, 2000);
    rows.push({
      where,
      figure: 'PUT /send sequential (SQLite)',
      value: sequential.rate,
      unit: 'msg/s',
      limit: { label: 'bare node:http round trips', value: bare.rate, unit: '/s' },
      note: `goal >= 1,000 msg/s; p50 ${sequential.p50.toFixed(2)} ms (bare ${bare.p50.toFixed(2)} ms)`,
    });

    const senders = [alice];
    for (let i = 1; i < 4; i++) senders.push(await registerBenchUser(handle, server.url, `sender${i}`));
    const shared = (await alice.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' })).room_id as string;
    for (const s of senders.slice(1)) await s.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(shared)}`, {});
    const concurrent = await concurrentSends(senders, shared, 500);
    rows.push({
      where,
      figure: 'PUT /send, 4 concurrent senders, one room',
      value: concurrent.rate,
      unit: 'msg/s',
      limit: { label: 'bare node:http round trips', value: bare.rate, unit: '/s' },
      note: `p50 ${concurrent.p50.toFixed(2)} ms`,
    });

    // Initial /sync of a user in 20 rooms holding 10,000 events between them.
    const reader = await registerBenchUser(handle, server.url, 'reader');
    const rooms: string[] = [];
    for (let r = 0; r < 20; r++) {
      const id = await createRoom(senders[r % 4]!, `room ${r}`);
      await senders[r % 4]!.call('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(id)}/invite`, { user_id: reader.userId });
      await reader.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(id)}`, {});
      rooms.push(id);
    }
    await Promise.all(
      senders.map(async (sender, s) => {
        // Sender s created rooms s, s+4, s+8, ...: it fills those five, round robin.
        for (let i = 0; i < 2500; i++) await sendMessage(sender, rooms[s + 4 * (i % 5)]!, `fill ${s}/${i}`);
      }),
    );
    const times: number[] = [];
    let events = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const sync = await reader.call('GET', '/_matrix/client/v3/sync');
      times.push(performance.now() - t);
      events = Object.keys(sync.rooms?.join ?? {}).length;
    }
    times.sort((a, b) => a - b);
    rows.push({
      where,
      figure: `initial /sync, ${events} rooms, 10,000+ events`,
      value: times[1]!,
      unit: 'ms',
      limit: { label: 'bare round trip', value: bare.p50, unit: 'ms' },
    });
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return rows;
}
