/**
 * Remote media, in Node with two in-process homeservers (memory storage,
 * federation requests handed straight to the other server's handleFederation
 * as tests/support/federation.ts wires them: no network, so the figure is the
 * homeservers' own cost of the JSON/base64 chunk protocol). A user on A
 * uploads a file of random bytes; a user on B downloads it through B, which
 * fetches it from A chunk by chunk, checks and caches it, then serves it. The
 * same-run limit is A serving the same file to its own user from storage.
 */
import { startFederation } from '../support/federation.js';
import { NO_RATE_LIMITS } from '../../src/homeserver/index.js';
import type { BenchRow } from './report.js';

export async function runMediaBench(options: { megabytes?: number; rounds?: number } = {}): Promise<BenchRow[]> {
  const size = (options.megabytes ?? 16) * 1024 * 1024;
  const rounds = options.rounds ?? 3;
  const net = await startFederation(2, { config: { rateLimits: NO_RATE_LIMITS } });
  try {
    const [a, b] = net.servers as [(typeof net.servers)[0], (typeof net.servers)[0]];
    const alice = await a.register('alice');
    const bob = await b.register('bob');
    const bytes = new Uint8Array(size);
    for (let o = 0; o < size; o += 65_536) crypto.getRandomValues(bytes.subarray(o, Math.min(size, o + 65_536)));
    const download = async (server: typeof a, token: string, mxc: string) => {
      const [serverName, mediaId] = mxc.slice('mxc://'.length).split('/');
      const started = performance.now();
      const response = await server.homeserver.handleClient(new Request(`${server.baseUrl}/_matrix/client/v1/media/download/${serverName}/${mediaId}`, { headers: { authorization: `Bearer ${token}` } }));
      const got = new Uint8Array(await response.arrayBuffer());
      if (response.status !== 200 || got.byteLength !== size) throw new Error(`bench: download answered ${response.status} with ${got.byteLength} bytes`);
      return performance.now() - started;
    };
    const remote: number[] = [];
    const local: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const uploaded = await a.call('POST', '/_matrix/media/v3/upload?filename=blob.bin', bytes, alice.accessToken, { 'content-type': 'application/octet-stream' });
      if (uploaded.status !== 200) throw new Error(`upload: ${JSON.stringify(uploaded.json)}`);
      const mxc = uploaded.json.content_uri as string;
      // Alternate, so machine load falls on both alike.
      local.push(await download(a, alice.accessToken, mxc));
      remote.push(await download(b, bob.accessToken, mxc));
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const mbps = (ms: number) => size / 1024 / 1024 / (ms / 1000);
    const remoteMs = median(remote);
    const localMs = median(local);
    return [
      {
        where: 'node',
        figure: `remote media: first download of a ${size / 1024 / 1024} MiB file through B (fetched from A in 256 KiB base64 chunks, checked, cached, served; median of ${rounds})`,
        value: mbps(remoteMs),
        unit: 'MiB/s',
        limit: { label: 'A serving it to its own user from storage', value: mbps(localMs), unit: 'MiB/s' },
        note: `${remoteMs.toFixed(0)} ms vs ${localMs.toFixed(0)} ms: ${((localMs / remoteMs) * 100).toFixed(0)}% of local`,
      },
    ];
  } finally {
    await net.close();
  }
}
