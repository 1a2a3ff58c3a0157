import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };
const ROOM = '!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';

beforeEach(async () => {
  server = await accountsServer();
  alice = await server.register('alice');
  bob = await server.register('bob');
});
afterEach(async () => {
  await server.close();
});

describe('profiles', () => {
  it('sets and reads display name and avatar', async () => {
    expect((await server.call('PUT', `${V3}/profile/${alice.userId}/displayname`, { displayname: 'Alice' }, alice.accessToken)).status).toBe(200);
    expect((await server.call('PUT', `${V3}/profile/${alice.userId}/avatar_url`, { avatar_url: 'mxc://hs.test/abc' }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', `${V3}/profile/${alice.userId}`)).json).toEqual({ displayname: 'Alice', avatar_url: 'mxc://hs.test/abc' });
    expect((await server.call('GET', `${V3}/profile/${alice.userId}/displayname`)).json).toEqual({ displayname: 'Alice' });
    expect((await server.call('GET', `/_matrix/client/r0/profile/${alice.userId}/avatar_url`)).json).toEqual({ avatar_url: 'mxc://hs.test/abc' });
    // An empty string clears a field.
    await server.call('PUT', `${V3}/profile/${alice.userId}/avatar_url`, { avatar_url: '' }, alice.accessToken);
    expect((await server.call('GET', `${V3}/profile/${alice.userId}/avatar_url`)).json).toEqual({});
  });

  it('lets nobody else change a profile, and knows no unknown users', async () => {
    const other = await server.call('PUT', `${V3}/profile/${alice.userId}/displayname`, { displayname: 'Mallory' }, bob.accessToken);
    expect([other.status, other.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    for (const userId of ['@nobody:hs.test', '@alice:elsewhere.test']) {
      const res = await server.call('GET', `${V3}/profile/${encodeURIComponent(userId)}`);
      expect([res.status, res.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
    }
  });
});

describe('account data', () => {
  it('stores global and per-room data for its owner only', async () => {
    expect((await server.call('PUT', `${V3}/user/${alice.userId}/account_data/org.example.config`, { theme: 'dark' }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', `${V3}/user/${alice.userId}/account_data/org.example.config`, undefined, alice.accessToken)).json).toEqual({ theme: 'dark' });
    const room = `${V3}/user/${alice.userId}/rooms/${encodeURIComponent(ROOM)}/account_data/org.example.room`;
    expect((await server.call('PUT', room, { pinned: true }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', room, undefined, alice.accessToken)).json).toEqual({ pinned: true });

    const missing = await server.call('GET', `${V3}/user/${alice.userId}/account_data/org.example.none`, undefined, alice.accessToken);
    expect([missing.status, missing.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const foreign = await server.call('GET', `${V3}/user/${alice.userId}/account_data/org.example.config`, undefined, bob.accessToken);
    expect([foreign.status, foreign.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });

  it('puts each change on the stream for /sync', async () => {
    const before = await server.storage.read((txn) => txn.stream.current());
    await server.call('PUT', `${V3}/user/${alice.userId}/account_data/m.direct`, { [bob.userId]: [ROOM] }, alice.accessToken);
    const changes = await server.storage.read((txn) => txn.accountData.changes(alice.userId, { dir: 'f', from: before }));
    expect(changes.map((c) => c.type)).toEqual(['m.direct']);
  });
});

describe('tags', () => {
  const tags = () => `${V3}/user/${alice.userId}/rooms/${encodeURIComponent(ROOM)}/tags`;

  it('adds, lists and removes tags as m.tag room account data', async () => {
    expect((await server.call('GET', tags(), undefined, alice.accessToken)).json).toEqual({ tags: {} });
    await server.call('PUT', `${tags()}/m.favourite`, { order: 0.25 }, alice.accessToken);
    await server.call('PUT', `${tags()}/u.work`, {}, alice.accessToken);
    expect((await server.call('GET', tags(), undefined, alice.accessToken)).json).toEqual({ tags: { 'm.favourite': { order: 0.25 }, 'u.work': {} } });
    const stored = await server.storage.read((txn) => txn.accountData.get(alice.userId, 'm.tag', ROOM));
    expect(stored?.content).toEqual({ tags: { 'm.favourite': { order: 0.25 }, 'u.work': {} } });
    await server.call('DELETE', `${tags()}/u.work`, undefined, alice.accessToken);
    expect((await server.call('GET', tags(), undefined, alice.accessToken)).json).toEqual({ tags: { 'm.favourite': { order: 0.25 } } });
    expect((await server.call('DELETE', `${tags()}/u.never`, undefined, alice.accessToken)).status).toBe(200);
  });
});

describe('filters', () => {
  it('stores a filter and gives it back to its owner', async () => {
    const filter = { room: { timeline: { limit: 10 }, state: { lazy_load_members: true } }, presence: { not_types: ['*'] } };
    const created = await server.call('POST', `${V3}/user/${alice.userId}/filter`, filter, alice.accessToken);
    expect(created.status).toBe(200);
    expect(created.json.filter_id).toEqual(expect.any(String));
    const read = await server.call('GET', `${V3}/user/${alice.userId}/filter/${created.json.filter_id}`, undefined, alice.accessToken);
    expect(read.json).toEqual(filter);
    const foreign = await server.call('GET', `${V3}/user/${alice.userId}/filter/${created.json.filter_id}`, undefined, bob.accessToken);
    expect([foreign.status, foreign.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const bobs = await server.call('GET', `${V3}/user/${bob.userId}/filter/${created.json.filter_id}`, undefined, bob.accessToken);
    expect([bobs.status, bobs.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});

/** Creates a room as `creator` (public or private) and has the others join it; returns its ID. */
async function roomWith(creator: { accessToken: string }, preset: 'public_chat' | 'private_chat', ...joiners: { userId: string; accessToken: string }[]) {
  const created = await server.call('POST', `${V3}/createRoom`, { preset, invite: preset === 'private_chat' ? joiners.map((j) => j.userId) : [] }, creator.accessToken);
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  const roomId = created.json.room_id as string;
  for (const joiner of joiners) expect((await server.call('POST', `${V3}/join/${encodeURIComponent(roomId)}`, {}, joiner.accessToken)).status).toBe(200);
  return roomId;
}

describe('presence', () => {
  it('starts online and follows what the user sets, for people who share a room', async () => {
    await roomWith(alice, 'private_chat', bob);
    const initial = await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, bob.accessToken);
    expect(initial.json).toMatchObject({ presence: 'online', currently_active: true });
    await server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'unavailable', status_msg: 'lunch' }, alice.accessToken);
    const after = await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, bob.accessToken);
    expect(after.json).toMatchObject({ presence: 'unavailable', status_msg: 'lunch', currently_active: false, last_active_ago: expect.any(Number) });
    const other = await server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'offline' }, bob.accessToken);
    expect([other.status, other.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });

  it('is not shown to strangers, and a stranger cannot tell whether the user exists (the attack of issue 6)', async () => {
    const carol = await server.register('carol');
    await server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'unavailable', status_msg: 'at the dentist' }, alice.accessToken);
    for (const target of [alice.userId, '@nobody:hs.test', '@someone:elsewhere.test']) {
      const res = await server.call('GET', `${V3}/presence/${encodeURIComponent(target)}/status`, undefined, carol.accessToken);
      expect([target, res.status, res.json.errcode]).toEqual([target, 403, 'M_FORBIDDEN']);
    }
    // Users always see their own; sharing a room, even a public one, is what opens it to others.
    expect((await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, alice.accessToken)).json.status_msg).toBe('at the dentist');
    const roomId = await roomWith(alice, 'public_chat', carol);
    expect((await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, carol.accessToken)).json.status_msg).toBe('at the dentist');
    // Leaving the room closes it again.
    await server.call('POST', `${V3}/rooms/${encodeURIComponent(roomId)}/leave`, {}, carol.accessToken);
    expect((await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, carol.accessToken)).status).toBe(403);
  });

  it('bounds status_msg at 1,024 characters', async () => {
    const put = (status_msg: string) => server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'online', status_msg }, alice.accessToken);
    expect((await put('x'.repeat(1024))).status).toBe(200);
    const tooLong = await put('x'.repeat(1025));
    expect([tooLong.status, tooLong.json.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect((await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, alice.accessToken)).json.status_msg).toHaveLength(1024);
  });
});

describe('user directory', () => {
  it('finds people who share a room, by user ID or display name, case-insensitively', async () => {
    await roomWith(alice, 'private_chat', bob);
    await server.call('PUT', `${V3}/profile/${bob.userId}/displayname`, { displayname: 'Robert Tables' }, bob.accessToken);
    const byName = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'tables' }, alice.accessToken);
    expect(byName.json).toEqual({ limited: false, results: [{ user_id: bob.userId, display_name: 'Robert Tables' }] });
    const byId = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'ALI' }, alice.accessToken);
    expect(byId.json.results.map((r: { user_id: string }) => r.user_id)).toEqual([alice.userId]);
    const limited = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'hs.test', limit: 1 }, alice.accessToken);
    expect(limited.json.limited).toBe(true);
    expect(limited.json.results).toHaveLength(1);
  });

  it('does not list every local user: strangers only when they are in a public room (the attack of issue 6)', async () => {
    const carol = await server.register('carol');
    const dave = await server.register('dave');
    const search = async (who: { accessToken: string }, term: string) =>
      (await server.call('POST', `${V3}/user_directory/search`, { search_term: term }, who.accessToken)).json.results.map((r: { user_id: string }) => r.user_id);
    // Nobody shares a room yet: only oneself.
    expect(await search(carol, 'hs.test')).toEqual([carol.userId]);
    // Alice and Bob in a private room: visible to each other, not to Carol.
    await roomWith(alice, 'private_chat', bob);
    expect(await search(carol, 'hs.test')).toEqual([carol.userId]);
    expect(await search(alice, 'hs.test')).toEqual([alice.userId, bob.userId]);
    // Dave's public room makes its members findable by anyone.
    await roomWith(dave, 'public_chat');
    expect(await search(carol, 'hs.test')).toEqual([carol.userId, dave.userId]);
  });

  it('bounds the search term and the limit', async () => {
    const search = (body: Record<string, unknown>) => server.call('POST', `${V3}/user_directory/search`, body, alice.accessToken);
    expect((await search({ search_term: 'a'.repeat(256) })).status).toBe(200);
    const long = await search({ search_term: 'a'.repeat(257) });
    expect([long.status, long.json.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const negative = await search({ search_term: 'a', limit: -1 });
    expect([negative.status, negative.json.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect((await search({ search_term: 'a', limit: 1e6 })).status).toBe(200);
  });
});

describe('what clients ask at startup', () => {
  it('answers turnServer, 3pids and pushers with "none"', async () => {
    expect((await server.call('GET', `${V3}/voip/turnServer`, undefined, alice.accessToken)).json).toEqual({});
    expect((await server.call('GET', `${V3}/account/3pid`, undefined, alice.accessToken)).json).toEqual({ threepids: [] });
    expect((await server.call('GET', `${V3}/pushers`, undefined, alice.accessToken)).json).toEqual({ pushers: [] });
  });
});
