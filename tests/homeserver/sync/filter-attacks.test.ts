/**
 * The filter attacks of issue 6, replayed over HTTP: glob patterns that froze
 * a backtracking RegExp (on /messages, /context and inline on /sync), and an
 * `event_fields` path through an own `__proto__` key that polluted
 * Object.prototype. Under the old code the first test never finishes (one
 * pattern alone is C(255, 12) ways to place its stars) and the second leaves
 * Object.prototype.membership set.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, query, setup, type User } from './helpers.js';

const LONG_TYPE = 'a'.repeat(255);
/** 100 patterns of 3 to 62 stars, none of which can match a run of 'a's (each ends in 'b'). */
const ATTACK_TYPES = Array.from({ length: 100 }, (_, i) => '*a'.repeat(2 + (i % 60)) + '*b');

let server: TestServer;
let alice: User;
let roomId: string;
let longEventId: string;

beforeAll(async () => {
  const started = await setup('alice');
  server = started.server;
  alice = started.users[0]!;
  roomId = await alice.createRoom({ preset: 'private_chat' });
  longEventId = await alice.send(roomId, { n: 1 }, LONG_TYPE);
  await alice.send(roomId, 'after');
});
afterAll(async () => server?.close());
afterEach(() => {
  // If an attack ever succeeds again, fail here rather than in every test that follows.
  const polluted = Object.hasOwn(Object.prototype, 'membership');
  delete (Object.prototype as Record<string, unknown>).membership;
  expect(polluted).toBe(false);
});

describe('glob patterns over a long type answer at once', () => {
  test('/messages', async () => {
    const none = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 50, filter: { types: ATTACK_TYPES } })}`);
    expect(none.chunk).toEqual([]);
    const some = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 50, filter: { types: ['*a*a*a*a*a*a*a*a*a*a*a*a*'] } })}`);
    expect(some.chunk.map((e: { event_id: string }) => e.event_id)).toEqual([longEventId]);
    const notTypes = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 50, filter: { not_types: ATTACK_TYPES } })}`);
    expect(notTypes.chunk.map((e: { event_id: string }) => e.event_id)).toContain(longEventId);
  });

  test('/context', async () => {
    const context = await alice.ok('GET', `/rooms/${enc(roomId)}/context/${enc(longEventId)}${query({ limit: 10, filter: { types: ATTACK_TYPES } })}`);
    expect(context.event.event_id).toBe(longEventId);
    expect([...context.events_before, ...context.events_after]).toEqual([]);
  });

  test('/sync with an inline filter', async () => {
    const synced = await alice.sync({ filter: { room: { timeline: { types: ATTACK_TYPES, limit: 50 }, state: { types: ATTACK_TYPES } } } });
    const room = synced.rooms.join[roomId];
    expect(room.timeline.events).toEqual([]);
  });
});

describe('event_fields', () => {
  test('the path content.__proto__.membership over content with an own __proto__ key leaves Object.prototype alone', async () => {
    const raw = '{"msgtype":"m.text","body":"hi","__proto__":{"membership":"join"}}';
    const sent = await server.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/proto1`, raw, alice.accessToken, { 'content-type': 'application/json' });
    if (sent.status !== 200) {
      // The JSON ingress may refuse such keys outright; then the attack cannot be mounted over HTTP
      // (onlyEventFields itself is tested with it in filters.test.ts).
      expect(sent.status).toBe(400);
      return;
    }
    const filter = { event_fields: ['event_id', 'content.__proto__.membership', 'content.constructor.prototype.membership'], room: { timeline: { limit: 1 } } };
    const response = await server.call('GET', `/_matrix/client/v3/sync${query({ filter })}`, undefined, alice.accessToken);
    expect(response.status).toBe(200);
    expect(Object.hasOwn(Object.prototype, 'membership')).toBe(false);
    expect(({} as Record<string, unknown>).membership).toBeUndefined();
    const [event] = response.json.rooms.join[roomId].timeline.events;
    expect(event.event_id).toBe(sent.json.event_id);
    // The field comes back as an ordinary own key of content, as JSON.
    expect(Object.hasOwn(event.content, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(event.content, '__proto__')?.value).toEqual({ membership: 'join' });
    expect(Object.keys(event.content)).toEqual(['__proto__']);
  });
});
