// `npm start` smoke test: the real entry point on a free port serves the page and /config.json,
// its relay (behind the same port) is dialable by a Node transport and relays to another one,
// the relay key is stable with --data, and SIGTERM stops it cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeTransport } from '../../src/p2p/node-node.js';
import { relayAddressFor } from '../../src/node/start.js';
import { randomSeed, waitFor } from '../p2p/helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

interface Running {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

async function startProcess(port: number, dataDir: string): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/node/start.ts', '--port', String(port), '--data', dataDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
  // The first start of a clean clone builds the app first.
  await waitFor(() => output.join('').includes('Hometab is running: open http://127.0.0.1:'), 170_000, `npm start output: ${output.join('')}`);
  return { child, output, exited };
}

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => ok({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('npm start', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it('serves the page and /config.json whose relay a Node transport can dial and use, on one port', async () => {
    const port = await freePort();
    const dataDir = await mkdtemp(join(tmpdir(), 'hometab-start-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const running = await startProcess(port, dataDir);
    cleanup.push(async () => running.child.kill('SIGKILL'));
    expect(running.output.join('')).toContain(`open http://127.0.0.1:${port}/`);

    const page = await get(port, '/');
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');
    expect(page.body).toContain('<title>Hometab</title>');
    expect((await get(port, '/missing.js')).status).toBe(404);
    expect((await get(port, '/../../etc/passwd')).body).not.toContain('root:');

    const config = await get(port, '/config.json');
    expect(config.type).toContain('application/json');
    const { relays } = JSON.parse(config.body) as { relays: string[] };
    expect(relays).toHaveLength(1);
    expect(relays[0]).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/${port}/ws/p2p/12D3KooW[1-9A-HJ-NP-Za-km-z]+$`));

    // A server reachable only through the relay, and one that dials it by name.
    const hidden = await createNodeTransport({ seed: randomSeed(), relays, listen: [] });
    const caller = await createNodeTransport({ seed: randomSeed(), relays });
    cleanup.push(() => hidden.close(), () => caller.close());
    hidden.handle(async (origin) => ({ status: 200, body: { origin } }));
    await waitFor(() => hidden.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 15_000, 'reservation through npm start');
    expect(caller.peerBook.connectedRelays()).toEqual(relays);
    const response = await caller.request(hidden.localServer, { method: 'GET', path: '/_matrix/federation/v1/version' });
    expect(response).toEqual({ status: 200, body: { origin: caller.localServer } });

    running.child.kill('SIGTERM');
    expect(await running.exited).toBe(0);

    // Same --data, same relay PeerId.
    const again = await startProcess(port, dataDir);
    cleanup.push(async () => again.child.kill('SIGKILL'));
    const second = JSON.parse((await get(port, '/config.json')).body) as { relays: string[] };
    expect(second.relays).toEqual(relays);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  }, 240_000);

  it('builds the relay address from the Host header a page used', () => {
    expect(relayAddressFor('localhost:8080', '127.0.0.1', 1, 'P')).toBe('/dns4/localhost/tcp/8080/ws/p2p/P');
    expect(relayAddressFor('192.168.1.5:9000', '127.0.0.1', 1, 'P')).toBe('/ip4/192.168.1.5/tcp/9000/ws/p2p/P');
    expect(relayAddressFor('[::1]:8080', '127.0.0.1', 1, 'P')).toBe('/ip6/::1/tcp/8080/ws/p2p/P');
    expect(relayAddressFor(undefined, '0.0.0.0', 8080, 'P')).toBe('/ip4/127.0.0.1/tcp/8080/ws/p2p/P');
  });
});
