// The seeded multi-peer simulation (see scenario.ts): 200 seeds by default, each printed on failure with the command
// that replays it. SIM_SEED=<n> runs one seed; SIM_SEEDS=<count> changes how many.
import { describe, expect, it } from 'vitest';
import { runScenario } from './scenario.js';

const one = process.env.SIM_SEED;
const count = Number(process.env.SIM_SEEDS ?? 200);
const seeds = one !== undefined ? [Number(one)] : Array.from({ length: count }, (_, i) => i + 1);

describe('multi-peer simulation: 5 servers, 2 rooms, partitions, drops, reordering', () => {
  // Even seeds fan out directly (rooms of at most 8 servers); odd seeds put every room of more than 2 servers in gossip mode.
  it.each(seeds)('seed %i converges', async (seed) => {
    const result = await runScenario({ seed, directFanoutMax: seed % 2 === 0 ? 8 : 2 });
    if (result.problems.length > 0) {
      console.error(`simulation seed ${seed} did not converge; replay with: SIM_SEED=${seed} npx vitest run tests/p2p/simulation\n  ${result.problems.join('\n  ')}`);
    }
    expect(result.problems, `seed ${seed}`).toEqual([]);
    expect(result.events).toBeGreaterThan(0);
  });
});
