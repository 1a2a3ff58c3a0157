// The peer book over real libp2p on loopback: records addresses and last-seen in the injected
// key-value store, dials by name from stored addresses after a restart, reconnects to a relay
// that comes back (backoff), and reports online/offline without listing the relay as a peer.
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import { memoryKeyValueStore, type KeyValueStore } from '../../src/p2p/peer-book.js';
import type { PeerInfo } from '../../src/p2p/transport.js';
import { randomSeed, sleep, waitFor } from './helpers.js';

const open: { close?: () => Promise<void>; stop?: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await (x.close ?? x.stop)!.call(x).catch(() => {});
});

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

function recordingStore(): KeyValueStore & { keys(): string[] } {
  const inner = memoryKeyValueStore();
  const keys = new Set<string>();
  return {
    get: (k) => inner.get(k),
    async put(k, v) {
      keys.add(k);
      await inner.put(k, v);
    },
    keys: () => [...keys],
  };
}

describe('peer book', () => {
  it('records addresses and last-seen, and dials from them after a restart', async () => {
    const storeA = recordingStore();
    const bSeed = randomSeed();
    const bPort = await freePort();
    let b: Libp2pFederationTransport = await createNodeTransport({ seed: bSeed, listen: [`/ip4/127.0.0.1/tcp/${bPort}/ws`] });
    open.push(b);
    b.handle(async (origin) => ({ status: 200, body: { origin } }));
    const a = await createNodeTransport({ seed: randomSeed(), store: storeA });
    open.push(a);
    const events: string[] = [];
    for (const name of ['peer:online', 'peer:offline']) a.events.addEventListener(name, (e) => events.push(`${name} ${(e as CustomEvent<PeerInfo>).detail.via}`));
    await a.peerBook.learn(b.localServer, b.node.getMultiaddrs().map(String));
    const before = Date.now();
    await a.request(b.localServer, { method: 'GET', path: '/' });
    const record = await waitFor(async () => {
      const r = await a.peerBook.record(b.localServer);
      return r && r.lastSeen >= before ? r : undefined;
    }, 5_000, 'last-seen');
    expect(record.addresses.some((x) => x.includes(`/tcp/${bPort}/ws`))).toBe(true);
    expect(storeA.keys()).toEqual([`p2p/peer/${b.localServer}`]);
    await waitFor(() => events.includes('peer:online websocket'), 5_000, 'online event');

    await b.close();
    await waitFor(() => events.includes('peer:offline websocket'), 5_000, 'offline event');
    expect(a.peers()).toEqual([]);

    // Same key, same port: a finds it again by name from what it stored.
    b = await createNodeTransport({ seed: bSeed, listen: [`/ip4/127.0.0.1/tcp/${bPort}/ws`] });
    open.push(b);
    b.handle(async (origin) => ({ status: 200, body: { origin } }));
    expect(await a.request(b.localServer, { method: 'GET', path: '/' })).toEqual({ status: 200, body: { origin: a.localServer } });
  });

  it('reconnects to a relay that restarts, and never lists the relay as a peer', async () => {
    const relaySeed = randomSeed();
    const port = await freePort();
    const listen = [`/ip4/127.0.0.1/tcp/${port}/ws`];
    let relay: Relay = await createRelay({ seed: relaySeed, listen });
    const address = relay.addresses()[0]!;
    const a = await createNodeTransport({ seed: randomSeed(), relays: [address], listen: [] });
    open.push(a);
    await waitFor(() => a.peerBook.connectedRelays().length === 1, 10_000, 'relay connection');
    expect(a.peers()).toEqual([]);
    await relay.stop();
    await waitFor(() => a.peerBook.connectedRelays().length === 0, 10_000, 'relay gone');
    // Down long enough for redials to fail and back off.
    await sleep(1_500);
    relay = await createRelay({ seed: relaySeed, listen });
    open.push(relay);
    await waitFor(() => a.peerBook.connectedRelays().length === 1, 20_000, 'relay reconnection');
    // Reachable through it again: a reservation shows in a's addresses.
    await waitFor(() => a.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 15_000, 'new reservation');
    expect(a.peers()).toEqual([]);
  }, 60_000);

  it('fails with UNREACHABLE for a server it cannot reach, and BAD_IDENTITY for a bad name', async () => {
    const a = await createNodeTransport({ seed: randomSeed(), dialTimeoutMs: 1_000 });
    open.push(a);
    await expect(a.request('ab'.repeat(32), { method: 'GET', path: '/' })).rejects.toMatchObject({ code: 'UNREACHABLE' });
    await expect(a.request('example.org', { method: 'GET', path: '/' })).rejects.toMatchObject({ code: 'BAD_IDENTITY' });
  });
});
