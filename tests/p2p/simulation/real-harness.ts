/**
 * The simulation's world with the REAL homeserver (createHomeserver on memory
 * storage, hex-named test signers so the key is in the server name), each
 * with a MemoryNetwork transport and a replicator on the network's virtual
 * clock. Ed25519 runs on @noble (synchronous): WebCrypto answers on Node's
 * thread pool, i.e. in real time, and a handler that waits in real time lets
 * the virtual queue race ahead to its request's timeout.
 */
import { setEd25519Backend } from '../../../src/core/index.js';
import { MemoryNetwork, type MemoryNetworkInit } from '../../../src/p2p/memory-transport.js';
import { createReplicator, type Replicator, type ReplicatorOptions } from '../../../src/p2p/replicator.js';
import type { FederationTransport } from '../../../src/p2p/transport.js';
import { startTestServer, type TestServer } from '../../homeserver/harness.js';
import { hexSigner, quietLogger } from '../../support/federation.js';
import { virtualClock } from './harness.js';

export interface RealPeer {
  name: string;
  server: TestServer;
  transport: FederationTransport;
  replicator: Replicator;
}

export interface RealSim {
  network: MemoryNetwork;
  peers: RealPeer[];
  runFor(ms: number): Promise<void>;
  quiesce(): Promise<void>;
  antiEntropy(maxRounds?: number): Promise<number>;
  /** Every event ID of the room's DAG on this server (walked back from its extremities), sorted. */
  eventIds(peer: RealPeer, roomId: string): Promise<string[]>;
  /** The room's current state as sorted [key, eventId] pairs. */
  state(peer: RealPeer, roomId: string): Promise<string>;
  close(): Promise<void>;
}

export async function createRealSim(init: { seed: number; servers: number; network?: MemoryNetworkInit; replicator?: ReplicatorOptions; firstSignerSeed?: number }): Promise<RealSim> {
  setEd25519Backend('noble');
  const network = new MemoryNetwork({ seed: init.seed, requestTimeoutMs: 60_000, ...init.network });
  const peers: RealPeer[] = [];
  for (let i = 0; i < init.servers; i++) {
    const server = await startTestServer({ signer: await hexSigner((init.firstSignerSeed ?? 41) + i), log: quietLogger });
    const transport = network.transport(server.serverName);
    const replicator = createReplicator({
      storage: server.storage,
      transport,
      homeserver: server.homeserver,
      clock: virtualClock(network, init.seed * 31 + i),
      ...init.replicator,
      catchUp: { antiEntropyIntervalMs: 0, ...init.replicator?.catchUp },
    });
    await replicator.start();
    peers.push({ name: server.serverName, server, transport, replicator });
  }
  const runFor = (ms: number) => new Promise<void>((resolve) => network.schedule(ms, resolve));
  const allIdle = () => peers.every((p) => p.replicator.idle());
  async function quiesce(): Promise<void> {
    for (let i = 0; i < 2_000; i++) {
      await network.settle();
      if (allIdle()) {
        await new Promise((r) => setTimeout(r, 5));
        await network.settle();
        if (allIdle()) return;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error('the simulation never went quiet');
  }
  async function eventIds(peer: RealPeer, roomId: string): Promise<string[]> {
    return peer.server.storage.read(async (t) => {
      const seen = new Set<string>();
      const queue = await t.dag.extremities(roomId);
      while (queue.length > 0) {
        const id = queue.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        queue.push(...((await t.dag.prevEvents(id)) ?? []));
      }
      return [...seen].sort();
    });
  }
  async function total(): Promise<number> {
    let n = 0;
    for (const p of peers) {
      const rooms = await p.server.homeserver.replication.rooms();
      for (const r of rooms) n += (await eventIds(p, r.roomId)).length;
    }
    return n;
  }
  return {
    network,
    peers,
    runFor,
    quiesce,
    eventIds,
    async state(peer, roomId) {
      return peer.server.storage.read(async (t) => JSON.stringify([...(await t.currentState.load(roomId))].sort()));
    },
    async antiEntropy(maxRounds = 10) {
      let rounds = 0;
      for (; rounds < maxRounds; rounds++) {
        const before = await total();
        for (const p of peers) for (const q of peers) if (p !== q && network.up(p.name, q.name)) await p.replicator.exchange(q.name);
        await quiesce();
        if ((await total()) === before) break;
      }
      return rounds;
    },
    async close() {
      for (const p of peers) {
        p.replicator.stop();
        await p.transport.close();
      }
      await quiesce().catch(() => {});
      for (const p of peers) await p.server.close();
      setEd25519Backend('auto');
    },
  };
}
