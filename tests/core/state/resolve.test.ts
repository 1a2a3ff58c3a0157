// State resolution behaviour beyond ruma's vectors: mainline ordering, v12
// creator power, rejected events, the no-conflict fast path, and bad input.
import { describe, expect, it } from 'vitest';
import { resolveState, stateKeyOf, type PDU, type StateMap } from '../../../src/core/index.js';
import { Room, syntheticFork } from '../../bench/fixtures/synthetic-fork.js';
import { coreErrorCode } from '../error-code.js';

const TOPIC = stateKeyOf('m.room.topic', '');
const JOIN_RULES = stateKeyOf('m.room.join_rules', '');
const ADMIN = '@admin:example.org';
const BOB = '@bob:example.org';


/** A room with admin (100) and bob (100 or 50), public join rules. */
function baseRoom(roomVersion: string, bobLevel: number) {
  const [room, trunk] = Room.create(roomVersion);
  trunk.send('m.room.member', ADMIN, ADMIN, { membership: 'join' });
  const users: Record<string, number> = { [BOB]: bobLevel };
  if (roomVersion !== '12') users[ADMIN] = 100;
  trunk.send('m.room.power_levels', ADMIN, '', { users });
  trunk.send('m.room.join_rules', ADMIN, '', { join_rule: 'public' });
  trunk.send('m.room.member', BOB, BOB, { membership: 'join' });
  return { room, trunk, users };
}

describe('mainline ordering', () => {
  // Topic A cites the older power levels but carries the later timestamp;
  // topic B cites the current power levels. The mainline puts A first, so B
  // is replayed last and wins; ordering by timestamp alone would pick A.
  function scenario(isRejected?: (id: string) => boolean) {
    const { room, trunk, users } = baseRoom('11', 50);
    const a = trunk.fork();
    const topicA = a.send('m.room.topic', BOB, '', { topic: 'A' });
    trunk.send('m.room.power_levels', ADMIN, '', { users: { ...users, '@carol:example.org': 10 } });
    const b = trunk.fork();
    const topicB = b.send('m.room.topic', BOB, '', { topic: 'B' });
    room.events.get(topicA)!.origin_server_ts = 1_000_000;
    const stateA: StateMap = new Map(a.state).set(stateKeyOf('m.room.power_levels', ''), b.state.get(stateKeyOf('m.room.power_levels', ''))!);
    return { room, topicA, topicB, sets: [stateA, b.state], isRejected };
  }

  it('replays events citing older power levels first', async () => {
    const { room, topicB, sets } = scenario();
    expect((await resolveState('11', sets, room.getEvent)).get(TOPIC)).toBe(topicB);
    expect((await resolveState('11', sets.slice().reverse(), room.getEvent)).get(TOPIC)).toBe(topicB);
  });

  it('never admits a rejected event', async () => {
    const { room, topicA, topicB, sets } = scenario();
    const resolved = await resolveState('11', sets, room.getEvent, { isRejected: (id) => id === topicB });
    expect(resolved.get(TOPIC)).toBe(topicA);
  });
});

describe('power ordering', () => {
  // Bob (100) changes the join rules first, the creator later. With equal
  // power (v11) the later event is replayed last and wins; in v12 the creator
  // outranks everyone, is replayed first, and bob's change wins.
  async function joinRulesAfterFork(roomVersion: string): Promise<[string | undefined, string, string]> {
    const { room, trunk } = baseRoom(roomVersion, 100);
    const bobSide = trunk.fork();
    const creatorSide = trunk.fork();
    const bobs = bobSide.send('m.room.join_rules', BOB, '', { join_rule: 'knock' });
    const creators = creatorSide.send('m.room.join_rules', ADMIN, '', { join_rule: 'invite' });
    const resolved = await resolveState(roomVersion, [bobSide.state, creatorSide.state], room.getEvent);
    return [resolved.get(JOIN_RULES), bobs, creators];
  }

  it('orders equal power by origin_server_ts (v11)', async () => {
    const [winner, , creators] = await joinRulesAfterFork('11');
    expect(winner).toBe(creators);
  });

  it('puts v12 creators above any power level', async () => {
    const [winner, bobs] = await joinRulesAfterFork('12');
    expect(winner).toBe(bobs);
  });
});

describe('resolveState edge cases', () => {
  it('returns the common state without fetching anything when nothing conflicts', async () => {
    const set: StateMap = new Map([[TOPIC, '$not-in-store']]);
    const fetch = () => {
      throw new Error('must not fetch');
    };
    expect([...(await resolveState('11', [set, new Map(set)], fetch))]).toEqual([...set]);
    expect((await resolveState('11', [], fetch)).size).toBe(0);
    expect([...(await resolveState('12', [set], fetch))]).toEqual([...set]);
  });

  it('resolves the synthetic fork the same in rooms 10, 11 and 12 shapes', async () => {
    for (const roomVersion of ['10', '11', '12']) {
      const fork = syntheticFork(60, { roomVersion, trunkEvents: 600 });
      const resolved = await resolveState(roomVersion, fork.stateSets, fork.room.getEvent);
      // Every conflicted key resolves to one side's value.
      for (const [key, id] of resolved) {
        expect([fork.stateSets[0].get(key), fork.stateSets[1].get(key)]).toContain(id);
      }
      expect(resolved.size).toBe(new Set([...fork.stateSets[0].keys(), ...fork.stateSets[1].keys()]).size);
    }
  });
});

describe('resolveState bad input', () => {
  const fork = syntheticFork(20, { trunkEvents: 200 });
  const [left, right] = fork.stateSets;
  const events = fork.room.events;
  const withEvents = (extra: PDU[]) => {
    const all = new Map(events);
    for (const e of extra) all.set(e.event_id!, e);
    return (id: string) => all.get(id);
  };
  const topic = (id: string, auth: string[]): PDU => ({
    ...events.get(right.get(TOPIC)!)!,
    event_id: id,
    auth_events: auth,
  });

  it('rejects an unknown room version', async () => {
    expect(await coreErrorCode(resolveState('9', [left, right], fork.room.getEvent))).toBe('UNKNOWN_ROOM_VERSION');
    expect(await coreErrorCode(resolveState('13', [left], fork.room.getEvent))).toBe('UNKNOWN_ROOM_VERSION');
  });

  it('reports missing state and auth events', async () => {
    const gone = new Map(right).set(TOPIC, '$gone');
    expect(await coreErrorCode(resolveState('11', [left, gone], fork.room.getEvent))).toBe('MISSING_EVENT');
    const orphan = new Map(right).set(TOPIC, '$orphan');
    const get = withEvents([topic('$orphan', [...events.get(right.get(TOPIC)!)!.auth_events, '$lost'])]);
    expect(await coreErrorCode(resolveState('11', [left, orphan], get))).toBe('MISSING_EVENT');
    const asyncGet = async (id: string) => get(id);
    expect(await coreErrorCode(resolveState('11', [left, orphan], asyncGet))).toBe('MISSING_EVENT');
  });

  it('reports auth_events cycles instead of looping', async () => {
    const cyclic = new Map(right).set(TOPIC, '$x');
    const get = withEvents([topic('$x', ['$y']), topic('$y', ['$x'])]);
    expect(await coreErrorCode(resolveState('11', [left, cyclic], get))).toBe('AUTH_CYCLE');
    const selfCited = withEvents([topic('$x', ['$x'])]);
    expect(await coreErrorCode(resolveState('11', [left, cyclic], selfCited))).toBe('AUTH_CYCLE');
  });

  it('reports malformed events', async () => {
    const broken = new Map(right).set(TOPIC, '$broken');
    const get = withEvents([{ ...topic('$broken', []), auth_events: 'nope' as unknown as string[] }]);
    expect(await coreErrorCode(resolveState('11', [left, broken], get))).toBe('MALFORMED_EVENT');
  });

  it('refuses inputs over the size limit', async () => {
    expect(await coreErrorCode(resolveState('11', [left, right], fork.room.getEvent, { maxEvents: 50 }))).toBe('TOO_LARGE');
  });

  it('passes errors of the store through', async () => {
    const failing = async () => {
      throw new Error('disk on fire');
    };
    await expect(resolveState('11', [left, right], failing)).rejects.toThrow('disk on fire');
  });

  it('handles a 50,000 event deep auth chain', async () => {
    const [room, trunk] = Room.create('11');
    trunk.send('m.room.member', ADMIN, ADMIN, { membership: 'join' });
    for (let i = 0; i < 50_000; i++) trunk.send('m.room.power_levels', ADMIN, '', { users: { [ADMIN]: 100 }, state_default: i % 2 ? 50 : 51 });
    const a = trunk.fork();
    const b = trunk.fork();
    a.send('m.room.topic', ADMIN, '', { topic: 'a' });
    const winner = b.send('m.room.topic', ADMIN, '', { topic: 'b' });
    const resolved = await resolveState('11', [a.state, b.state], async (id) => room.getEvent(id));
    expect(resolved.get(TOPIC)).toBe(winner);
  });
});
