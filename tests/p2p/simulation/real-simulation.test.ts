// The seeded simulation with the REAL homeserver (real signatures, auth rules, state resolution, soft-fail): 4
// servers, one public room, random messages, joins by room ID through a random resident server, leaves, power-level
// changes, bans and topic edits while partitioned with seeded delays, drops and reordering; after healing and
// quiescence every server with a joined user has the same resolved state and the same events (soft-failed ones
// included; history from before a server's own join excepted: send_join brings state, not history). 20 seeds by default
// and the regression seeds below
// (each costs real crypto); REAL_SIM_SEED=<n> replays one, REAL_SIM_SEEDS=<count> runs more.
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../src/p2p/memory-transport.js';
import { enc, withUsers, type Client } from '../../homeserver/rooms/helpers.js';
import { createRealSim } from './real-harness.js';

const one = process.env.REAL_SIM_SEED;
/**
 * Seeds 43 and 45 once failed here: a server lacked events from before its own rejoin, which the comparison
 * then took for missing ones (it read their parents from a server that did not hold them). Kept as regressions.
 */
const REGRESSION_SEEDS = [43, 45];
const seeds =
  one !== undefined
    ? [Number(one)]
    : [...new Set([...Array.from({ length: Number(process.env.REAL_SIM_SEEDS ?? 20) }, (_, i) => i + 1), ...REGRESSION_SEEDS])];

/** Servers left out of a comparison because the others saw them banned or gone while they did not know (see run()). */
let unaware = 0;

async function run(seed: number): Promise<string[]> {
  const servers = 4;
  const sim = await createRealSim({ seed, servers, network: { minDelayMs: 1, maxDelayMs: 30, dropRate: 0.03, reorderRate: 0.1 }, replicator: { directFanoutMax: seed % 2 === 0 ? 8 : 2 } });
  const random = mulberry32(seed ^ 0xbeef);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  try {
    const users: Client[] = [];
    for (const [i, p] of sim.peers.entries()) users.push((await withUsers(p.server, `u${i}`))[0]!);
    const roomId = await users[0]!.createRoom({ preset: 'public_chat', name: `seed ${seed}` });
    const membership = async (i: number) => (await sim.peers[i]!.server.storage.read((t) => t.memberships.get(roomId, users[i]!.userId)))?.membership;
    for (let step = 0; step < 30; step++) {
      const roll = random();
      if (roll < 0.1) {
        const names = sim.peers.map((p) => p.name).sort(() => random() - 0.5);
        const cut = 1 + Math.floor(random() * (servers - 1));
        sim.network.partition(names.slice(0, cut), names.slice(cut));
      } else if (roll < 0.17) sim.network.heal();
      const i = Math.floor(random() * servers);
      const user = users[i]!;
      const mine = await membership(i);
      if (mine !== 'join') {
        if (mine === 'ban') continue;
        const residents: string[] = [];
        for (let j = 0; j < servers; j++) if (j !== i && (await membership(j)) === 'join') residents.push(sim.peers[j]!.name);
        if (residents.length > 0) await user.call('POST', `/join/${enc(roomId)}?server_name=${pick(residents)}`, {});
      } else {
        const action = random();
        const other = users[(i + 1 + Math.floor(random() * (servers - 1))) % servers]!;
        if (action < 0.45) await user.call('PUT', `/rooms/${enc(roomId)}/send/m.room.message/s${step}`, { msgtype: 'm.text', body: `step ${step}` });
        else if (action < 0.6) await user.call('PUT', `/rooms/${enc(roomId)}/state/m.room.topic/`, { topic: `topic ${step}` });
        else if (action < 0.75) {
          const current = await user.call('GET', `/rooms/${enc(roomId)}/state/m.room.power_levels/`);
          if (current.status === 200) await user.call('PUT', `/rooms/${enc(roomId)}/state/m.room.power_levels/`, { ...current.json, users: { ...current.json.users, [other.userId]: pick([0, 50, 100]) } });
        } else if (action < 0.85) await user.call('POST', `/rooms/${enc(roomId)}/leave`, {});
        else await user.call('POST', `/rooms/${enc(roomId)}/ban`, { user_id: other.userId, reason: 'sim' });
      }
      await sim.runFor(Math.floor(random() * 100));
    }
    sim.network.heal();
    await sim.quiesce();
    await sim.antiEntropy();
    // Compared: servers joined by their own state whom every other such server also sees joined. A server banned
    // while cut off can stay unaware of it: its catch-up of the ban is refused by the others' get_missing_events
    // (the homeserver lets only servers joined NOW read a room; see the report), so it is left out, and counted.
    const ownJoined: number[] = [];
    for (let i = 0; i < servers; i++) if ((await membership(i)) === 'join') ownJoined.push(i);
    const joined = [];
    for (const i of ownJoined) {
      let agreed = true;
      for (const j of ownJoined) {
        const seen = (await sim.peers[j]!.server.storage.read((t) => t.memberships.get(roomId, users[i]!.userId)))?.membership;
        if (seen !== 'join') agreed = false;
      }
      if (agreed) joined.push(sim.peers[i]!);
      else unaware++;
    }
    const problems = await sim.compare(joined, roomId);
    if (problems.length > 0 && process.env.SIM_DEBUG) {
      for (let i = 0; i < servers; i++) {
        const views: string[] = [];
        for (let j = 0; j < servers; j++) views.push(String((await sim.peers[j]!.server.storage.read((t) => t.memberships.get(roomId, users[i]!.userId)))?.membership));
        console.log(`u${i} on ${sim.peers[i]!.name.slice(0, 8)}: as seen by s0..s3: ${views.join(' ')}`);
      }
    }
    return problems;
  } finally {
    await sim.close();
  }
}

describe('multi-peer simulation with real homeservers: 4 servers, partitions, drops, reordering', () => {
  it.each(seeds)('seed %i converges', async (seed) => {
    const problems = await run(seed);
    if (problems.length > 0) console.error(`real-homeserver simulation seed ${seed} did not converge; replay with: REAL_SIM_SEED=${seed} npx vitest run tests/p2p/simulation/real-simulation.test.ts\n  ${problems.join('\n  ')}`);
    expect(problems, `seed ${seed}`).toEqual([]);
  }, 120_000);

  it('reports how many servers ended unaware of their own removal', () => {
    console.log(`real-homeserver simulation: ${seeds.length} seeds, ${unaware} server(s) left out as unaware of their removal`);
  });
});
