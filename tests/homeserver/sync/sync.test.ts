// GET /sync: initial and incremental syncs, long-polls, limited timelines, lazy members, invites, leaves, errors.
import { afterEach, describe, expect, test } from 'vitest';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import { startTestServer, type TestServer } from '../harness.js';
import { deviceKeys } from '../e2ee/helpers.js';
import { bodies, enc, ids, query, setup, userOf, type User } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

async function twoUsers(): Promise<{ alice: User; bob: User }> {
  const { server: s, users } = await setup('alice', 'bob');
  server = s;
  return { alice: users[0]!, bob: users[1]! };
}

const typesOf = (events: Array<{ type: string }>) => events.map((e) => e.type);

describe('initial and incremental sync', () => {
  test('initial sync: every joined room with its newest events, state before them, summary and counts', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat', name: 'Room' });
    await bob.join(roomId);
    for (let i = 0; i < 12; i++) await bob.send(roomId, `m${i}`);

    const sync = await alice.sync();
    expect(sync.next_batch).toMatch(/^s\d+_\d+$/);
    const room = sync.rooms.join[roomId];
    expect(room.timeline.events).toHaveLength(10);
    expect(room.timeline.limited).toBe(true);
    expect(bodies(room.timeline.events)).toEqual(['m2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11']);
    expect(room.timeline.events[0].room_id).toBeUndefined();
    // State before the timeline: the room's creation state, bob's join included.
    const state = new Map(room.state.events.map((e: any) => [`${e.type}|${e.state_key}`, e]));
    expect(state.get('m.room.create|')).toBeDefined();
    expect(state.get('m.room.name|')).toMatchObject({ content: { name: 'Room' } });
    expect(state.get(`m.room.member|${bob.userId}`)).toMatchObject({ content: { membership: 'join' } });
    expect(room.summary).toEqual({ 'm.joined_member_count': 2, 'm.invited_member_count': 0 });
    expect(room.unread_notifications).toEqual({ notification_count: 12, highlight_count: 0 });
    expect(sync.rooms.invite).toEqual({});
    expect(sync.rooms.leave).toEqual({});
    expect(sync.device_one_time_keys_count).toEqual({ signed_curve25519: 0 });
    expect(sync.device_unused_fallback_key_types).toEqual([]);
  });

  test('incremental sync returns only what is new; nothing new returns at once with timeout 0', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const first = await alice.sync();

    const idle = await alice.sync({ since: first.next_batch, timeout: 0 });
    expect(idle.rooms.join).toEqual({});
    expect(idle.next_batch).toBe(first.next_batch);

    const sent = await bob.send(roomId, 'hi');
    const next = await alice.sync({ since: first.next_batch });
    expect(Object.keys(next.rooms.join)).toEqual([roomId]);
    const room = next.rooms.join[roomId];
    expect(ids(room.timeline.events)).toEqual([sent]);
    expect(room.timeline.limited).toBe(false);
    expect(room.state.events).toEqual([]);
    expect(room.unread_notifications).toEqual({ notification_count: 1, highlight_count: 0 });
    // The summary only comes when membership changed.
    expect(room.summary).toBeUndefined();

    // The sender's own echo carries its transaction ID, for its own device only.
    const own = await bob.sync({ since: first.next_batch });
    expect(own.rooms.join[roomId].timeline.events[0].unsigned.transaction_id).toMatch(/^t\d+$/);
    expect(room.timeline.events[0].unsigned.transaction_id).toBeUndefined();
  });

  test('a limited incremental sync carries the state changed across the gap, and prev_batch fills the gap', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat', name: 'Before' });
    await bob.join(roomId);
    const filter = { room: { timeline: { limit: 3 } } };
    const first = await alice.sync({ filter });
    const gap: string[] = [];
    gap.push(await bob.send(roomId, 'g0'));
    gap.push(await alice.ok('PUT', `/rooms/${enc(roomId)}/state/m.room.name`, { name: 'After' }).then((r) => r.event_id));
    for (let i = 1; i < 8; i++) gap.push(await bob.send(roomId, `g${i}`));

    const next = await alice.sync({ since: first.next_batch, filter });
    const room = next.rooms.join[roomId];
    expect(room.timeline.limited).toBe(true);
    expect(ids(room.timeline.events)).toEqual(gap.slice(-3));
    expect(room.state.events.map((e: any) => [e.type, e.content.name])).toEqual([['m.room.name', 'After']]);

    const page = await alice.ok('GET', `/rooms/${enc(roomId)}/messages${query({ dir: 'b', from: room.timeline.prev_batch, to: first.next_batch, limit: 50 })}`);
    expect(ids(page.chunk).reverse()).toEqual(gap.slice(0, -3));
  });

  test('full_state=true resends the whole state', async () => {
    const { alice } = await twoUsers();
    const roomId = await alice.createRoom({ name: 'R' });
    const first = await alice.sync();
    await alice.send(roomId, 'x');
    const full = await alice.sync({ since: first.next_batch, full_state: true });
    const room = full.rooms.join[roomId];
    expect(bodies(room.timeline.events)).toEqual(['x']);
    expect(typesOf(room.state.events)).toContain('m.room.create');
    expect(typesOf(room.state.events)).toContain('m.room.name');
  });

  test('history visibility: a user joining a "joined" room does not get earlier messages in sync', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await alice.ok('PUT', `/rooms/${enc(roomId)}/state/m.room.history_visibility`, { history_visibility: 'joined' });
    for (let i = 0; i < 3; i++) await alice.send(roomId, `secret ${i}`);
    await bob.join(roomId);
    await alice.send(roomId, 'welcome');
    const sync = await bob.sync();
    const room = sync.rooms.join[roomId];
    expect(bodies(room.timeline.events)).toEqual(['welcome']);
    expect(room.timeline.events.some((e: any) => e.type === 'm.room.member' && e.state_key === bob.userId)).toBe(true);
  });
});

describe('restarts', () => {
  test('tokens from before a restart on the same storage continue exactly', async () => {
    const storage = createMemoryStorage();
    const before = await startTestServer({ storage });
    const alice = userOf(before, await before.register('alice'));
    const bob = userOf(before, await before.register('bob'));
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    await bob.ok('PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true, timeout: 30_000 });
    const first = await alice.sync();
    await bob.send(roomId, 'while nobody listened');
    await before.close();

    server = await startTestServer({ storage });
    const aliceAgain = userOf(server, { userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId });
    const next = await aliceAgain.sync({ since: first.next_batch });
    const room = next.rooms.join[roomId];
    expect(bodies(room.timeline.events)).toEqual(['while nobody listened']);
    // The typing serial restarted: the room's (empty) typing list is sent again.
    expect(room.ephemeral.events).toContainEqual({ type: 'm.typing', content: { user_ids: [] } });
    const idle = await aliceAgain.sync({ since: next.next_batch, timeout: 0 });
    expect(idle.rooms.join).toEqual({});
    await storage.close();
  });
});

describe('long-polling', () => {
  test('wakes on a message in a joined room, and not on other rooms', async () => {
    const { alice, bob } = await twoUsers();
    const shared = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(shared);
    const bobsOwn = await bob.createRoom({});
    const first = await alice.sync();

    let settled = false;
    const waiting = alice.sync({ since: first.next_batch, timeout: 10_000 }).then((r) => {
      settled = true;
      return r;
    });
    await bob.send(bobsOwn, 'not for alice');
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    const sent = await bob.send(shared, 'for alice');
    const woken = await waiting;
    expect(Object.keys(woken.rooms.join)).toEqual([shared]);
    expect(ids(woken.rooms.join[shared].timeline.events)).toEqual([sent]);
  });

  test('wakes on typing, returns empty when the timeout passes', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const first = await alice.sync();

    const started = Date.now();
    const empty = await alice.sync({ since: first.next_batch, timeout: 50 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(empty.rooms.join).toEqual({});

    const waiting = alice.sync({ since: empty.next_batch, timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 10));
    await bob.ok('PUT', `/rooms/${enc(roomId)}/typing/${enc(bob.userId)}`, { typing: true, timeout: 10_000 });
    const woken = await waiting;
    expect(woken.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [bob.userId] } }]);

    // The next sync has nothing: typing did not change again.
    const after = await alice.sync({ since: woken.next_batch, timeout: 0 });
    expect(after.rooms.join).toEqual({});
  });

  test('a woken sync for something invisible to the user keeps waiting', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const filter = { room: { timeline: { types: ['m.room.message'] }, ephemeral: { types: [] } } };
    const first = await alice.sync({ filter });
    let settled = false;
    const waiting = alice.sync({ since: first.next_batch, timeout: 10_000, filter }).then((r) => {
      settled = true;
      return r;
    });
    await bob.send(roomId, { topic: 'x' }, 'm.room.topic.not.state');
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    await bob.send(roomId, 'now');
    const woken = await waiting;
    expect(bodies(woken.rooms.join[roomId].timeline.events)).toEqual(['now']);
  });

  test('a client long-polling while three users send concurrently sees every event exactly once', async () => {
    const { server: s, users } = await setup('alice', 'bob', 'carol', 'dave');
    server = s;
    const [alice, ...senders] = users as [User, User, User, User];
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    for (const u of senders) await u.join(roomId);
    const filter = { room: { timeline: { limit: 1000 } } };
    let since = (await alice.sync({ filter })).next_batch as string;
    const seen: string[] = [];
    let done = false;
    const polling = (async () => {
      while (!done) {
        const result = await alice.sync({ since, timeout: 200, filter });
        const room = result.rooms.join[roomId];
        if (room) {
          expect(room.timeline.limited).toBe(false);
          seen.push(...ids(room.timeline.events));
        }
        since = result.next_batch;
      }
    })();
    const sent = await Promise.all(
      senders.map(async (u) => {
        const mine: string[] = [];
        for (let i = 0; i < 30; i++) mine.push(await u.send(roomId, `${u.userId} ${i}`));
        return mine;
      }),
    );
    // One more round after the last send, then stop.
    const last = await alice.send(roomId, 'last');
    while (!seen.includes(last)) await new Promise((r) => setTimeout(r, 5));
    done = true;
    await polling;
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(new Set([...sent.flat(), last]));
  });

  test('close() ends a pending long-poll', async () => {
    const { alice } = await twoUsers();
    await alice.createRoom({});
    const first = await alice.sync();
    const waiting = alice.sync({ since: first.next_batch, timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 10));
    await server.homeserver.close();
    const result = await waiting;
    expect(result.rooms.join).toEqual({});
  });
});

describe('lazy-loaded members', () => {
  test('state holds only the senders’ (and own) member events, each sent once per device', async () => {
    const { server: s, users } = await setup('alice', 'bob', 'carol', 'dave');
    server = s;
    const [alice, bob, carol, dave] = users as [User, User, User, User];
    // Named, so the summary has no heroes whose member events would join the state.
    const roomId = await alice.createRoom({ preset: 'public_chat', name: 'Lazy' });
    for (const u of [bob, carol, dave]) await u.join(roomId);
    for (let i = 0; i < 5; i++) await bob.send(roomId, `b${i}`);

    const filter = { room: { state: { lazy_load_members: true }, timeline: { limit: 3 } } };
    const first = await alice.sync({ filter });
    const room = first.rooms.join[roomId];
    const members = room.state.events.filter((e: any) => e.type === 'm.room.member').map((e: any) => e.state_key).sort();
    expect(members).toEqual([alice.userId, bob.userId].sort());
    expect(typesOf(room.state.events)).toContain('m.room.power_levels');
    expect(room.summary['m.joined_member_count']).toBe(4);

    await carol.send(roomId, 'c0');
    await bob.send(roomId, 'b5');
    const second = await alice.sync({ since: first.next_batch, filter });
    const state2 = second.rooms.join[roomId].state.events;
    expect(state2.map((e: any) => e.state_key)).toEqual([carol.userId]);

    await carol.send(roomId, 'c1');
    const third = await alice.sync({ since: second.next_batch, filter });
    expect(third.rooms.join[roomId].state.events).toEqual([]);

    const redundant = { room: { state: { lazy_load_members: true, include_redundant_members: true }, timeline: { limit: 3 } } };
    await carol.send(roomId, 'c2');
    const fourth = await alice.sync({ since: third.next_batch, filter: redundant });
    expect(fourth.rooms.join[roomId].state.events.map((e: any) => e.state_key)).toEqual([carol.userId]);

    // Without a name, the heroes' member events come along so the client can name the room.
    const unnamed = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(unnamed);
    const initial = await alice.sync({ filter });
    expect(initial.rooms.join[unnamed].summary['m.heroes']).toEqual([bob.userId]);
    for (let i = 0; i < 3; i++) await alice.send(unnamed, `a${i}`);
    const later = await alice.sync({ filter });
    const unnamedMembers = later.rooms.join[unnamed].state.events.filter((e: any) => e.type === 'm.room.member');
    expect(unnamedMembers.map((e: any) => e.state_key).sort()).toEqual([alice.userId, bob.userId].sort());
  });
});

describe('invites and leaves', () => {
  test('an invite shows stripped state and the invite event; joining moves the room to join with full state', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ name: 'Secret' });
    const first = await bob.sync();
    await alice.invite(roomId, bob.userId);
    const invited = await bob.sync({ since: first.next_batch });
    const inviteState = invited.rooms.invite[roomId].invite_state.events;
    expect(inviteState.find((e: any) => e.type === 'm.room.name').content.name).toBe('Secret');
    const inviteEvent = inviteState.at(-1);
    expect(inviteEvent).toMatchObject({ type: 'm.room.member', state_key: bob.userId, sender: alice.userId, content: { membership: 'invite' } });
    expect(inviteEvent.unsigned?.invite_room_state).toBeUndefined();
    expect(invited.rooms.join).toEqual({});

    await alice.send(roomId, 'before join');
    await bob.join(roomId);
    const joined = await bob.sync({ since: invited.next_batch });
    expect(joined.rooms.invite).toEqual({});
    const room = joined.rooms.join[roomId];
    expect(typesOf([...room.state.events, ...room.timeline.events])).toContain('m.room.create');
    expect(bodies(room.timeline.events)).toContain('before join');
    expect(room.summary['m.joined_member_count']).toBe(2);
    // Everyone in a newly shared room is a device-list change for bob.
    expect(joined.device_lists.changed).toContain(alice.userId);
  });

  test('leaving: the leave section has the timeline up to the leave; later events never show', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const first = await bob.sync();
    await alice.send(roomId, 'before leave');
    await bob.leave(roomId);
    await alice.send(roomId, 'after leave');
    const next = await bob.sync({ since: first.next_batch });
    expect(next.rooms.join).toEqual({});
    const left = next.rooms.leave[roomId];
    expect(bodies(left.timeline.events)).toEqual(['before leave']);
    expect(left.timeline.events.at(-1)).toMatchObject({ type: 'm.room.member', state_key: bob.userId, content: { membership: 'leave' } });

    // Alice sees bob leave her only shared room.
    const aliceFirst = await alice.sync({ since: first.next_batch.replace(/_\d+$/, '_0') });
    expect(aliceFirst.device_lists.left).toContain(bob.userId);

    // Later syncs do not repeat it; initial syncs show it only with include_leave.
    const later = await bob.sync({ since: next.next_batch, timeout: 0 });
    expect(later.rooms.leave).toEqual({});
    expect((await bob.sync()).rooms.leave).toEqual({});
    const archived = await bob.sync({ filter: { room: { include_leave: true } } });
    expect(bodies(archived.rooms.leave[roomId].timeline.events)).toEqual(['before leave']);

    // Forgotten rooms are gone even from include_leave.
    await bob.ok('POST', `/rooms/${enc(roomId)}/forget`, {});
    expect((await bob.sync({ filter: { room: { include_leave: true } } })).rooms.leave).toEqual({});
  });

  test('a rejected invite shows in leave', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({});
    await alice.invite(roomId, bob.userId);
    const first = await bob.sync();
    expect(Object.keys(first.rooms.invite)).toEqual([roomId]);
    await bob.leave(roomId);
    const next = await bob.sync({ since: first.next_batch });
    expect(next.rooms.leave[roomId].timeline.events.at(-1)).toMatchObject({ type: 'm.room.member', content: { membership: 'leave' } });
  });

  test('include_leave shows one who never joined only their own membership, not the room state (issue 6)', async () => {
    const { alice, bob } = await twoUsers();
    const rejected = await alice.createRoom({ name: 'Private name', topic: 'private topic' });
    await alice.send(rejected, 'private message');
    await alice.invite(rejected, bob.userId);
    await bob.leave(rejected);
    const banned = await alice.createRoom({ preset: 'public_chat', name: 'Banned from here' });
    await alice.ok('POST', `/rooms/${enc(banned)}/ban`, { user_id: bob.userId });

    const archived = await bob.sync({ filter: { room: { include_leave: true, timeline: { limit: 1 } } } });
    for (const roomId of [rejected, banned]) {
      const left = archived.rooms.leave[roomId];
      const seen = [...left.state.events, ...left.timeline.events];
      expect(seen.every((e: { type: string; state_key?: string }) => e.type === 'm.room.member' && e.state_key === bob.userId)).toBe(true);
      // (The invite itself carries the stripped state Bob was shown when invited; nothing beyond that.)
      expect(JSON.stringify(left)).not.toMatch(/private message|Banned from here/);
    }
  });
});

describe('account data, to-device, device lists', () => {
  test('global and room account data arrive once', async () => {
    const { alice } = await twoUsers();
    const roomId = await alice.createRoom({});
    const first = await alice.sync();
    await alice.ok('PUT', `/user/${enc(alice.userId)}/account_data/org.example.setting`, { on: true });
    await alice.ok('PUT', `/user/${enc(alice.userId)}/rooms/${enc(roomId)}/tags/u.work`, { order: 0.5 });
    const next = await alice.sync({ since: first.next_batch });
    expect(next.account_data.events).toEqual([{ type: 'org.example.setting', content: { on: true } }]);
    expect(next.rooms.join[roomId].account_data.events).toEqual([{ type: 'm.tag', content: { tags: { 'u.work': { order: 0.5 } } } }]);
    const again = await alice.sync({ since: next.next_batch, timeout: 0 });
    expect(again.account_data.events).toEqual([]);
    const filtered = await alice.sync({ filter: { account_data: { not_types: ['org.example.*'] } } });
    expect(typesOf(filtered.account_data.events)).not.toContain('org.example.setting');
  });

  test('to-device messages arrive until a later token acknowledges them, then are deleted', async () => {
    const { alice, bob } = await twoUsers();
    const first = await bob.sync();
    await alice.ok('PUT', '/sendToDevice/org.example.ping/tx1', { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } });
    const waiting = await bob.sync({ since: first.next_batch, timeout: 5000 });
    expect(waiting.to_device.events).toEqual([{ sender: alice.userId, type: 'org.example.ping', content: { n: 1 } }]);
    // Not acknowledged yet: the same token gets it again.
    const retry = await bob.sync({ since: first.next_batch });
    expect(retry.to_device.events).toHaveLength(1);
    // Acknowledged by using the later token: gone, also from storage.
    const acked = await bob.sync({ since: waiting.next_batch, timeout: 0 });
    expect(acked.to_device.events).toEqual([]);
    const stored = await server.storage.read((txn) => txn.toDevice.list(bob.userId, bob.deviceId, {}));
    expect(stored).toEqual([]);
    // An initial sync starts from the inbox as it is.
    await alice.ok('PUT', '/sendToDevice/org.example.ping/tx2', { messages: { [bob.userId]: { '*': { n: 2 } } } });
    expect((await bob.sync()).to_device.events.map((e: any) => e.content.n)).toEqual([2]);
  });

  test('a full inbox arrives 100 at a time; next_batch stops at the last one sent, so nothing is skipped', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const first = await bob.sync();
    const sent: string[] = [];
    for (let i = 0; i < 150; i++) {
      await alice.ok('PUT', `/sendToDevice/org.example.ping/bulk${i}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: i } } } });
      if (i === 120) sent.push(await alice.send(roomId, 'in the middle'));
    }
    const one = await bob.sync({ since: first.next_batch });
    expect(one.to_device.events.map((e: any) => e.content.n)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(one.rooms.join[roomId]).toBeUndefined();
    const two = await bob.sync({ since: one.next_batch });
    expect(two.to_device.events.map((e: any) => e.content.n)).toEqual(Array.from({ length: 50 }, (_, i) => i + 100));
    expect(ids(two.rooms.join[roomId].timeline.events)).toEqual(sent);
  });

  test('device list changes of users sharing a room', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const first = await alice.sync();
    const { keys } = await deviceKeys(bob.userId, bob.deviceId, 7);
    await bob.ok('POST', '/keys/upload', { device_keys: keys });
    const next = await alice.sync({ since: first.next_batch });
    expect(next.device_lists.changed).toEqual([bob.userId]);

    // Once bob shares no room with alice, his key changes are none of her business.
    await bob.leave(roomId);
    const afterLeave = await alice.sync({ since: next.next_batch });
    expect(afterLeave.device_lists.left).toEqual([bob.userId]);
    const bobKeys2 = await deviceKeys(bob.userId, bob.deviceId, 8);
    await bob.ok('POST', '/keys/upload', { device_keys: bobKeys2.keys });
    const unrelated = await alice.sync({ since: afterLeave.next_batch, timeout: 0 });
    expect(unrelated.device_lists.changed).toEqual([]);
  });
});

describe('errors', () => {
  test('bad since tokens, filters and parameters', async () => {
    const { alice } = await twoUsers();
    await alice.createRoom({});
    const current = (await alice.sync()).next_batch as string;
    const future = current.replace(/^s(\d+)/, (_, n) => `s${Number(n) + 1000}`);
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ since: 'garbage' }, 400, 'M_INVALID_PARAM'],
      [{ since: 's1' }, 400, 'M_INVALID_PARAM'],
      [{ since: future }, 400, 'M_INVALID_PARAM'],
      [{ filter: '12345' }, 400, 'M_INVALID_PARAM'],
      [{ filter: '{not json' }, 400, 'M_NOT_JSON'],
      [{ filter: '{"room":{"timeline":{"limit":"ten"}}}' }, 400, 'M_BAD_JSON'],
      [{ filter: '{"room":{"rooms":["not-a-room"]}}' }, 400, 'M_BAD_JSON'],
      [{ filter: '{"event_format":"xml"}' }, 400, 'M_BAD_JSON'],
      [{ filter: '{"room":{"timeline":{"limit":-1}}}' }, 400, 'M_BAD_JSON'],
      [{ timeout: 'soon' }, 400, 'M_INVALID_PARAM'],
      [{ full_state: 'yes' }, 400, 'M_INVALID_PARAM'],
      [{ set_presence: 'busy' }, 400, 'M_INVALID_PARAM'],
    ];
    for (const [params, status, errcode] of cases) {
      const response = await alice.call('GET', `/sync${query(params)}`);
      expect({ params, status: response.status, errcode: response.json.errcode }).toEqual({ params, status, errcode });
    }
    expect((await server.call('GET', '/_matrix/client/v3/sync')).json.errcode).toBe('M_MISSING_TOKEN');
  });

  test('a typing serial from before a restart is accepted and resends typing', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await bob.join(roomId);
    const stream = (await alice.sync()).next_batch.split('_')[0];
    const result = await alice.sync({ since: `${stream}_999`, timeout: 0 });
    expect(result.rooms.join[roomId].ephemeral.events).toEqual([{ type: 'm.typing', content: { user_ids: [] } }]);
  });

  test('stored filters are used by ID; another user’s filter ID is unknown', async () => {
    const { alice, bob } = await twoUsers();
    const roomId = await alice.createRoom({});
    for (let i = 0; i < 5; i++) await alice.send(roomId, `m${i}`);
    const { filter_id: filterId } = await alice.ok('POST', `/user/${enc(alice.userId)}/filter`, { room: { timeline: { limit: 2 } } });
    const sync = await alice.sync({ filter: filterId });
    expect(bodies(sync.rooms.join[roomId].timeline.events)).toEqual(['m3', 'm4']);
    expect((await bob.call('GET', `/sync${query({ filter: filterId })}`)).json.errcode).toBe('M_INVALID_PARAM');
  });

  test('filter event_fields and rooms', async () => {
    const { alice } = await twoUsers();
    const roomA = await alice.createRoom({});
    const roomB = await alice.createRoom({});
    await alice.send(roomA, 'a');
    const sync = await alice.sync({ filter: { event_fields: ['type', 'content.body'], room: { rooms: [roomA], timeline: { limit: 1 } } } });
    expect(Object.keys(sync.rooms.join)).toEqual([roomA]);
    expect(sync.rooms.join[roomA].timeline.events).toEqual([{ type: 'm.room.message', content: { body: 'a' } }]);
    const without = await alice.sync({ filter: { room: { not_rooms: [roomA] } } });
    expect(Object.keys(without.rooms.join)).toEqual([roomB]);
  });
});
