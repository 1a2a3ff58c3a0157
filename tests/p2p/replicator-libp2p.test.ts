// The replicator over REAL libp2p (Node transports, WebSockets on loopback, through a circuit relay), with the fake
// homeserver port standing in for the federation half (r7/federation has no handleFederation yet): join through
// another server, messages both ways, one server stops while the others chat, the author goes away too, the stopped
// server restarts on its old storage and seed and catches up from the peer that is not the author.
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import { createReplicator, type Replicator } from '../../src/p2p/replicator.js';
import { createMemoryStorage } from '../../src/storage/memory/index.js';
import type { Storage } from '../../src/storage/types.js';
import { randomSeed, waitFor } from './helpers.js';
import { createFakeHomeserver, type FakeEvent, type FakeHomeserver } from './support/fake-homeserver.js';

interface Server {
  seed: Uint8Array;
  storage: Storage;
  homeserver: FakeHomeserver;
  transport: Libp2pFederationTransport;
  replicator: Replicator;
}

const opened: Server[] = [];
let relay: Relay | undefined;

async function online(seed: Uint8Array, relays: string[], storage: Storage, homeserver?: FakeHomeserver): Promise<Server> {
  const transport = await createNodeTransport({ seed, relays, protocol: { requestTimeoutMs: 5_000 } });
  homeserver ??= createFakeHomeserver({ serverName: transport.localServer, storage });
  const replicator = createReplicator({ storage, transport, homeserver, outbox: { backoffBaseMs: 200, backoffMaxMs: 2_000 }, catchUp: { antiEntropyIntervalMs: 2_000 } });
  await replicator.start();
  await waitFor(() => transport.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 15_000, 'relay reservation');
  const server = { seed, storage, homeserver, transport, replicator };
  opened.push(server);
  return server;
}

async function offline(server: Server): Promise<void> {
  server.replicator.stop();
  await server.transport.close();
}

afterAll(async () => {
  for (const s of opened) await offline(s).catch(() => {});
  await relay?.stop();
});

describe('replicator over libp2p WebSockets through a relay', () => {
  it('replicates, survives a server going away, and a restarted server catches up from a non-author', async () => {
    relay = await createRelay();
    const relays = relay.addresses();
    const a = await online(randomSeed(), relays, createMemoryStorage());
    const b = await online(randomSeed(), relays, createMemoryStorage());
    let c = await online(randomSeed(), relays, createMemoryStorage());

    const roomId = await a.homeserver.createRoom();
    expect(await b.homeserver.join(roomId, a.transport.localServer)).toBe(true);
    expect(await c.homeserver.join(roomId, b.transport.localServer)).toBe(true);
    await waitFor(() => a.homeserver.servers(roomId).length === 3 && b.homeserver.servers(roomId).length === 3, 15_000, 'joins fanned out');

    const hello = await a.homeserver.send(roomId, 'm.room.message', { body: 'hello from a' });
    const reply = await c.homeserver.send(roomId, 'm.room.message', { body: 'hello from c' });
    for (const s of [a, b, c]) await waitFor(() => s.homeserver.hasEvent(hello.event_id) && s.homeserver.hasEvent(reply.event_id), 15_000, 'both messages everywhere');

    // c goes away; a and b keep chatting.
    await offline(c);
    const missed: FakeEvent[] = [];
    for (let i = 0; i < 3; i++) missed.push(await a.homeserver.send(roomId, 'm.room.message', { body: `while c is away ${i}` }));
    missed.push(await b.homeserver.send(roomId, 'm.room.message', { body: 'b too' }));
    await waitFor(() => missed.every((e) => b.homeserver.hasEvent(e.event_id) && a.homeserver.hasEvent(e.event_id)), 15_000, 'a and b in step');
    // The author goes away before c returns: c must catch up from b.
    await offline(a);
    // b's outbox to c is emptied as if b had already delivered (so only anti-entropy can bring a's events).
    await b.storage.write((txn) => txn.outbound.ack(c.transport.localServer, Number.MAX_SAFE_INTEGER));

    const cName = c.transport.localServer;
    c = await online(c.seed, relays, c.storage, c.homeserver);
    expect(c.transport.localServer).toBe(cName);
    const fromWhom = new Set<string>();
    c.replicator.events.addEventListener('catchup:progress', (e) => fromWhom.add((e as CustomEvent).detail.peer));
    await waitFor(() => missed.every((e) => c.homeserver.hasEvent(e.event_id)), 30_000, 'c caught up');
    expect([...c.homeserver.eventIds(roomId)].sort()).toEqual([...b.homeserver.eventIds(roomId)].sort());
    expect(fromWhom.has(b.transport.localServer)).toBe(true);
    expect(fromWhom.has(a.transport.localServer)).toBe(false);
  }, 120_000);
});
