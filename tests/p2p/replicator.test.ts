// The replicator against the fake homeserver port on the memory network: push through the outbox, retry across a
// partition, catch-up of parked events, anti-entropy from a peer that is not the author, gossip mode, transactions.
import { afterEach, describe, expect, it } from 'vitest';
import { createSim, type Sim } from './simulation/harness.js';

let sim: Sim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function roomOfThree(s: Sim): Promise<string> {
  const [a, b, c] = s.peers.map((p) => p.homeserver);
  const roomId = await a!.createRoom();
  expect(await b!.join(roomId, 's0')).toBe(true);
  expect(await c!.join(roomId, 's1')).toBe(true);
  await s.quiesce();
  return roomId;
}

describe('replicator', () => {
  it('pushes new events to every server of a small room through the outbox, in transactions', async () => {
    sim = await createSim({ seed: 1, servers: 3 });
    const roomId = await roomOfThree(sim);
    const sent = await sim.peers[0]!.homeserver.send(roomId, 'm.room.message', { body: 'hi' });
    await sim.quiesce();
    for (const p of sim.peers) expect(p.homeserver.hasEvent(sent.event_id)).toBe(true);
    const queued = await sim.peers[0]!.storage.read((txn) => txn.outbound.destinations());
    expect(queued).toEqual([]);
  });

  it('keeps queued events across a partition and delivers them after it heals', async () => {
    sim = await createSim({ seed: 2, servers: 3 });
    const roomId = await roomOfThree(sim);
    sim.network.partition(['s0', 's1'], ['s2']);
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await sim.peers[0]!.homeserver.send(roomId, 'm.room.message', { body: `m${i}` }));
    await sim.runFor(30_000);
    expect(sim.peers[2]!.homeserver.hasEvent(sent[4]!.event_id)).toBe(false);
    const state = sim.peers[0]!.replicator.outboxState().find((d) => d.destination === 's2');
    expect(state?.failures).toBeGreaterThan(0);
    sim.network.heal();
    await sim.quiesce();
    for (const e of sent) expect(sim.peers[2]!.homeserver.hasEvent(e.event_id)).toBe(true);
  });

  it('fetches the missing parents of a parked event with get_missing_events', async () => {
    sim = await createSim({ seed: 3, servers: 3 });
    const roomId = await roomOfThree(sim);
    const [a, , c] = sim.peers;
    // c misses three events (its outbox entries at a are dropped), then gets the fourth: it must pull the gap.
    sim.network.partition(['s0', 's1'], ['s2']);
    for (let i = 0; i < 3; i++) await a!.homeserver.send(roomId, 'm.room.message', { body: `gap${i}` });
    await sim.runFor(10);
    await a!.storage.write((txn) => txn.outbound.ack('s2', Number.MAX_SAFE_INTEGER));
    sim.network.heal();
    const progress: string[] = [];
    c!.replicator.events.addEventListener('catchup:progress', (e) => progress.push((e as CustomEvent).detail.state));
    const last = await a!.homeserver.send(roomId, 'm.room.message', { body: 'after' });
    await sim.quiesce();
    expect(c!.homeserver.hasEvent(last.event_id)).toBe(true);
    expect([...c!.homeserver.eventIds(roomId)].sort()).toEqual([...a!.homeserver.eventIds(roomId)].sort());
    expect(progress).toContain('done');
  });

  it('anti-entropy: a returning server catches up from an online peer while the author is away', async () => {
    sim = await createSim({ seed: 4, servers: 3 });
    const roomId = await roomOfThree(sim);
    const [a, b, c] = sim.peers;
    sim.network.partition(['s0', 's1'], ['s2']);
    const sent = [];
    for (let i = 0; i < 4; i++) sent.push(await a!.homeserver.send(roomId, 'm.room.message', { body: `m${i}` }));
    await sim.runFor(100);
    // The author goes away before the partition heals; its outbox for c is not drained.
    await a!.transport.close();
    a!.replicator.stop();
    sim.network.heal();
    await sim.quiesce();
    for (const e of sent) expect(c!.homeserver.hasEvent(e.event_id)).toBe(true);
    expect(b!.homeserver.hasEvent(sent[3]!.event_id)).toBe(true);
  });

  it('rooms with more servers than directFanoutMax go by gossip: one publish per event, acked in the outbox', async () => {
    sim = await createSim({ seed: 5, servers: 5, replicator: { directFanoutMax: 2 } });
    const hs = sim.peers.map((p) => p.homeserver);
    const roomId = await hs[0]!.createRoom();
    for (let i = 1; i < 5; i++) expect(await hs[i]!.join(roomId, 's0')).toBe(true);
    await sim.quiesce();
    for (const p of sim.peers) await p.replicator.refreshRooms();
    const before = { ...sim.network.stats };
    const sent = await hs[3]!.send(roomId, 'm.room.message', { body: 'gossip' });
    await sim.quiesce();
    for (const h of hs) expect(h.hasEvent(sent.event_id)).toBe(true);
    expect(sim.network.stats.pubsubSent - before.pubsubSent).toBeGreaterThan(0);
    expect(await sim.peers[3]!.storage.read((txn) => txn.outbound.destinations())).toEqual([]);
  });

  it('refuses a tampered event whoever relays it', async () => {
    sim = await createSim({ seed: 6, servers: 2 });
    const [a, b] = sim.peers;
    const roomId = await a!.homeserver.createRoom();
    expect(await b!.homeserver.join(roomId, 's0')).toBe(true);
    await sim.quiesce();
    const good = await a!.homeserver.send(roomId, 'm.room.message', { body: 'x' });
    await sim.quiesce();
    const forged = { ...good, content: { body: 'forged' } };
    const response = await a!.transport.request('s1', { method: 'PUT', path: '/_matrix/federation/v1/send/forge', body: { origin: 's0', origin_server_ts: 0, pdus: [forged], edus: [] } });
    expect(response.status).toBe(200);
    expect(b!.homeserver.outcomes.get('invalid')).toBe(1);
  });
});
