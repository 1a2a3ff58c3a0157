/**
 * Node half of the homeserver benchmarks: `npm run homeserver` with SQLite in
 * a child process, driven over real HTTP from this process. The limit beside
 * each figure is a bare node:http server answering `{}` in a child process,
 * measured in the same run with the same client code: node:http with one
 * keep-alive socket per sender and no web Request/Response plumbing, so the
 * client costs little next to either server and the figures measure servers.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHomeserverProcess } from '../support/homeserver-process.js';
import {
  concurrentSends,
  createRoom,
  registerBenchUserOver,
  sendMessage,
  sequentialSends,
  type Client,
  type Exchange,
} from './homeserver-bench.js';
import { percentile, type BenchRow } from './report.js';

const BARE_SERVER = `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => { s.setHeader('content-type', 'application/json'); s.end('{}'); }); })
  .listen(0, '127.0.0.1', function () { console.log('listening on http://127.0.0.1:' + this.address().port); });`;

const SEND_BODY = JSON.stringify({ msgtype: 'm.text', body: 'x' });

/** A client's own keep-alive connection to `baseUrl`: its requests go one at a time over one socket. */
function connection(baseUrl: string, agents: Agent[]): Exchange {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  const { hostname, port } = new URL(baseUrl);
  return (method, path, body, headers) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(body);
      const outgoing = payload ? { ...headers, 'content-length': String(payload.byteLength) } : headers;
      const req = request({ agent, hostname, port, method, path, headers: outgoing }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (error) {
            reject(error);
          }
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
}

/** `senders` connections each making `perSender` sequential PUTs of a message body: round trips/s and p50. */
async function bareRate(exchanges: Exchange[], perSender: number): Promise<{ rate: number; p50: number }> {
  const samples: number[] = [];
  const start = performance.now();
  await Promise.all(
    exchanges.map(async (exchange, s) => {
      for (let i = 0; i < perSender; i++) {
        const t = performance.now();
        const { status } = await exchange('PUT', `/x/${s}/${i}`, SEND_BODY, { 'content-type': 'application/json', authorization: 'Bearer x' });
        if (status !== 200) throw new Error(`bare server answered ${status}`);
        samples.push(performance.now() - t);
      }
    }),
  );
  const rate = (exchanges.length * perSender * 1000) / (performance.now() - start);
  samples.sort((a, b) => a - b);
  return { rate, p50: percentile(samples, 50) };
}

/** The bare server's limits, sequential (one connection) and with four concurrent connections. */
async function bareServerRates(n: number, concurrentPerSender: number, agents: Agent[]) {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((ok) => child.stdout!.on('data', (d) => ok(/listening on (\S+)/.exec(String(d))![1]!)));
  try {
    const one = connection(url, agents);
    await bareRate([one], 1000); // warm-up (the JIT settles after about a thousand requests), as for the homeserver
    const sequential = await bareRate([one], n);
    const four = [one, connection(url, agents), connection(url, agents), connection(url, agents)];
    await bareRate(four, 50);
    const concurrent = await bareRate(four, concurrentPerSender);
    return { sequential, concurrent };
  } finally {
    child.kill();
  }
}

export async function runNodeHttpBench(): Promise<BenchRow[]> {
  const where = 'node http';
  const rows: BenchRow[] = [];
  const agents: Agent[] = [];
  const bare = await bareServerRates(2000, 500, agents);
  const dataDir = await mkdtemp(join(tmpdir(), 'hometab-bench-'));
  // Thousands of sends as one user measure the server, not its rate limits.
  const server = await startHomeserverProcess(['--data', dataDir, '--no-rate-limits']);
  // Each benchmark user gets its own connection, as separate clients would.
  const user = (localpart: string): Promise<Client> => registerBenchUserOver(connection(server.url, agents), localpart);
  try {
    const alice = await user('alice');
    const roomId = await createRoom(alice, 'bench');
    await sequentialSends(alice, roomId, 1000); // warm-up, as for the bare server
    const sequential = await sequentialSends(alice, roomId, 2000);
    rows.push({
      where,
      figure: 'PUT /send sequential (SQLite)',
      value: sequential.rate,
      unit: 'msg/s',
      limit: { label: 'bare node:http, 1 connection', value: bare.sequential.rate, unit: 'round trips/s' },
      note: `goal >= 1,000 msg/s; p50 ${sequential.p50.toFixed(2)} ms (bare ${bare.sequential.p50.toFixed(2)} ms)`,
    });

    const senders = [alice];
    for (let i = 1; i < 4; i++) senders.push(await user(`sender${i}`));
    const shared = (await alice.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' })).room_id as string;
    for (const s of senders.slice(1)) await s.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(shared)}`, {});
    const concurrent = await concurrentSends(senders, shared, 500);
    rows.push({
      where,
      figure: 'PUT /send, 4 concurrent senders, one room',
      value: concurrent.rate,
      unit: 'msg/s',
      limit: { label: 'bare node:http, 4 connections', value: bare.concurrent.rate, unit: 'round trips/s' },
      note: `p50 ${concurrent.p50.toFixed(2)} ms (bare ${bare.concurrent.p50.toFixed(2)} ms)`,
    });

    // Initial /sync of a user in 20 rooms holding 10,000 events between them.
    const reader = await user('reader');
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
      limit: { label: 'bare round trip', value: bare.sequential.p50, unit: 'ms' },
    });
  } finally {
    for (const agent of agents) agent.destroy();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return rows;
}
