/**
 * The simulation's world with the REAL homeserver (createHomeserver on memory
 * storage, hex-named test signers so the key is in the server name), each
 * with a MemoryNetwork transport and a replicator on the network's virtual
 * clock, which stands still while a handler runs (holdTimeForHandlersMs).
 * Ed25519 runs on @noble (synchronous): WebCrypto answers on Node's
 * thread pool, i.e. in real time, and a handler that waits in real time lets
 * the virtual queue race ahead to its request's timeout.
 */
import { setEd25519Backend } from '../../../src/core/index.js';
import type { Logger } from '../../../src/homeserver/context.js';
import { MemoryNetwork, type MemoryNetworkInit } from '../../../src/p2p/memory-transport.js';
import { createReplicator, type Replicator, type ReplicatorOptions } from '../../../src/p2p/replicator.js';
import type { FederationTransport } from '../../../src/p2p/transport.js';
import type { Storage } from '../../../src/storage/types.js';
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
  /**
   * What differs between `peers` for the room: current state, and events.
   * Forward extremities are not compared: a soft-failed event is stored but is
   * not a tip, and soft-fail is judged against each receiver's current state. A server that joined (or rejoined) later legitimately
   * lacks the history before its join (send_join brings state; backfill brings
   * only the history a client pages back to), so an event may be missing on a server only if
   * it is an ancestor of one of that server's gap boundaries (events it holds
   * whose parents it does not). Every other event any of them holds, all must.
   */
  compare(peers: RealPeer[], roomId: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function createRealSim(init: {
  seed: number;
  servers: number;
  network?: MemoryNetworkInit;
  replicator?: ReplicatorOptions;
  firstSignerSeed?: number;
  /** Server i's storage (closed by the caller); memory storage by default. */
  storage?: (i: number) => Promise<Storage>;
}): Promise<RealSim> {
  setEd25519Backend('noble');
  const network = new MemoryNetwork({ seed: init.seed, requestTimeoutMs: 60_000, holdTimeForHandlersMs: 2_000, ...init.network });
  const peers: RealPeer[] = [];
  for (let i = 0; i < init.servers; i++) {
    const server = await startTestServer({ ...(init.storage ? { storage: await init.storage(i) } : {}), signer: await hexSigner((init.firstSignerSeed ?? 41) + i), log: process.env.SIM_DEBUG ? homeserverLog(i) : quietLogger });
    const transport = network.transport(server.serverName);
    const replicator = createReplicator({
      storage: server.storage,
      transport,
      homeserver: server.homeserver,
      clock: virtualClock(network, init.seed * 31 + i),
      ...(process.env.SIM_DEBUG ? { log: { debug: (m: string, d?: unknown) => console.log(`[${i}] ${m}`, d instanceof Error ? d.message : (d ?? '')), warn: (m: string, d?: unknown) => console.log(`[${i}] WARN ${m}`, d instanceof Error ? d.message : (d ?? '')) } } : {}),
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
  async function state(peer: RealPeer, roomId: string): Promise<string> {
    return peer.server.storage.read(async (t) => JSON.stringify([...(await t.currentState.load(roomId))].sort()));
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
    state,
    async compare(group, roomId) {
      const problems: string[] = [];
      if (group.length < 2) return problems;
      const short = (p: RealPeer) => p.name.slice(0, 8);
      // Every event any of them reaches from its tips, with parents as recorded wherever it is stored.
      const prevs = new Map<string, string[]>();
      const union = new Set<string>();
      for (const p of group) {
        for (const id of await eventIds(p, roomId)) {
          union.add(id);
          // Parents as recorded by a server that holds the event: the walk also names parents a server lacks
          // (history before its join), and such a server knows no parents of them.
          if (prevs.has(id) || !(await p.server.storage.read((t) => t.events.has(id)))) continue;
          prevs.set(id, (await p.server.storage.read((t) => t.dag.prevEvents(id))) ?? []);
        }
      }
      const [first, ...rest] = group;
      for (const p of rest) {
        if ((await state(p, roomId)) !== (await state(first!, roomId))) problems.push(`${short(p)}'s state differs from ${short(first!)}'s`);
      }
      for (const p of group) {
        // Held: stored and not rejected. Soft-failed events count: they are in the DAG, only not tips (per receiver).
        const mine = await p.server.storage.read(async (t) => {
          const out = new Set<string>();
          const records = await t.events.getMany([...union]);
          for (const [id, r] of records) if (!r.rejected) out.add(id);
          return out;
        });
        const allowed = new Set<string>();
        const stack = [...mine].flatMap((id) => (prevs.get(id) ?? []).filter((parent) => !mine.has(parent)));
        while (stack.length > 0) {
          const id = stack.pop()!;
          if (allowed.has(id)) continue;
          allowed.add(id);
          stack.push(...(prevs.get(id) ?? []));
        }
        const missing = [...union].filter((id) => !mine.has(id) && !allowed.has(id));
        if (missing.length > 0) {
          const how = await p.server.storage.read(async (t) => {
            const out: string[] = [];
            for (const id of missing.slice(0, 4)) {
              const r = await t.events.get(id);
              out.push(`${id.slice(0, 8)}:${!r ? 'absent' : r.rejected ? `rejected(${r.rejected})` : 'stored'}${r ? ` ${r.event.type}` : ''}`);
            }
            return out.join(', ');
          });
          problems.push(`${short(p)} lacks ${missing.length} event(s) the others hold, after its join: ${how}`);
        }
      }
      return problems;
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

/** SIM_DEBUG: the homeserver's own log too (receive outcomes, soft fails, backfill), tagged hs<i> beside the replicator's [<i>]. */
function homeserverLog(i: number): Logger {
  const detail = (d: unknown) => (d instanceof Error ? d.message : '');
  return {
    debug: (m: string) => console.log(`[hs${i}] ${m}`),
    warn: (m: string, d?: unknown) => console.log(`[hs${i}] WARN ${m}`, detail(d)),
    error: (m: string, d?: unknown) => console.log(`[hs${i}] ERROR ${m}`, detail(d)),
  };
}
