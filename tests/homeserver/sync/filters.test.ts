// Filters: one grammar (parsing normalises, is idempotent, bounds every list), glob matching in linear time, event_fields without prototype writes.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Filter } from 'matrix-js-sdk/lib/filter.js';
import { describe, expect, test } from 'vitest';
import { MatrixError } from '../../../src/homeserver/http/errors.js';
import {
  EventFilter,
  FILTER_LIST_BOUNDS,
  MAX_FILTER_JSON_LENGTH,
  MAX_FILTER_STRING_LENGTH,
  onlyEventFields,
  parseFilter,
  parseRoomEventFilter,
  SyncFilter,
  TypePattern,
  typeMatches,
} from '../../../src/homeserver/sync/filters.js';

const ev = (type: string, sender = '@a:hs', extra: Record<string, unknown> = {}) => ({ type, sender, room_id: '!r:hs', content: {}, ...extra });

/** Filters the grammar refuses, each with the field its error must name (shared with the HTTP tests). */
const INVALID_FILTERS: { why: string; filter: unknown; field: string }[] = JSON.parse(
  readFileSync(new URL('./fixtures/invalid-filters.json', import.meta.url), 'utf8'),
);

function errorOf(fn: () => unknown): { errcode: string; message: string } | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof MatrixError ? { errcode: error.errcode, message: error.message } : { errcode: 'other', message: String(error) };
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

  test('refuses wrong shapes with M_BAD_JSON naming the field (fixtures/invalid-filters.json)', () => {
    expect(INVALID_FILTERS.length).toBeGreaterThan(10);
    for (const { why, filter, field } of INVALID_FILTERS) {
      const error = errorOf(() => parseFilter(filter));
      expect({ why, errcode: error?.errcode, names: error?.message.startsWith(`Invalid filter: ${field} `) }).toEqual({ why, errcode: 'M_BAD_JSON', names: true });
    }
  });

  test('normalises: limits clamped and floored, unknown keys kept at every level, and the result parses to itself', () => {
    expect(parseRoomEventFilter({ limit: 1e9 }).limit).toBe(1000);
    const input = {
      room: { timeline: { limit: 20.7, 'io.element.relation_types': ['m.thread'] }, 'org.example': 1 },
      presence: { 'org.example': [1, 2] },
      'org.matrix.msc4429.profile_fields': { ids: ['m.tz'] },
    };
    const normalised = parseFilter(input);
    expect(normalised).toEqual({ ...input, room: { ...input.room, timeline: { limit: 20, 'io.element.relation_types': ['m.thread'] } } });
    expect(parseFilter(JSON.parse(JSON.stringify(normalised)))).toEqual(normalised);
  });

  test('an own __proto__ key in the input is kept as an ordinary key, never as a prototype', () => {
    const input = JSON.parse('{"__proto__":{"polluted":1},"room":{"__proto__":{"polluted":2},"timeline":{"__proto__":{"limit":1}}}}');
    const normalised = parseFilter(input) as Record<string, any>;
    expect(Object.getPrototypeOf(normalised)).toBe(Object.prototype);
    expect(normalised.polluted).toBeUndefined();
    expect(normalised.room.polluted).toBeUndefined();
    expect(new SyncFilter(normalised).timelineLimit).toBe(10);
    expect(JSON.parse(JSON.stringify(normalised))).toEqual(input);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('every filter matrix-js-sdk 43 builds is accepted and comes back exactly as uploaded', () => {
    const userId = '@alice:hs.test';
    const sync = new Filter(userId);
    sync.setUnreadThreadNotifications(true);
    sync.setLazyLoadMembers(true);
    sync.setTimelineLimit(20);
    const leftRooms = new Filter(userId);
    leftRooms.setTimelineLimit(1);
    leftRooms.setIncludeLeaveRooms(true);
    const profiles = new Filter(userId);
    profiles.setUnstableMSC4429SyncUserProfiles(['m.tz'], false);
    const definitions: unknown[] = [
      sync.getDefinition(),
      leftRooms.getDefinition(),
      profiles.getDefinition(),
      // Thread list filters (models/room.js getThreadListFilter), stable and unstable names.
      { room: { timeline: { related_by_rel_types: ['m.thread'], related_by_senders: [userId] } } },
      { room: { timeline: { 'io.element.relation_types': ['m.thread'], 'io.element.relation_senders': [userId] } } },
      // Unstable name of unread thread notifications.
      { room: { timeline: { 'org.matrix.msc3773.unread_thread_notifications': true }, state: { lazy_load_members: true } } },
    ];
    for (const definition of definitions) expect(parseFilter(definition)).toEqual(definition);
    // The /messages and /context filter (client.js: LAZY_LOADING_MESSAGES_FILTER).
    expect(parseRoomEventFilter(Filter.LAZY_LOADING_MESSAGES_FILTER)).toEqual({ lazy_load_members: true });
  });
});

describe('bounds', () => {
  const at = (field: string, list: unknown[]): Record<string, unknown> => {
    const path = field.split('.');
    let value: unknown = list;
    for (let i = path.length - 1; i >= 0; i--) value = { [path[i]!]: value };
    return value as Record<string, unknown>;
  };
  const entry = (key: string, i: number) =>
    key.endsWith('senders') ? `@u${i}:hs` : key.endsWith('rooms') ? `!r${i}:hs` : key === 'event_fields' ? `content.f${i}` : `t.${i}.*`;
  const fields: Record<keyof typeof FILTER_LIST_BOUNDS, string> = {
    types: 'room.timeline.types',
    not_types: 'presence.not_types',
    event_fields: 'event_fields',
    senders: 'room.state.senders',
    not_senders: 'account_data.not_senders',
    rooms: 'room.rooms',
    not_rooms: 'room.ephemeral.not_rooms',
  };

  test('each list takes its bound and refuses one more, naming the field', () => {
    for (const [key, field] of Object.entries(fields) as [keyof typeof FILTER_LIST_BOUNDS, string][]) {
      const max = FILTER_LIST_BOUNDS[key];
      const full = Array.from({ length: max }, (_, i) => entry(key, i));
      expect(errorOf(() => parseFilter(at(field, full)))).toBeUndefined();
      const error = errorOf(() => parseFilter(at(field, [...full, entry(key, max)])));
      expect({ field, error }).toEqual({ field, error: { errcode: 'M_BAD_JSON', message: `Invalid filter: ${field} must have at most ${max} entries` } });
    }
  });

  test('the 40,000 wildcard not_types that stalled every /sync are refused', () => {
    const error = errorOf(() => parseFilter({ room: { timeline: { not_types: Array.from({ length: 40_000 }, (_, i) => `*${i}*`) } } }));
    expect(error).toEqual({ errcode: 'M_BAD_JSON', message: 'Invalid filter: room.timeline.not_types must have at most 100 entries' });
  });

  test('strings are bounded, and so is the whole filter', () => {
    const long = 'm.' + 'x'.repeat(MAX_FILTER_STRING_LENGTH - 2);
    expect(errorOf(() => parseFilter({ room: { timeline: { types: [long] } } }))).toBeUndefined();
    expect(errorOf(() => parseFilter({ room: { timeline: { types: [long + 'x'] } } }))?.message).toBe(
      `Invalid filter: room.timeline.types must contain only strings of at most ${MAX_FILTER_STRING_LENGTH} characters`,
    );
    // Each list within its bound, the whole too long: 6 room-ID lists of 1000 entries of 20 characters.
    const rooms = Array.from({ length: 1000 }, (_, i) => `!${String(i).padStart(10, '0')}:hs.test`);
    const big = { room: { rooms, not_rooms: rooms, timeline: { rooms }, state: { rooms }, ephemeral: { rooms }, account_data: { rooms } } };
    expect(JSON.stringify(big).length).toBeGreaterThan(MAX_FILTER_JSON_LENGTH);
    expect(errorOf(() => parseFilter(big))?.message).toBe(`Invalid filter: filter must be at most ${MAX_FILTER_JSON_LENGTH} characters of JSON`);
    // Unknown keys count too.
    expect(errorOf(() => parseFilter({ 'org.example': 'x'.repeat(MAX_FILTER_JSON_LENGTH) }))?.errcode).toBe('M_BAD_JSON');
  });
});

describe('matching', () => {
  test('types with wildcards; not_types wins; empty lists match nothing', () => {
    expect(typeMatches('m.*', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.*', 'm.room')).toBe(false);
    expect(typeMatches('*.message', 'm.room.message')).toBe(true);
    expect(typeMatches('m.room.message', 'm.room.messages')).toBe(false);
    expect(typeMatches('m.(x)+', 'm.(x)+')).toBe(true);
    expect(typeMatches('a*a', 'a')).toBe(false);
    expect(typeMatches('*', '')).toBe(true);
    const filter = new EventFilter({ types: ['m.room.*'], not_types: ['m.room.member'] });
    expect(filter.matches(ev('m.room.message'))).toBe(true);
    expect(filter.matches(ev('m.room.member'))).toBe(false);
    expect(filter.matches(ev('org.example'))).toBe(false);
    expect(new EventFilter({ types: [] }).matches(ev('m.room.message'))).toBe(false);
    expect(new EventFilter({ types: [] }).blocksAll).toBe(true);
    expect(new EventFilter({ not_types: ['*'] }).blocksAll).toBe(true);
  });

  /** The reference: "does pattern[i..] match type[j..]", by dynamic programming over every pair. */
  function referenceMatch(pattern: string, type: string): boolean {
    let next = new Array<boolean>(type.length + 1).fill(false);
    next[type.length] = true; // empty pattern matches only the empty rest
    for (let i = pattern.length - 1; i >= 0; i--) {
      const row = new Array<boolean>(type.length + 1).fill(false);
      for (let j = type.length; j >= 0; j--) {
        row[j] = pattern[i] === '*' ? next[j]! || (j < type.length && row[j + 1]!) : j < type.length && pattern[i] === type[j] && next[j + 1]!;
      }
      next = row;
    }
    return next[0]!;
  }

  test('agrees with a reference matcher (property test, small alphabets so matches are common)', () => {
    const char = fc.oneof({ arbitrary: fc.constantFrom('a', 'b'), weight: 8 }, { arbitrary: fc.constantFrom('.', '\\', '(', '\u00e9'), weight: 1 });
    const text = fc.array(char, { maxLength: 14 }).map((cs) => cs.join(''));
    const glob = fc.array(fc.oneof({ arbitrary: char, weight: 3 }, { arbitrary: fc.constant('*'), weight: 2 }), { maxLength: 10 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(glob, text, (pattern, type) => new TypePattern(pattern).matches(type) === referenceMatch(pattern, type)),
      { numRuns: 5000 },
    );
    // And where the pattern is built from the type, so that it matches often.
    fc.assert(
      fc.property(text, fc.array(fc.nat(), { maxLength: 6 }), (type, cuts) => {
        let pattern = type;
        for (const cut of cuts) {
          const at = cut % (pattern.length + 1);
          pattern = pattern.slice(0, at) + '*' + pattern.slice(at + (cut % 3 === 0 ? 1 : 0));
        }
        return new TypePattern(pattern).matches(type) === referenceMatch(pattern, type);
      }),
      { numRuns: 3000 },
    );
  });

  test('the backtracking attack answers at once: many stars over a long run of one letter', () => {
    const type = 'a'.repeat(255);
    const patterns = Array.from({ length: 100 }, (_, i) => '*a'.repeat(2 + (i % 60)) + '*b');
    const filter = new EventFilter({ types: patterns, not_types: patterns });
    for (let i = 0; i < 100; i++) expect(filter.matches(ev(type))).toBe(false);
    expect(new EventFilter({ types: ['*a'.repeat(100) + '*'] }).matches(ev(type))).toBe(true);
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
  test('keeps the listed paths; backslash escapes a dot; missing paths add nothing', () => {
    const event = { type: 't', sender: '@a:hs', content: { body: 'b', 'm.relates_to': { rel_type: 'x' }, other: 1 }, unsigned: { age: 1 } };
    expect(onlyEventFields(event, ['type', 'content.body', 'content.m\\.relates_to.rel_type', 'missing.path', 'unsigned.none'])).toEqual({
      type: 't',
      content: { body: 'b', 'm.relates_to': { rel_type: 'x' } },
    });
    expect(onlyEventFields(event, ['nothing'])).toEqual({});
  });

  test('a whole object and a path below it, in either order, give the whole object and leave the event as it was', () => {
    const event = Object.freeze({ type: 't', content: Object.freeze({ body: 'b', nested: Object.freeze({ x: 1, y: 2 }) }) });
    for (const fields of [['content', 'content.nested.x'], ['content.nested.x', 'content']]) {
      expect(onlyEventFields(event, fields)).toEqual({ content: { body: 'b', nested: { x: 1, y: 2 } } });
    }
    expect(onlyEventFields(event, ['content.nested.x', 'content.nested.z'])).toEqual({ content: { nested: { x: 1 } } });
    expect(onlyEventFields(event, ['content.body.length', 'type.length'])).toEqual({});
  });

  test('the attack: an own __proto__ key in content and the path content.__proto__.membership', () => {
    const content = JSON.parse('{"__proto__":{"membership":"join"},"body":"hi"}');
    const event = { type: 'm.room.message', sender: '@a:hs', content };
    const out = onlyEventFields(event, ['content.__proto__.membership', 'content.constructor.prototype.x', '__proto__.y']) as Record<string, any>;
    expect((Object.prototype as Record<string, unknown>).membership).toBeUndefined();
    expect(({} as Record<string, unknown>).membership).toBeUndefined();
    expect(Object.getPrototypeOf(out.content)).toBe(Object.prototype);
    expect(Object.hasOwn(out.content, '__proto__')).toBe(true);
    expect(out.content.membership).toBeUndefined();
    expect(JSON.stringify(out)).toBe('{"content":{"__proto__":{"membership":"join"}}}');
  });

  test('inherited properties are never read: a path through toString or constructor finds nothing', () => {
    const event = { type: 't', content: { body: 'b' } };
    expect(onlyEventFields(event, ['toString', 'content.constructor', 'content.hasOwnProperty', 'content.__proto__'])).toEqual({});
  });
});
