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

describe('presence', () => {
  it('starts online and follows what the user sets', async () => {
    const initial = await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, bob.accessToken);
    expect(initial.json).toMatchObject({ presence: 'online', currently_active: true });
    await server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'unavailable', status_msg: 'lunch' }, alice.accessToken);
    const after = await server.call('GET', `${V3}/presence/${alice.userId}/status`, undefined, bob.accessToken);
    expect(after.json).toMatchObject({ presence: 'unavailable', status_msg: 'lunch', currently_active: false, last_active_ago: expect.any(Number) });
    const other = await server.call('PUT', `${V3}/presence/${alice.userId}/status`, { presence: 'offline' }, bob.accessToken);
    expect([other.status, other.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const unknown = await server.call('GET', `${V3}/presence/${encodeURIComponent('@nobody:hs.test')}/status`, undefined, bob.accessToken);
    expect([unknown.status, unknown.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('user directory', () => {
  it('finds local users by user ID or display name, case-insensitively', async () => {
    await server.call('PUT', `${V3}/profile/${bob.userId}/displayname`, { displayname: 'Robert Tables' }, bob.accessToken);
    const byName = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'tables' }, alice.accessToken);
    expect(byName.json).toEqual({ limited: false, results: [{ user_id: bob.userId, display_name: 'Robert Tables' }] });
    const byId = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'ALI' }, alice.accessToken);
    expect(byId.json.results.map((r: { user_id: string }) => r.user_id)).toEqual([alice.userId]);
    const limited = await server.call('POST', `${V3}/user_directory/search`, { search_term: 'hs.test', limit: 1 }, alice.accessToken);
    expect(limited.json.limited).toBe(true);
    expect(limited.json.results).toHaveLength(1);
  });
});

describe('what clients ask at startup', () => {
  it('answers turnServer, 3pids and pushers with "none"', async () => {
    expect((await server.call('GET', `${V3}/voip/turnServer`, undefined, alice.accessToken)).json).toEqual({});
    expect((await server.call('GET', `${V3}/account/3pid`, undefined, alice.accessToken)).json).toEqual({ threepids: [] });
    expect((await server.call('GET', `${V3}/pushers`, undefined, alice.accessToken)).json).toEqual({ pushers: [] });
  });
});
