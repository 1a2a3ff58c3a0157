// DAG helpers: forward extremities, auth chains and their difference,
// topological order of the timeline, and parents still to fetch.
import { describe, expect, it } from 'vitest';
import {
  authChain,
  authDifference,
  CoreError,
  forwardExtremities,
  missingParents,
  topologicalOrder,
  type PDU,
} from '../../src/core/index.js';
import { coreErrorCode } from './error-code.js';

function ev(id: string, prev: string[], auth: string[] = [], extra: Partial<PDU> = {}): PDU {
  return {
    event_id: id,
    room_id: '!r:x',
    sender: '@a:x',
    type: 'm.room.message',
    content: {},
    origin_server_ts: 0,
    prev_events: prev,
    auth_events: auth,
    ...extra,
  };
}

function store(events: PDU[]) {
  const byId = new Map(events.map((e) => [e.event_id!, e]));
  return (id: string) => byId.get(id);
}


describe('forwardExtremities', () => {
  it('returns the events nobody lists as a parent', () => {
    const events = [ev('$a', []), ev('$b', ['$a']), ev('$c', ['$a']), ev('$d', ['$b'])];
    expect(forwardExtremities(events)).toEqual(['$c', '$d']);
  });
  it('counts each event once', () => {
    expect(forwardExtremities([ev('$a', []), ev('$a', [])])).toEqual(['$a']);
  });
});

describe('missingParents', () => {
  it('lists prev_events neither given nor held, once each', () => {
    const events = [ev('$b', ['$a', '$x']), ev('$c', ['$b', '$x', '$y'])];
    expect(missingParents(events, (id) => id === '$y')).toEqual(['$a', '$x']);
  });
});

describe('authChain', () => {
  const events = [ev('$c', [], []), ev('$m', [], ['$c']), ev('$p', [], ['$c', '$m']), ev('$t', [], ['$c', '$p', '$m'])];
  it('collects every ancestor, not the starting events', async () => {
    expect([...(await authChain(['$t'], store(events)))].sort()).toEqual(['$c', '$m', '$p']);
    expect([...(await authChain(['$p', '$m'], store(events)))].sort()).toEqual(['$c', '$m']);
  });
  it('works with an async store', async () => {
    const get = store(events);
    expect((await authChain(['$t'], async (id) => get(id))).size).toBe(3);
  });
  it('follows the create event a v12 room ID implies', async () => {
    const create = ev('$create', [], [], { type: 'm.room.create', state_key: '', room_id: undefined });
    const member = ev('$m', [], [], { room_id: '!create' });
    expect([...(await authChain(['$m'], store([create, member]), { roomVersion: '12' }))]).toEqual(['$create']);
    expect((await authChain(['$m'], store([create, member]), { roomVersion: '11' })).size).toBe(0);
  });
  it('refuses missing events, cycles and oversized chains', async () => {
    expect(await coreErrorCode(authChain(['$x'], store([ev('$x', [], ['$gone'])])))).toBe('MISSING_EVENT');
    expect(await coreErrorCode(authChain(['$x'], store([ev('$x', [], ['$y']), ev('$y', [], ['$x'])])))).toBe('AUTH_CYCLE');
    expect(await coreErrorCode(authChain(['$x'], store([ev('$x', [], ['$x'])])))).toBe('AUTH_CYCLE');
    expect(await coreErrorCode(authChain(['$t'], store(events), { maxEvents: 2 }))).toBe('TOO_LARGE');
  });
  it('walks a 100,000 event chain without recursion', async () => {
    const chain = Array.from({ length: 100_000 }, (_, i) => ev(`$${i}`, [], i === 0 ? [] : [`$${i - 1}`]));
    expect((await authChain(['$99999'], store(chain))).size).toBe(99_999);
  });
});

describe('authDifference', () => {
  it('is the union minus the intersection', () => {
    expect([...authDifference([new Set(['a', 'b', 'c']), new Set(['b', 'c', 'd']), new Set(['c', 'b'])])].sort()).toEqual(['a', 'd']);
    expect(authDifference([]).size).toBe(0);
  });
});

describe('topologicalOrder', () => {
  it('puts parents first and breaks ties by depth, origin_server_ts, event ID', () => {
    const events = [
      ev('$d', ['$b', '$c'], [], { depth: 3, origin_server_ts: 1 }),
      ev('$c', ['$a'], [], { depth: 2, origin_server_ts: 5 }),
      ev('$b', ['$a'], [], { depth: 2, origin_server_ts: 5 }),
      ev('$e', ['$a'], [], { depth: 1, origin_server_ts: 9 }),
      ev('$a', [], [], { depth: 1, origin_server_ts: 7 }),
    ];
    expect(topologicalOrder(events).map((e) => e.event_id)).toEqual(['$a', '$e', '$b', '$c', '$d']);
  });
  it('ignores parents outside the set and refuses cycles', () => {
    expect(topologicalOrder([ev('$b', ['$zz']), ev('$a', ['$zz'])]).map((e) => e.event_id)).toEqual(['$a', '$b']);
    expect(() => topologicalOrder([ev('$a', ['$b']), ev('$b', ['$a'])])).toThrow(CoreError);
  });
  it('orders 100,000 events', () => {
    const events = Array.from({ length: 100_000 }, (_, i) => ev(`$${i}`, i === 0 ? [] : [`$${i - 1}`], [], { depth: i }));
    const ordered = topologicalOrder(events.slice().reverse());
    expect(ordered[0]!.event_id).toBe('$0');
    expect(ordered[99_999]!.event_id).toBe('$99999');
  });
});
