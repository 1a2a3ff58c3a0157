// The join route is read from the location hash, which anyone can craft: only well-formed routes count.
import { describe, expect, it } from 'vitest';
import { parseJoinRoute, RouteState } from '../../../src/ui/state/route.svelte.js';

describe('parseJoinRoute', () => {
  it('reads the room and every via server', () => {
    expect(parseJoinRoute('#/join/!abc%3Adef?via=s1&via=s2')).toEqual({ roomId: '!abc:def', via: ['s1', 's2'] });
    expect(parseJoinRoute('#/join/!abc')).toEqual({ roomId: '!abc', via: [] });
  });

  it('ignores anything else', () => {
    for (const hash of ['', '#', '#/join/', '#/join/%E0%A4%A', '#/join/@user:x', '#/rooms/!a', `#/join/!${'x'.repeat(300)}`]) {
      expect(parseJoinRoute(hash), hash).toBeUndefined();
    }
    expect(parseJoinRoute(`#/join/!a?via=&via=${'s'.repeat(300)}&via=ok`)).toEqual({ roomId: '!a', via: ['ok'] });
  });

  it('RouteState follows hash changes', () => {
    const route = new RouteState('#/join/!r?via=v');
    expect(route.join?.roomId).toBe('!r');
    route.update('');
    expect(route.join).toBeUndefined();
  });
});
