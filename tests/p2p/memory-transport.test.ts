// The in-memory network of the simulation: seeded delivery is reproducible, partitions drop,
// heal restores, pubsub forwards hop by hop, and it is a FederationTransport like the others.
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, mulberry32 } from '../../src/p2p/memory-transport.js';
import { P2PError } from '../../src/p2p/errors.js';
import type { FederationTransport, PeerInfo } from '../../src/p2p/transport.js';

const names = ['a', 'b', 'c', 'd', 'e'].map((l) => l.repeat(64));
const [A, B, C, D, E] = names as [string, string, string, string, string];

/** Every server sends 10 numbered requests to every other; returns the order in which handlers saw them. */
async function runTraffic(seed: number): Promise<string[]> {
  const network = new MemoryNetwork({ seed, minDelayMs: 1, maxDelayMs: 20, reorderRate: 0.2, dropRate: 0.1, requestTimeoutMs: 100 });
  const transports = names.map((n) => network.transport(n));
  const seen: string[] = [];
  for (const t of transports) {
    t.handle(async (origin, request) => {
      seen.push(`${origin[0]}->${t.localServer[0]}:${request.path}`);
      return { status: 200, body: {} };
    });
  }
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) {
    for (const from of transports) {
      for (const to of names) if (to !== from.localServer) pending.push(from.request(to, { method: 'PUT', path: `/${i}` }).catch((e: P2PError) => e.code));
    }
  }
  await Promise.all(pending);
  await network.settle();
  return seen;
}

describe('MemoryNetwork', () => {
  it('mulberry32 is a fixed sequence per seed', () => {
    const r = mulberry32(42);
    const first = [r(), r(), r()];
    const again = mulberry32(42);
    expect([again(), again(), again()]).toEqual(first);
    expect(first.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(first[0]);
  });

  it('delivers in the same order for the same seed, and in another order for another seed', async () => {
    const one = await runTraffic(7);
    const two = await runTraffic(7);
    const other = await runTraffic(8);
    expect(one.length).toBeGreaterThan(100);
    expect(one.length).toBeLessThan(200); // 10% of requests were dropped
    expect(two).toEqual(one);
    expect(other).not.toEqual(one);
  });

  it('answers requests with the authenticated origin and copies bodies across the wire', async () => {
    const network = new MemoryNetwork();
    const a = network.transport(A);
    const b = network.transport(B);
    const body = { nested: { n: 1 } };
    b.handle(async (origin, request) => ({ status: 200, body: { origin, got: request.body } }));
    const response = await a.request(B, { method: 'POST', path: '/x', body });
    expect(response).toEqual({ status: 200, body: { origin: A, got: body } });
    expect((response.body as { got: unknown }).got).not.toBe(body);
    expect(a.peers()).toEqual([{ server: B, direct: true, via: 'memory' }]);
  });

  it('partitions drop traffic across the cut, heal restores it, with peer events', async () => {
    const network = new MemoryNetwork({ seed: 3, requestTimeoutMs: 50 });
    const t = names.map((n) => network.transport(n)) as FederationTransport[];
    for (const x of t) x.handle(async () => ({ status: 200, body: {} }));
    const events: string[] = [];
    t[0]!.events.addEventListener('peer:offline', (e) => events.push(`off ${(e as CustomEvent<PeerInfo>).detail.server[0]}`));
    t[0]!.events.addEventListener('peer:online', (e) => events.push(`on ${(e as CustomEvent<PeerInfo>).detail.server[0]}`));

    // A request already on its way when the cut happens is lost: it times out.
    const inFlight = t[0]!.request(C, { method: 'GET', path: '/in-flight' });
    network.partition([A, B], [C, D, E]);
    await expect(inFlight).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(t[0]!.request(C, { method: 'GET', path: '/x' })).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect((await t[0]!.request(B, { method: 'GET', path: '/x' })).status).toBe(200);
    expect((await t[2]!.request(E, { method: 'GET', path: '/x' })).status).toBe(200);
    expect(t[0]!.peers().map((p) => p.server)).toEqual([B]);
    expect(events.sort()).toEqual(['off c', 'off d', 'off e']);

    network.heal();
    expect((await t[0]!.request(C, { method: 'GET', path: '/x' })).status).toBe(200);
    expect(t[0]!.peers()).toHaveLength(4);
    expect(events.filter((e) => e.startsWith('on')).sort()).toEqual(['on c', 'on d', 'on e']);
  });

  it('forwards pubsub hop by hop over connected links only, once per message, naming the propagating peer', async () => {
    const network = new MemoryNetwork({ seed: 5, autoConnect: false });
    const t = [A, B, C].map((n) => network.transport(n));
    network.connect(A, B);
    network.connect(B, C);
    const got: Record<string, string[]> = { a: [], b: [], c: [] };
    for (const x of t) x.subscribe('room', (data, from) => got[x.localServer[0]!]!.push(`${new TextDecoder().decode(data)} via ${from[0]}`));
    await t[0]!.publish('room', new TextEncoder().encode('m1'));
    await network.settle();
    expect(got).toEqual({ a: [], b: ['m1 via a'], c: ['m1 via b'] });
    network.partition([A], [B, C]);
    await t[0]!.publish('room', new TextEncoder().encode('m2'));
    await network.settle();
    expect(got.c).toEqual(['m1 via b']);
    expect(network.stats.pubsubSent).toBeGreaterThanOrEqual(2);
  });

  it('a closed transport goes offline for its peers and may come back', async () => {
    const network = new MemoryNetwork();
    const a = network.transport(A);
    const b = network.transport(B);
    await b.close();
    expect(a.peers()).toEqual([]);
    await expect(b.request(A, { method: 'GET', path: '/' })).rejects.toMatchObject({ code: 'CLOSED' });
    const again = network.transport(B);
    expect(again.peers()).toEqual([{ server: A, direct: true, via: 'memory' }]);
  });
});
