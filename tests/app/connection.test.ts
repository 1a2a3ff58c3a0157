// The UI's connection object (src/app/connection.ts) over real homeservers and replicators on the memory
// network: a message written while the other server is cut off is pending for it, per event ID, and stops
// being pending once the outbox delivered it; the details list the peer, its link and its queue.
import { afterEach, describe, expect, it } from 'vitest';
import { createConnectionSource, type LiveConnectionSource } from '../../src/app/connection.js';
import { enc, withUsers } from '../homeserver/rooms/helpers.js';
import { createRealSim, type RealSim } from '../p2p/simulation/real-harness.js';

let sim: RealSim | undefined;
let source: LiveConnectionSource | undefined;
afterEach(async () => {
  source?.close();
  await sim?.close();
  sim = source = undefined;
});

describe('the connection source', () => {
  it('reports each own event as pending for an unreachable server until it is delivered', async () => {
    sim = await createRealSim({ seed: 11, servers: 2, network: { minDelayMs: 1, maxDelayMs: 5 } });
    const [a, b] = sim.peers as [NonNullable<RealSim['peers'][0]>, NonNullable<RealSim['peers'][0]>];
    const [alice] = await withUsers(a.server, 'alice');
    const [bob] = await withUsers(b.server, 'bob');
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'Queue' });
    expect((await bob!.call('POST', `/join/${enc(roomId)}?server_name=${a.name}`, {})).status).toBe(200);
    await sim.quiesce();

    source = createConnectionSource({ storage: a.server.storage, transport: a.transport, replicator: a.replicator });
    let deliveries = 0;
    source.events.addEventListener('delivery', () => deliveries++);
    await source.settled();
    expect(source.details().relay).toBe('none');
    expect(source.details().peers.map((p) => [p.server, p.online, p.link])).toEqual([[b.name, true, 'direct']]);

    sim.network.partition([a.name], [b.name]);
    const queued: string[] = [];
    for (let i = 0; i < 3; i++) queued.push(await alice!.send(roomId, { msgtype: 'm.text', body: `offline ${i}` }));
    await sim.runFor(2_000);
    await source.settled();
    for (const id of queued) expect(source.pendingDestinations(id)).toEqual([b.name]);
    expect(deliveries).toBeGreaterThan(0);
    const peer = source.details().peers.find((p) => p.server === b.name)!;
    expect(peer.queued).toBeGreaterThanOrEqual(1);
    expect(peer.failures).toBeGreaterThan(0);

    sim.network.heal();
    await sim.quiesce();
    await source.settled();
    for (const id of queued) expect(source.pendingDestinations(id)).toEqual([]);
    expect(source.details().peers.find((p) => p.server === b.name)!.queued).toBe(0);
    // An event never queued (bob's, received here) is pending nowhere.
    const fromBob = await bob!.send(roomId, { msgtype: 'm.text', body: 'hi' });
    await sim.quiesce();
    await source.settled();
    expect(source.pendingDestinations(fromBob)).toEqual([]);
  }, 60_000);
});
