// Aliases and the public room directory.
import { afterEach, describe, expect, test } from 'vitest';
import type { TestServer } from '../harness.js';
import { enc, expectUnchanged, setup } from './helpers.js';

let server: TestServer;
afterEach(async () => server?.close());

describe('room aliases', () => {
  test('create, resolve, list, delete; canonical alias follows a deletion', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const roomId = await alice!.createRoom({ preset: 'public_chat', room_alias_name: 'main' });
    const alias = '#extra:hs.test';
    expect((await alice!.call('PUT', `/directory/room/${enc(alias)}`, { room_id: roomId })).status).toBe(200);
    // Resolving needs no access token.
    const resolved = await s.call('GET', `/_matrix/client/v3/directory/room/${enc(alias)}`);
    expect(resolved).toMatchObject({ status: 200, json: { room_id: roomId, servers: ['hs.test'] } });
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/aliases`)).json.aliases.sort()).toEqual(['#extra:hs.test', '#main:hs.test']);

    await alice!.putState(roomId, 'm.room.canonical_alias', '', { alias: '#main:hs.test', alt_aliases: [alias] });
    await bob!.call('POST', `/rooms/${enc(roomId)}/join`, {});

    await expectUnchanged(s.storage, async () => {
      const cases: [typeof alice, string, string, unknown, number, string][] = [
        [alice, 'PUT', `/directory/room/${enc(alias)}`, { room_id: roomId }, 409, 'M_UNKNOWN'],
        [alice, 'PUT', `/directory/room/${enc('#x:elsewhere.test')}`, { room_id: roomId }, 400, 'M_INVALID_PARAM'],
        [alice, 'PUT', `/directory/room/${enc('no-hash:hs.test')}`, { room_id: roomId }, 400, 'M_INVALID_PARAM'],
        [alice, 'PUT', `/directory/room/${enc('#new:hs.test')}`, {}, 400, 'M_MISSING_PARAM'],
        [alice, 'PUT', `/directory/room/${enc('#new:hs.test')}`, { room_id: 12 }, 400, 'M_BAD_JSON'],
        [alice, 'PUT', `/directory/room/${enc('#new:hs.test')}`, { room_id: 'room' }, 400, 'M_INVALID_PARAM'],
        [alice, 'PUT', `/directory/room/${enc('#new:hs.test')}`, { room_id: '!unknown:hs.test' }, 403, 'M_FORBIDDEN'],
        [alice, 'GET', `/directory/room/${enc('#missing:hs.test')}`, undefined, 404, 'M_NOT_FOUND'],
        [alice, 'DELETE', `/directory/room/${enc('#missing:hs.test')}`, undefined, 404, 'M_NOT_FOUND'],
        // Bob neither created the alias nor may send m.room.canonical_alias.
        [bob, 'DELETE', `/directory/room/${enc(alias)}`, undefined, 403, 'M_FORBIDDEN'],
      ];
      for (const [who, method, path, body, status, errcode] of cases) {
        const res = await who!.call(method, path, body);
        expect({ path, status: res.status, errcode: res.json?.errcode }).toEqual({ path, status, errcode });
      }
    });

    expect((await alice!.call('DELETE', `/directory/room/${enc(alias)}`)).status).toBe(200);
    expect((await alice!.call('GET', `/directory/room/${enc(alias)}`)).status).toBe(404);
    expect((await alice!.call('GET', `/rooms/${enc(roomId)}/state/m.room.canonical_alias`)).json).toEqual({ alias: '#main:hs.test' });
    // Non-members may not list a private room's aliases.
    const [carol] = await (await import('./helpers.js')).withUsers(s, 'carol');
    expect(await carol!.call('GET', `/rooms/${enc(roomId)}/aliases`)).toMatchObject({ status: 403 });
  });
});

describe('public room directory', () => {
  test('publishing, listing with paging and search, refusals', async () => {
    const { server: s, clients: [alice, bob] } = await setup('alice', 'bob');
    server = s;
    const big = await alice!.createRoom({ visibility: 'public', name: 'Big room', topic: 'Lots of people', room_alias_name: 'big' });
    await bob!.call('POST', `/rooms/${enc(big)}/join`, {});
    const small = await alice!.createRoom({ visibility: 'public', name: 'Small room' });
    const hidden = await alice!.createRoom({ preset: 'public_chat', name: 'Hidden' });

    const all = await s.call('GET', '/_matrix/client/v3/publicRooms');
    expect(all.status).toBe(200);
    expect(all.json.total_room_count_estimate).toBe(2);
    expect(all.json.chunk).toEqual([
      {
        room_id: big,
        name: 'Big room',
        topic: 'Lots of people',
        canonical_alias: '#big:hs.test',
        num_joined_members: 2,
        world_readable: false,
        guest_can_join: false,
        join_rule: 'public',
      },
      { room_id: small, name: 'Small room', num_joined_members: 1, world_readable: false, guest_can_join: false, join_rule: 'public' },
    ]);

    const page1 = await alice!.call('GET', '/publicRooms?limit=1');
    expect(page1.json.chunk.map((r: any) => r.room_id)).toEqual([big]);
    const page2 = await alice!.call('GET', `/publicRooms?limit=1&since=${page1.json.next_batch}`);
    expect(page2.json.chunk.map((r: any) => r.room_id)).toEqual([small]);
    expect(page2.json.next_batch).toBeUndefined();
    expect(page2.json.prev_batch).toBeDefined();

    const searched = await alice!.call('POST', '/publicRooms', { filter: { generic_search_term: 'small' }, limit: 10 });
    expect(searched.json.chunk.map((r: any) => r.room_id)).toEqual([small]);

    // Publishing and unpublishing.
    expect((await alice!.call('GET', `/directory/list/room/${enc(hidden)}`)).json).toEqual({ visibility: 'private' });
    expect((await alice!.call('PUT', `/directory/list/room/${enc(hidden)}`, { visibility: 'public' })).status).toBe(200);
    expect((await s.call('GET', `/_matrix/client/v3/directory/list/room/${enc(hidden)}`)).json).toEqual({ visibility: 'public' });
    expect((await alice!.call('PUT', `/directory/list/room/${enc(small)}`, { visibility: 'private' })).status).toBe(200);
    const after = await alice!.call('POST', '/publicRooms', {});
    expect(after.json.chunk.map((r: any) => r.room_id).sort()).toEqual([big, hidden].sort());

    await expectUnchanged(s.storage, async () => {
      const cases: [typeof alice, string, string, unknown, number, string][] = [
        [bob, 'PUT', `/directory/list/room/${enc(big)}`, { visibility: 'private' }, 403, 'M_FORBIDDEN'],
        [alice, 'PUT', `/directory/list/room/${enc(big)}`, { visibility: 'secret' }, 400, 'M_INVALID_PARAM'],
        [alice, 'PUT', `/directory/list/room/${enc(big)}`, { visibility: 1 }, 400, 'M_BAD_JSON'],
        [alice, 'PUT', `/directory/list/room/${enc('!no:hs.test')}`, { visibility: 'public' }, 404, 'M_NOT_FOUND'],
        [alice, 'GET', `/directory/list/room/${enc('!no:hs.test')}`, undefined, 404, 'M_NOT_FOUND'],
        [alice, 'GET', '/publicRooms?limit=-1', undefined, 400, 'M_INVALID_PARAM'],
        [alice, 'GET', '/publicRooms?since=garbage', undefined, 400, 'M_INVALID_PARAM'],
        [alice, 'POST', '/publicRooms', { filter: 'x' }, 400, 'M_BAD_JSON'],
        [alice, 'POST', '/publicRooms', { limit: 'ten' }, 400, 'M_INVALID_PARAM'],
      ];
      for (const [who, method, path, body, status, errcode] of cases) {
        const res = await who!.call(method, path, body);
        expect({ path, body, status: res.status, errcode: res.json?.errcode }).toEqual({ path, body, status, errcode });
      }
    });
  });
});
