// The benchmark's synthetic fork must be a valid room, or the benchmark would
// time shortcuts (events failing auth early) instead of real work.
import { describe, expect, it } from 'vitest';
import { checkEventAuth } from '../../../src/core/index.js';
import { syntheticFork } from '../../bench/fixtures/synthetic-fork.js';

describe('synthetic fork fixture', () => {
  for (const roomVersion of ['10', '11', '12']) {
    it(`builds a valid v${roomVersion} room with the conflicts asked for`, () => {
      const fork = syntheticFork(200, { roomVersion, trunkEvents: 1_000 });
      const create = fork.room.events.get('$create')!;
      for (const event of fork.room.events.values()) {
        const auth = event.auth_events.map((id) => fork.room.events.get(id)!);
        if (roomVersion === '12' && event.type !== 'm.room.create') auth.unshift(create);
        expect(checkEventAuth(event, auth, roomVersion), event.event_id).toEqual({ allowed: true });
      }
      expect(fork.conflicted).toBeGreaterThanOrEqual(190);
      expect(fork.conflicted).toBeLessThanOrEqual(210);
    });
  }
});
