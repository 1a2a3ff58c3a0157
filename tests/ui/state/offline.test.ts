// The offline features' state classes over the app's real connection object (src/app/connection.ts) and
// two real homeservers replicating on the memory network, each with a matrix-js-sdk client: a message
// written while the other server is cut off is queued (DeliveryState), the panel says offline and lists
// the peer with its queue (ConnectionPanelState); after healing the marker goes. HistoryGraphState reads
// the room's fork and merge through the unstable /dag endpoint and lays it out in two lanes.
import { describe, expect, it } from 'vitest';
import type { MatrixClient } from 'matrix-js-sdk';
import { createConnectionSource, type LiveConnectionSource } from '../../../src/app/connection.js';
import { ConnectionPanelState } from '../../../src/ui/state/connection-panel.svelte.js';
import { DeliveryState } from '../../../src/ui/state/delivery.svelte.js';
import { HistoryGraphState, parseDagAnswer } from '../../../src/ui/state/history-graph.svelte.js';
import type { RealSim } from '../../p2p/simulation/real-harness.js';
import { eventually, simPerTest, startClientFor } from './support.js';

const world = simPerTest();
const disposers = world.disposers;

async function twoServersInARoom() {
  const sim = await world.start({ seed: 21, servers: 2, network: { minDelayMs: 1, maxDelayMs: 5 } });
  const [a, b] = sim.peers as [NonNullable<RealSim['peers'][0]>, NonNullable<RealSim['peers'][0]>];
  const alice = await startClientFor(a.server, await a.server.register('alice'));
  const bob = await startClientFor(b.server, await b.server.register('bob'));
  disposers.push(() => alice.stopClient(), () => bob.stopClient());
  const { room_id: roomId } = await alice.createRoom({ preset: 'public_chat' as never, name: 'Offline' });
  await bob.joinRoom(roomId, { viaServers: [a.name] });
  await sim.quiesce();
  await eventually('alice sees bob joined', () => alice.getRoom(roomId)?.getJoinedMemberCount() === 2);
  return { a, b, alice, bob, roomId };
}

async function send(client: MatrixClient, roomId: string, body: string): Promise<string> {
  return (await client.sendTextMessage(roomId, body)).event_id;
}

describe('offline state', () => {
  it('a message written while cut off is queued until the other server takes it; the panel says offline', async () => {
    const { a, b, alice, roomId } = await twoServersInARoom();
    const source: LiveConnectionSource = createConnectionSource({ storage: a.server.storage, transport: a.transport, replicator: a.replicator });
    disposers.push(() => source.close());
    const delivery = new DeliveryState(source, alice, roomId);
    const panel = new ConnectionPanelState(source, 0);
    disposers.push(() => delivery.dispose(), () => panel.dispose());
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(panel.offline).toBe(false);
    expect(panel.available).toBe(true);
    expect(panel.details.peers.map((p) => [p.server, p.online])).toEqual([[b.name, true]]);

    world.sim.network.partition([a.name], [b.name]);
    expect(panel.offline).toBe(true);
    const ids = [await send(alice, roomId, 'one'), await send(alice, roomId, 'two')];
    await world.sim.runFor(1_000);
    await source.settled();
    for (const id of ids) expect(delivery.queued(id)).toBe(true);
    expect(panel.queuedTotal).toBeGreaterThanOrEqual(1);
    expect(panel.details.peers[0]).toMatchObject({ server: b.name, online: false, link: 'none' });

    world.sim.network.heal();
    await world.sim.quiesce();
    await source.settled();
    expect(panel.offline).toBe(false);
    for (const id of ids) expect(delivery.queued(id)).toBe(false);
    expect(panel.queuedTotal).toBe(0);
  }, 60_000);

  it('the history graph shows a fork between the servers and its merge', async () => {
    const { a, b, alice, bob, roomId } = await twoServersInARoom();
    world.sim.network.partition([a.name], [b.name]);
    await send(alice, roomId, 'alice alone');
    await send(bob, roomId, 'bob alone');
    await world.sim.runFor(1_000);
    world.sim.network.heal();
    await world.sim.quiesce();
    await world.sim.antiEntropy();
    await eventually('alice has bob’s message', () => alice.getRoom(roomId)!.getLiveTimeline().getEvents().some((e) => e.getContent().body === 'bob alone'));
    await send(alice, roomId, 'merged');

    const graph = new HistoryGraphState(alice, roomId, 50);
    disposers.push(() => graph.dispose());
    await graph.load();
    expect(graph.error).toBe('');
    const layout = graph.layout!;
    expect(layout.servers.sort()).toEqual([a.name, b.name].sort());
    expect(layout.forks).toBe(1);
    expect(layout.merges).toBe(1);
    expect(layout.lanes).toBe(2);
    expect(HistoryGraphState.shortName(a.name)).toBe(`${a.name.slice(0, 8)}…`);
  }, 60_000);

  it('keeps only well-formed nodes of the graph answer', () => {
    expect(() => parseDagAnswer({})).toThrow();
    const parsed = parseDagAnswer({
      events: [
        { event_id: '$ok', prev_events: ['$p'], sender: '@a:x', origin: 'x', type: 'm.room.message' },
        { event_id: 5, prev_events: [], sender: '@a:x', origin: 'x', type: 't' },
        { event_id: '$bad', prev_events: [1], sender: '@a:x', origin: 'x', type: 't' },
        null,
        { event_id: '$noorigin', prev_events: [], sender: '@a:x', type: 't' },
      ],
    });
    expect(parsed.map((e) => e.eventId)).toEqual(['$ok']);
  });
});
