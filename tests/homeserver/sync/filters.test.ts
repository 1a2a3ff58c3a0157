// Filters: parsing per the spec's shapes, matching with wildcards and not_* precedence, event_fields.
import { describe, expect, test } from 'vitest';
import { MatrixError } from '../../../src/homeserver/http/errors.js';
import {
  EventFilter,
  onlyEventFields,
  parseFilter,
  parseRoomEventFilter,
  SyncFilter,
  typeMatches,
} from '../../../src/homeserver/sync/filters.js';

const ev = (type: string, sender = '@a:hs', extra: Record<string, unknown> = {}) => ({ type, sender, room_id: '!r:hs', content: {}, ...extra });

function errcodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof MatrixError ? error.errcode : 'other';
  }
  return undefined;
}

describe('parsing', () => {
  test('accepts the spec shapes and unknown keys', () => {
    const filter = parseFilter({
      event_fields: ['type', 'content.body'],
      event_format: 'client',
      presence: { not_types: ['*'] },
      account_data: { types: ['m.*'], limit: 3 },
      room: {
        rooms: ['!a:hs'],
        not_rooms: ['!b:hs'],
        include_leave: true,
        timeline: { limit: 20, lazy_load_members: true, contains_url: false, senders: ['@x:hs'] },
        state: { lazy_load_members: true, include_redundant_members: false },
        ephemeral: { types: ['m.receipt'] },
        account_data: { not_types: ['m.tag'] },
      },
      'org.example.future': { anything: true },
    });
    expect(filter.room?.timeline?.limit).toBe(20);
    const compiled = new SyncFilter(filter);
    expect(compiled.timelineLimit).toBe(20);
    expect(compiled.lazyLoadMembers).toBe(true);
    expect(compiled.includeLeave).toBe(true);
    expect(compiled.allowsRoom('!a:hs')).toBe(true);
    expect(compiled.allowsRoom('!b:hs')).toBe(false);
    expect(compiled.allowsRoom('!c:hs')).toBe(false);
    expect(new SyncFilter().timelineLimit).toBe(10);
  });

  test('clamps huge limits, refuses wrong shapes with M_BAD_JSON', () => {
    expect(parseRoomEventFilter({ limit: 1e9 }).limit).toBe(1000);
    const bad: unknown[] = [
      [],
      'filter',
      { event_fields: 'type' },
      { event_fields: [1] },
      { event_format: 'raw' },
      { room: [] },
      { room: { rooms: '!a:hs' } },
      { room: { rooms: ['a:hs'] } },
      { room: { include_leave: 'yes' } },
      { room: { timeline: { limit: -1 } } },
      { room: { timeline: { limit: '5' } } },
      { room: { timeline: { types: [1] } } },
      { room: { timeline: { senders: ['bob'] } } },
      { room: { state: { lazy_load_members: 1 } } },
      { presence: { not_senders: [null] } },
      { account_data: 5 },
    ];
    for (const value of bad) expect({ value, errcode: errcodeOf(() => parseFilter(value)) }).toEqual({ value, errcode: 'M_BAD_JSON' });
  });
});

describe('matching', () => {
  test('types with wildcards; not_types wins; empty lists match nothing', () => {
    expect(typeMatches('m.*', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.*', 'm.room')).toBe(false);
    expect(typeMatches('*.message', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.message', 'm.room.messages')).toBe(false);
    expect(typeMatches('m.(x)+', 'm.(x)+')).toBe(true);
    const filter = new EventFilter({ types: ['m.room.*'], not_types: ['m.room.member'] });
    expect(filter.matches(ev('m.room.message'))).toBe(true);
    expect(filter.matches(ev('m.room.member'))).toBe(false);
    expect(filter.matches(ev('org.example'))).toBe(false);
    expect(new EventFilter({ types: [] }).matches(ev('m.room.message'))).toBe(false);
    expect(new EventFilter({ types: [] }).blocksAll).toBe(true);
    expect(new EventFilter({ not_types: ['*'] }).blocksAll).toBe(true);
  });

  test('senders, rooms and contains_url', () => {
    const senders = new EventFilter({ senders: ['@a:hs', '@b:hs'], not_senders: ['@b:hs'] });
    expect(senders.matches(ev('t', '@a:hs'))).toBe(true);
    expect(senders.matches(ev('t', '@b:hs'))).toBe(false);
    expect(senders.matches(ev('t', '@c:hs'))).toBe(false);
    const rooms = new EventFilter({ rooms: ['!r:hs'] });
    expect(rooms.matches(ev('t'))).toBe(true);
    expect(rooms.matches({ ...ev('t'), room_id: '!other:hs' })).toBe(false);
    const withUrl = new EventFilter({ contains_url: true });
    const withoutUrl = new EventFilter({ contains_url: false });
    const image = ev('m.room.message', '@a:hs', { content: { msgtype: 'm.image', url: 'mxc://hs/x' } });
    expect(withUrl.matches(image)).toBe(true);
    expect(withoutUrl.matches(image)).toBe(false);
    expect(withUrl.matches(ev('m.room.message'))).toBe(false);
    expect(withoutUrl.matches(ev('m.room.message'))).toBe(true);
  });
});

describe('event_fields', () => {
  test('keeps the listed paths; backslash escapes a dot', () => {
    const event = { type: 't', sender: '@a:hs', content: { body: 'b', 'm.relates_to': { rel_type: 'x' }, other: 1 }, unsigned: { age: 1 } };
    expect(onlyEventFields(event, ['type', 'content.body', 'content.m\\.relates_to.rel_type', 'missing.path'])).toEqual({
      type: 't',
      content: { body: 'b', 'm.relates_to': { rel_type: 'x' } },
    });
  });
});
