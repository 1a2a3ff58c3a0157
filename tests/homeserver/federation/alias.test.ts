// Joining by another server's alias: B's server resolves #alias:A with A's query/directory and joins through the
// servers A names (matrix-js-sdk's joinRoom with an alias); GET /directory/room for a remote alias answers from
// the alias's server; unknown aliases are 404, and an unusable answer from the alias's server is refused.
import { Preset } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { registerClient } from '../../clients/js-sdk-scenario.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const target = (server: TestServer) => ({
  baseUrl: server.baseUrl,
  fetchFn: ((input: RequestInfo | URL, init?: RequestInit) => server.homeserver.handleClient(new Request(input, init))) as typeof fetch,
});

describe('room aliases across servers', () => {
  it('a user on B joins #lobby:A by its alias and reads the room', async () => {
    net = await startFederation(3);
    const stop = net.pump();
    const [a, b, c] = net.servers as [TestServer, TestServer, TestServer];
    const alice = await registerClient(target(a), 'alice');
    const bob = await registerClient(target(b), 'bob');
    const carol = await registerClient(target(c), 'carol');
    const { room_id: roomId } = await alice.createRoom({ preset: Preset.PublicChat, room_alias_name: 'lobby', name: 'Lobby' });
    const alias = `#lobby:${a.serverName}`;
    await alice.sendTextMessage(roomId, 'welcome');

    // The directory lookup from B asks A.
    const looked = await b.call('GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(alias)}`);
    expect(looked.status, JSON.stringify(looked.json)).toBe(200);
    expect(looked.json).toEqual({ room_id: roomId, servers: [a.serverName] });
    expect(net.log).toContain('GET /_matrix/federation/v1/query/directory');

    const joined = await bob.joinRoom(alias);
    expect(joined.roomId).toBe(roomId);
    expect((await b.homeserver.replication.rooms()).map((r) => r.roomId)).toContain(roomId);
    await net.flush();
    // A now names B too; carol joins by the alias through the servers A lists.
    const again = await c.call('GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(alias)}`);
    expect(new Set(again.json.servers)).toEqual(new Set([a.serverName, b.serverName]));
    net.link(a, c, false);
    // With A unreachable from C, the lookup itself fails: the alias is A's to answer.
    expect((await c.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(alias)}`, {}, carol.getAccessToken()!)).status).toBe(404);
    net.link(a, c, true);
    expect((await carol.joinRoom(alias)).roomId).toBe(roomId);
    stop();
  }, 60_000);

  it('unknown remote aliases are 404; an unusable answer is 502; a local unknown alias never asks anyone', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [TestServer, TestServer];
    const bob = await b.register('bob');
    const unknown = await b.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(`#nothing:${a.serverName}`)}`, {}, bob.accessToken);
    expect([unknown.status, unknown.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const asked = net.log.length;
    const local = await b.call('POST', `/_matrix/client/v3/join/${encodeURIComponent(`#nothing:${b.serverName}`)}`, {}, bob.accessToken);
    expect(local.status).toBe(404);
    expect(net.log.length).toBe(asked);

    b.homeserver.replication.setClient({ request: async () => ({ status: 200, body: { room_id: 'not a room', servers: ['x'] } }) });
    const bad = await b.call('GET', `/_matrix/client/v3/directory/room/${encodeURIComponent(`#lobby:${a.serverName}`)}`);
    expect([bad.status, bad.json.errcode]).toEqual([502, 'M_UNKNOWN']);
  });
});
