// Properties of state resolution: the answer depends on the events only, not
// on the order of the state sets nor on when an async store answers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveState, type PDU, type StateMap } from '../../../src/core/index.js';
import { syntheticFork } from '../../bench/fixtures/synthetic-fork.js';
import {
  BATCH_CASES,
  STATE_MAP_CASES,
  byIdOf,
  keyOf,
  loadPdus,
  loadSnapshot,
  loadStateMap,
  roomVersionOf,
  sorted,
} from './ruma-fixtures.js';

interface Problem {
  name: string;
  roomVersion: string;
  sets: StateMap[];
  byId: Map<string, PDU>;
  expected: [string, string][];
}

const problems: Problem[] = [];
for (const { name, files } of BATCH_CASES) {
  const pdus = files.flatMap(loadPdus);
  // All at once: every event its own state set (many sets to permute).
  const sets = pdus.map((e): StateMap => new Map([[keyOf(e), e.event_id!]]));
  problems.push({ name, roomVersion: roomVersionOf(pdus), sets, byId: byIdOf(pdus), expected: sorted(loadSnapshot(name)) });
}
for (const { name, stateMaps, pdus: file } of STATE_MAP_CASES) {
  const pdus = loadPdus(file);
  const byId = byIdOf(pdus);
  const sets = stateMaps.map((f) => loadStateMap(f, byId));
  problems.push({ name, roomVersion: roomVersionOf(pdus), sets, byId, expected: sorted(loadSnapshot(name)) });
}
for (const roomVersion of ['11', '12']) {
  const fork = syntheticFork(40, { roomVersion, trunkEvents: 300 });
  problems.push({ name: `synthetic v${roomVersion}`, roomVersion, sets: fork.stateSets, byId: fork.room.events, expected: [] });
}
// Expected results of the synthetic forks: their own sync, in-order resolution.
for (const p of problems) {
  if (p.expected.length === 0) p.expected = sorted(await resolveState(p.roomVersion, p.sets, (id) => p.byId.get(id)));
}

const problem = fc.constantFrom(...problems);

describe('state resolution properties', () => {
  it('gives the same state for any order of the state sets', async () => {
    await fc.assert(
      fc.asyncProperty(
        problem.chain((p) => fc.tuple(fc.constant(p), fc.shuffledSubarray(p.sets, { minLength: p.sets.length, maxLength: p.sets.length }))),
        async ([p, sets]) => {
          const resolved = await resolveState(p.roomVersion, sets, (id) => p.byId.get(id));
          expect(sorted(resolved)).toEqual(p.expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('gives the same state whatever the timing of an async store', async () => {
    // Per call: answer synchronously, after some microtasks, or after a timer.
    const delays = fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(problem, delays, async (p, plan) => {
        let call = 0;
        const getEvent = (id: string): PDU | undefined | Promise<PDU | undefined> => {
          const delay = plan[call++ % plan.length]!;
          const event = p.byId.get(id);
          if (delay === 0) return event;
          if (delay >= 5) return new Promise((resolve) => setTimeout(() => resolve(event), delay - 5));
          let chain = Promise.resolve(event);
          for (let i = 0; i < delay; i++) chain = chain.then((e) => e);
          return chain;
        };
        expect(sorted(await resolveState(p.roomVersion, p.sets, getEvent))).toEqual(p.expected);
      }),
      { numRuns: 60 },
    );
  });

  it('gives the same state when a scheduler interleaves every fetch', async () => {
    await fc.assert(
      fc.asyncProperty(problem, fc.scheduler(), async (p, s) => {
        const getEvent = s.scheduleFunction(async (id: string) => p.byId.get(id));
        const resolved = await s.waitFor(resolveState(p.roomVersion, p.sets, getEvent));
        expect(sorted(resolved)).toEqual(p.expected);
      }),
      { numRuns: 60 },
    );
  });

  it('calls the store at most once per event', async () => {
    for (const p of problems) {
      const calls = new Map<string, number>();
      await resolveState(p.roomVersion, p.sets, (id) => {
        calls.set(id, (calls.get(id) ?? 0) + 1);
        return p.byId.get(id);
      });
      expect(Math.max(0, ...calls.values())).toBeLessThanOrEqual(1);
    }
  });
});
