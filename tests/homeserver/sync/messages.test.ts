// GET /rooms/{roomId}/messages and /context: exact pagination (no gaps, no duplicates), filters, access.
import { afterEach, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { bodies, enc, ids, query, setup, type User } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

/** Every event of the room in topological order, straight from storage. */
async function allEventIds(s: TestServer, roomId: string): Promise<string[]> {
  const records = await s.storage.read((txn) => txn.timeline.topological(roomId, { dir: 'f' }));
  return records.map((r) => r.eventId);
}

/** Pages through /messages until `end` is absent; returns every page. */
async function paginate(user: User, roomId: string, params: Record<string, string | number | object | undefined>) {
  const pages: any[] = [];
  let from = params.from as string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await user.ok('GET', `/rooms/${enc(roomId)}/messages${query({ ...params, from })}`);
    pages.push(page);
    if (page.end === undefined) return pages;
    expect(page.end).not.toBe(from);
    from = page.end;
  }
  throw new Error('pagination did not end');
}

async function roomWithMessages(count: number): Promise<{ alice: User; bob: User; roomId: string }> {
  const { server: s, users } = await setup('alice', 'bob');
  server = s;
  const [alice, bob] = users as [User, User];
  const roomId = await alice.createRoom({ preset: 'public_chat' });
  await bob.join(roomId);
  for (let i = 0; i < count; i++) await (i % 3 === 0 ? bob : alice).send(roomId, `message ${i}`);
  return { alice, bob, roomId };
}

describe('GET /messages pagination', () => {
  test('250 messages, limit 7: back from the sync prev_batch to the create event, then forwards to the end', async () => {
    const { alice, roomId } = await roomWithMessages(250);
    const everything = await allEventIds(server, roomId);

    const sync = await alice.sync({ filter: { room: { timeline: { limit: 5 } } } });
    const timeline = sync.rooms.join[roomId].timeline;
    expect(timeline.limited).toBe(true);
    expect(timeline.events).toHaveLength(5);

    const back = await paginate(alice, roomId, { dir: 'b', from: timeline.prev_batch, limit: 7 });
    for (const page of back.slice(0, -1)) expect(page.chunk).toHaveLength(7);
    const older = back.flatMap((p) => ids(p.chunk)).reverse();
    const seen = [...older, ...ids(timeline.events)];
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(everything);
    expect(back.at(-1).chunk.at(-1)?.type ?? back.at(-2).chunk.at(-1).type).toBe('m.room.create');

    // Forwards from the very start (no `from`) meets the same sequence.
    const forward = await paginate(alice, roomId, { dir: 'f', limit: 7 });
    expect(forward.flatMap((p) => ids(p.chunk))).toEqual(everything);

    // And backwards from the end without a token, too.
    const fromEnd = await paginate(alice, roomId, { dir: 'b', limit: 7 });
    expect(fromEnd.flatMap((p) => ids(p.chunk)).reverse()).toEqual(everything);
  });

  test('a forward page started from a backward page’s end re-reads exactly the events behind it', async () => {
    const { alice, roomId } = await roomWithMessages(20);
    const first = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 5 })}`);
    const second = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 5, from: first.end })}`);
    const forward = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'f', limit: 5, from: second.end })}`);
    expect(ids(forward.chunk)).toEqual(ids(second.chunk).reverse());
    // `to` stops a walk exactly at a token.
    const bounded = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 50, to: second.end })}`);
    expect(ids(bounded.chunk)).toEqual([...ids(first.chunk), ...ids(second.chunk)]);
    expect(bounded.end).toBeUndefined();
  });

  test('a sync next_batch works as a from token', async () => {
    const { alice, roomId } = await roomWithMessages(6);
    const sync = await alice.sync();
    await alice.send(roomId, 'after the sync');
    const page = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 3, from: sync.next_batch })}`);
    expect(bodies(page.chunk)).toEqual(['message 5', 'message 4', 'message 3']);
    const forward = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'f', limit: 3, from: sync.next_batch })}`);
    expect(bodies(forward.chunk)).toEqual(['after the sync']);
    expect(forward.end).toBeUndefined();
  });

  test('filters skip events without breaking the walk; lazy-loaded members come in state', async () => {
    const { alice, bob, roomId } = await roomWithMessages(30);
    const filter = { types: ['m.room.message'], senders: [bob.userId], lazy_load_members: true };
    const pages = await paginate(alice, roomId, { dir: 'b', limit: 4, filter });
    const chunk = pages.flatMap((p) => p.chunk);
    expect(chunk.every((e: any) => e.sender === bob.userId && e.type === 'm.room.message')).toBe(true);
    expect(bodies(chunk).reverse()).toEqual(Array.from({ length: 10 }, (_, i) => `message ${i * 3}`));
    // Only the last page may be short; none is empty but the last.
    for (const page of pages.slice(0, -1)) expect(page.chunk).toHaveLength(4);
    expect(pages[0].state.map((e: any) => e.state_key)).toEqual([bob.userId]);

    const notTypes = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 100, filter: { not_types: ['m.room.*'] } })}`);
    expect(notTypes.chunk).toEqual([]);
    expect(notTypes.end).toBeUndefined();

    const withUrl = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 100, filter: { contains_url: true } })}`);
    expect(withUrl.chunk).toEqual([]);
  });

  test('a user who left sees history up to their leave, and nothing after', async () => {
    const { alice, bob, roomId } = await roomWithMessages(4);
    await bob.leave(roomId);
    await alice.send(roomId, 'after bob left');
    const pages = await paginate(bob, roomId, { dir: 'b', limit: 3 });
    const chunk = pages.flatMap((p) => p.chunk);
    expect(chunk[0]).toMatchObject({ type: 'm.room.member', state_key: bob.userId, content: { membership: 'leave' } });
    expect(bodies(chunk)).not.toContain('after bob left');
    expect(bodies(chunk).reverse()).toEqual(['message 0', 'message 1', 'message 2', 'message 3']);
    const forward = await paginate(bob, roomId, { dir: 'f', limit: 50 });
    expect(bodies(forward.flatMap((p) => p.chunk))).not.toContain('after bob left');
  });

  test('history_visibility joined hides what came before the join', async () => {
    const { server: s, users } = await setup('alice', 'bob');
    server = s;
    const [alice, bob] = users as [User, User];
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await alice.ok('PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility`, { history_visibility: 'joined' });
    await alice.send(roomId, 'before bob');
    await bob.join(roomId);
    await alice.send(roomId, 'after bob');
    const pages = await paginate(bob, roomId, { dir: 'b', limit: 2 });
    const chunk = pages.flatMap((p) => p.chunk);
    expect(bodies(chunk)).toEqual(['after bob']);
    // Events from while the room was still "shared" (its creation, up to the change itself) stay visible.
    expect(chunk.map((e: any) => e.type)).toEqual([
      'm.room.message',
      'm.room.member',
      'm.room.history_visibility',
      'm.room.history_visibility',
      'm.room.join_rules',
      'm.room.power_levels',
      'm.room.member',
      'm.room.create',
    ]);
    expect(chunk[2].content.history_visibility).toBe('joined');
    // alice, joined throughout, sees everything.
    const all = (await paginate(alice, roomId, { dir: 'b', limit: 100 })).flatMap((p) => p.chunk);
    expect(bodies(all)).toEqual(['after bob', 'before bob']);
  });

  test('refusals: not in the room, bad tokens, bad dir, bad limit, bad filter', async () => {
    const { server: s, users } = await setup('alice', 'eve');
    server = s;
    const [alice, eve] = users as [User, User];
    const roomId = await alice.createRoom({});
    const path = (params: Record<string, string>) => `/rooms/${enc(roomId)}/messages${query(params)}`;
    expect(await eve.call('GET', path({ dir: 'b' }))).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect(await eve.call('GET', `/rooms/${enc('!nope:hs.test')}/messages?dir=b`)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
    expect(await alice.call('GET', path({ dir: 'b', from: 'garbage' }))).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.call('GET', path({ dir: 'b', to: 't1' }))).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.call('GET', path({ dir: 'x' }))).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.call('GET', path({ dir: 'b', limit: '-1' }))).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.call('GET', path({ dir: 'b', limit: 'ten' }))).toMatchObject({ status: 400, json: { errcode: 'M_INVALID_PARAM' } });
    expect(await alice.call('GET', path({ dir: 'b', filter: '{nope' }))).toMatchObject({ status: 400, json: { errcode: 'M_NOT_JSON' } });
    expect(await alice.call('GET', path({ dir: 'b', filter: '{"types":"m.room.message"}' }))).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
    expect(await alice.call('GET', path({ dir: 'b', filter: '{"senders":["not a user"]}' }))).toMatchObject({ status: 400, json: { errcode: 'M_BAD_JSON' } });
  });
});

describe('GET /context', () => {
  test('events before and after, tokens that continue exactly, state at the last event', async () => {
    const { alice, bob, roomId } = await roomWithMessages(20);
    const everything = await allEventIds(server, roomId);
    const page = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 10 })}`);
    const middle = page.chunk[5];
    const context = await bob.ok('GET', `/rooms/${enc(roomId)}/context/${enc(middle.event_id)}?limit=6`);
    expect(context.event.event_id).toBe(middle.event_id);
    expect(context.events_before).toHaveLength(3);
    expect(context.events_after).toHaveLength(3);
    const at = everything.indexOf(middle.event_id);
    expect(ids(context.events_before)).toEqual(everything.slice(at - 3, at).reverse());
    expect(ids(context.events_after)).toEqual(everything.slice(at + 1, at + 4));
    expect(context.state.some((e: any) => e.type === 'm.room.create')).toBe(true);

    const before = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', limit: 2, from: context.start })}`);
    expect(ids(before.chunk)).toEqual(everything.slice(at - 5, at - 3).reverse());
    const after = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'f', limit: 2, from: context.end })}`);
    expect(ids(after.chunk)).toEqual(everything.slice(at + 4, at + 6));

    const lazy = await alice.ok('GET', `/rooms/${enc(roomId)}/context/${enc(middle.event_id)}${query({ limit: 0, filter: { lazy_load_members: true } })}`);
    expect(lazy.events_before).toEqual([]);
    expect(lazy.state.map((e: any) => e.state_key)).toEqual([middle.sender]);
  });

  test('unknown events and events of other rooms are 404; strangers get 403', async () => {
    const { server: s, users } = await setup('alice', 'eve');
    server = s;
    const [alice, eve] = users as [User, User];
    const roomId = await alice.createRoom({});
    const other = await alice.createRoom({});
    const elsewhere = await alice.send(other, 'elsewhere');
    const mine = await alice.send(roomId, 'here');
    expect(await alice.call('GET', `/rooms/${enc(roomId)}/context/${enc('$nope')}`)).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });
    expect(await alice.call('GET', `/rooms/${enc(roomId)}/context/${enc(elsewhere)}`)).toMatchObject({ status: 404, json: { errcode: 'M_NOT_FOUND' } });
    expect(await eve.call('GET', `/rooms/${enc(roomId)}/context/${enc(mine)}`)).toMatchObject({ status: 403, json: { errcode: 'M_FORBIDDEN' } });
  });
});
