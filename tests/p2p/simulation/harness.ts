/**
 * The multi-peer simulation's world: N fake homeservers (tests/p2p/support/
 * fake-homeserver.ts, each on its own memory storage whose outbox the
 * replicator drains), each with a transport on one seeded MemoryNetwork and a
 * replicator running on the network's virtual clock, so a whole run takes no
 * real time waiting and one seed replays one run.
 */
import { mulberry32, MemoryNetwork, type MemoryNetworkInit } from '../../../src/p2p/memory-transport.js';
import type { ReplicatorClock } from '../../../src/p2p/replication-port.js';
import { createReplicator, type Replicator, type ReplicatorOptions } from '../../../src/p2p/replicator.js';
import type { FederationTransport } from '../../../src/p2p/transport.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { createFakeHomeserver, type FakeHomeserver } from '../support/fake-homeserver.js';

export interface SimPeer {
  name: string;
  storage: Storage;
  transport: FederationTransport;
  homeserver: FakeHomeserver;
  replicator: Replicator;
}

export function virtualClock(network: MemoryNetwork, seed: number): ReplicatorClock {
  return {
    now: () => network.now,
    setTimer(fn, ms) {
      let live = true;
      network.schedule(ms, () => {
        if (live) fn();
      });
      return () => {
        live = false;
      };
    },
    random: mulberry32(seed),
  };
}

export interface SimInit {
  seed: number;
  servers: number;
  network?: MemoryNetworkInit;
  replicator?: ReplicatorOptions;
  /** Called whenever a server stores an event (the benchmark's delivery clock). */
  onStored?: (server: string, eventId: string, now: number) => void;
}

export interface Sim {
  network: MemoryNetwork;
  peers: SimPeer[];
  random: () => number;
  /** Lets `ms` of virtual time pass (deliveries and timers run meanwhile). */
  runFor(ms: number): Promise<void>;
  /** Waits until nothing is queued on the network and every replicator is idle. */
  quiesce(): Promise<void>;
  /** Anti-entropy between every connected pair until no server learns anything more (what the periodic timer does). */
  antiEntropy(maxRounds?: number): Promise<number>;
  close(): Promise<void>;
}

export async function createSim(init: SimInit): Promise<Sim> {
  const network = new MemoryNetwork({ seed: init.seed, ...init.network });
  const random = mulberry32(init.seed ^ 0x5eed);
  const peers: SimPeer[] = [];
  for (let i = 0; i < init.servers; i++) {
    const name = `s${i}`;
    const storage = createMemoryStorage();
    const transport = network.transport(name);
    const homeserver = createFakeHomeserver({ serverName: name, storage, now: () => network.now, onStored: (e) => init.onStored?.(name, e.event_id, network.now) });
    const replicator = createReplicator({
      storage,
      transport,
      homeserver,
      clock: virtualClock(network, init.seed * 7919 + i),
      ...init.replicator,
      // The periodic timer would keep the virtual queue busy forever; the simulation runs rounds explicitly (antiEntropy()).
      catchUp: { antiEntropyIntervalMs: 0, ...init.replicator?.catchUp },
    });
    await replicator.start();
    peers.push({ name, storage, transport, homeserver, replicator });
  }
  const runFor = (ms: number) => new Promise<void>((resolve) => network.schedule(ms, resolve));
  async function quiesce(): Promise<void> {
    const allIdle = () => peers.every((p) => p.replicator.idle());
    for (let i = 0; i < 1_000; i++) {
      // Idle is read right after settle() resolves, so "nothing queued" and "nothing running" hold at one moment.
      await network.settle();
      if (allIdle()) {
        await new Promise((r) => setImmediate(r));
        await network.settle();
        if (allIdle()) return;
      }
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('the simulation never went quiet');
  }
  const total = () => peers.reduce((n, p) => n + p.homeserver.roomIds().reduce((m, r) => m + p.homeserver.eventIds(r).size, 0), 0);
  return {
    network,
    peers,
    random,
    runFor,
    quiesce,
    async antiEntropy(maxRounds = 10) {
      let rounds = 0;
      for (; rounds < maxRounds; rounds++) {
        const before = total();
        for (const p of peers) for (const q of peers) if (p !== q && network.up(p.name, q.name)) await p.replicator.exchange(q.name);
        await quiesce();
        if (total() === before) break;
      }
      return rounds;
    },
    async close() {
      for (const p of peers) {
        p.replicator.stop();
        await p.transport.close();
      }
    },
  };
}
