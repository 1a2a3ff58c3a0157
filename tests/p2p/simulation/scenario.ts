/**
 * One seeded run of the multi-peer simulation: servers create rooms, then do
 * random messages, joins (make_join/send_join through another server), leaves,
 * power-level changes, bans, topic and name edits while the network is split
 * into random partitions with seeded delays, drops and reordering; then the
 * network heals, the replicators go quiet, anti-entropy rounds run as the
 * periodic timer would, and convergence is checked: every server joined to a
 * room (by its own state) holds the same event IDs and the same resolved
 * state as every other.
 */
import type { LinkOptions } from '../../../src/p2p/memory-transport.js';
import { createSim, type Sim } from './harness.js';

export interface ScenarioInit {
  seed: number;
  /** @default 5 */
  servers?: number;
  /** @default 2 */
  rooms?: number;
  /** @default 40 */
  steps?: number;
  /** @default { minDelayMs: 1, maxDelayMs: 30, dropRate: 0.05, reorderRate: 0.1 } */
  link?: LinkOptions;
  /** The replicators' directFanoutMax: below the room size, rooms go by gossip. @default 8 */
  directFanoutMax?: number;
}

export interface ScenarioResult {
  seed: number;
  events: number;
  sent: number;
  rounds: number;
  /** Empty when every room converged; otherwise what differs. */
  problems: string[];
}

export async function runScenario(init: ScenarioInit): Promise<ScenarioResult> {
  const n = init.servers ?? 5;
  const sim: Sim = await createSim({
    seed: init.seed,
    servers: n,
    network: { minDelayMs: 1, maxDelayMs: 30, dropRate: 0.05, reorderRate: 0.1, requestTimeoutMs: 2_000, ...init.link },
    replicator: { directFanoutMax: init.directFanoutMax ?? 8 },
  });
  try {
    const { peers, random, network } = sim;
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const roomIds: string[] = [];
    for (let r = 0; r < (init.rooms ?? 2); r++) roomIds.push(await peers[r % n]!.homeserver.createRoom());
    let events = 0;
    for (let step = 0; step < (init.steps ?? 40); step++) {
      const roll = random();
      if (roll < 0.1) {
        const shuffled = [...peers.map((p) => p.name)].sort(() => random() - 0.5);
        const cut = 1 + Math.floor(random() * (n - 1));
        network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      } else if (roll < 0.16) {
        network.heal();
      }
      const actor = pick(peers).homeserver;
      const roomId = pick(roomIds);
      if (!actor.joined(roomId)) {
        const banned = actor.membership(roomId, actor.userId) === 'ban';
        const resident = peers.filter((p) => p.homeserver !== actor && p.homeserver.joined(roomId));
        if (!banned && resident.length > 0 && (await actor.join(roomId, pick(resident).name))) events++;
      } else {
        const action = random();
        const others = actor.servers(roomId).filter((s) => s !== actor.serverName);
        if (action < 0.45) await actor.send(roomId, 'm.room.message', { body: `step ${step}` });
        else if (action < 0.6) await actor.send(roomId, 'm.room.topic', { topic: `topic ${step}` }, '');
        else if (action < 0.7) await actor.send(roomId, 'm.room.name', { name: `name ${step}` }, '');
        else if (action < 0.8) await actor.send(roomId, 'm.room.power_levels', { users: { [actor.userId]: 100, ...(others.length ? { [`@u:${pick(others)}`]: Math.floor(random() * 100) } : {}) } }, '');
        else if (action < 0.9) await actor.send(roomId, 'm.room.member', { membership: 'leave' }, actor.userId);
        else if (others.length > 0) await actor.send(roomId, 'm.room.member', { membership: 'ban' }, `@u:${pick(others)}`);
        events++;
      }
      await sim.runFor(Math.floor(random() * 100));
    }
    network.heal();
    await sim.quiesce();
    const rounds = await sim.antiEntropy();
    const problems: string[] = [];
    for (const roomId of roomIds) {
      const joined = peers.filter((p) => p.homeserver.joined(roomId));
      if (joined.length < 2) continue;
      const [first, ...rest] = joined;
      const ids = [...first!.homeserver.eventIds(roomId)].sort().join();
      const state = JSON.stringify([...first!.homeserver.state(roomId)].sort());
      for (const p of rest) {
        if ([...p.homeserver.eventIds(roomId)].sort().join() !== ids && process.env.SIM_DEBUG) {
          for (const q of peers) console.log(q.name, q.homeserver.joined(roomId), q.homeserver.membership(roomId, q.homeserver.userId), q.homeserver.servers(roomId).join(','), q.homeserver.eventIds(roomId).size, [...q.homeserver.outcomes]);
        }
        if ([...p.homeserver.eventIds(roomId)].sort().join() !== ids) problems.push(`${roomId}: ${p.name} holds ${p.homeserver.eventIds(roomId).size} events, ${first!.name} ${first!.homeserver.eventIds(roomId).size}`);
        else if (JSON.stringify([...p.homeserver.state(roomId)].sort()) !== state) problems.push(`${roomId}: ${p.name}'s state differs from ${first!.name}'s`);
      }
    }
    return { seed: init.seed, events, sent: network.stats.sent, rounds, problems };
  } finally {
    await sim.close();
  }
}
