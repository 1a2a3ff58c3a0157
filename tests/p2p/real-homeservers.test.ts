// The replicator with the REAL homeserver (r7/federation's handleFederation and ReplicationPort) on the memory
// network: invite across servers and join through the inviter's server over the transport, chat, a fork while one
// server is cut off (it writes too), heal, and every server ends with the same events, extremities and state.
import { afterEach, describe, expect, it } from 'vitest';
import { enc, withUsers } from '../homeserver/rooms/helpers.js';
import { createRealSim, type RealSim } from './simulation/real-harness.js';

let sim: RealSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('replicator with real homeservers', () => {
  it('invite, join over the transport, chat, fork under a partition, merge after healing', async () => {
    sim = await createRealSim({ seed: 7, servers: 3, network: { minDelayMs: 1, maxDelayMs: 20 } });
    const [a, b, c] = sim.peers as [any, any, any];
    const [alice] = await withUsers(a.server, 'alice');
    const [bob] = await withUsers(b.server, 'bob');
    const [carol] = await withUsers(c.server, 'carol');
    const roomId = await alice!.createRoom({ preset: 'public_chat', name: 'P2P' });
    expect((await alice!.call('POST', `/rooms/${enc(roomId)}/invite`, { user_id: bob!.userId })).status).toBe(200);
    const joined = await bob!.call('POST', `/join/${enc(roomId)}`, {});
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    // carol joins by room ID through bob's server, not the creator's.
    const viaBob = await carol!.call('POST', `/join/${enc(roomId)}?server_name=${b.name}`, {});
    expect(viaBob.status, JSON.stringify(viaBob.json)).toBe(200);
    await sim.quiesce();

    const hello = await alice!.send(roomId, { msgtype: 'm.text', body: 'hello' });
    await sim.quiesce();
    for (const p of sim.peers) expect(await sim.eventIds(p, roomId)).toContain(hello);

    // carol is cut off and writes; alice and bob write too: a fork.
    sim.network.partition([a.name, b.name], [c.name]);
    const onAB = [await alice!.send(roomId, { msgtype: 'm.text', body: 'ab 1' }), await bob!.send(roomId, { msgtype: 'm.text', body: 'ab 2' })];
    const onC = [await carol!.send(roomId, { msgtype: 'm.text', body: 'c alone' })];
    await alice!.call('PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: 'while split' });
    await sim.runFor(5_000);
    sim.network.heal();
    await sim.quiesce();
    await sim.antiEntropy();

    const reference = await sim.eventIds(a, roomId);
    for (const id of [...onAB, ...onC]) expect(reference).toContain(id);
    for (const p of sim.peers) {
      expect(await sim.eventIds(p, roomId)).toEqual(reference);
      expect(await sim.state(p, roomId)).toEqual(await sim.state(a, roomId));
    }
    // The next event merges the branches: one extremity everywhere afterwards.
    const merge = await carol!.send(roomId, { msgtype: 'm.text', body: 'merged' });
    await sim.quiesce();
    for (const p of sim.peers) expect(await p.server.storage.read((t: any) => t.dag.extremities(roomId))).toEqual([merge]);
  }, 60_000);
});
