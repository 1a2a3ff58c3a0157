// Presence across servers: alice on A sets her presence; it travels as an m.presence EDU to the servers sharing a
// room with her (B), not to others (C), and bob reads it through his own server. An EDU about another server's
// user is dropped.
import { afterEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const enc = encodeURIComponent;

describe('presence across servers', () => {
  it('reaches the servers sharing a room, and only those', async () => {
    net = await startFederation(3);
    const [a, b, c] = net.servers as [TestServer, TestServer, TestServer];
    const alice = await a.register('alice');
    const bob = await b.register('bob');
    const carol = await c.register('carol');
    const roomId = (await a.call('POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat' }, alice.accessToken)).json.room_id as string;
    await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId }, alice.accessToken);
    await net.flush();
    expect((await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {}, bob.accessToken)).status).toBe(200);
    await net.flush();
    // Before alice says anything, B knows nothing of her presence.
    expect((await b.call('GET', `/_matrix/client/v3/presence/${enc(alice.userId)}/status`, undefined, bob.accessToken)).status).toBe(404);

    const set = await a.call('PUT', `/_matrix/client/v3/presence/${enc(alice.userId)}/status`, { presence: 'unavailable', status_msg: 'in a meeting' }, alice.accessToken);
    expect(set.status).toBe(200);
    const queued = await a.storage.read((t) => t.outbound.destinations());
    expect(queued).toContain(b.serverName);
    expect(queued).not.toContain(c.serverName);
    await net.flush();
    const seen = await b.call('GET', `/_matrix/client/v3/presence/${enc(alice.userId)}/status`, undefined, bob.accessToken);
    expect(seen.status).toBe(200);
    expect(seen.json).toMatchObject({ presence: 'unavailable', status_msg: 'in a meeting', currently_active: false });
    // carol shares no room with alice: her server was not told, and she may not ask.
    expect((await c.call('GET', `/_matrix/client/v3/presence/${enc(alice.userId)}/status`, undefined, carol.accessToken)).status).toBe(403);
  });

  it('drops a presence EDU about another server\'s user, and keeps one about the sender\'s own', async () => {
    const warnings: string[] = [];
    net = await startFederation(2, { log: { debug() {}, error() {}, warn: (m: string) => void warnings.push(m) } });
    const [a, b] = net.servers as [TestServer, TestServer];
    const alice = await a.register('alice');
    const bob = await b.register('bob');
    const roomId = (await a.call('POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat' }, alice.accessToken)).json.room_id as string;
    await a.call('POST', `/_matrix/client/v3/rooms/${enc(roomId)}/invite`, { user_id: bob.userId }, alice.accessToken);
    await net.flush();
    await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {}, bob.accessToken);
    await net.flush();
    const send = (txn: string, push: unknown[]) =>
      a.homeserver.handleFederation(
        new Request(`http://${a.serverName}/_matrix/federation/v1/send/${txn}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ origin: b.serverName, origin_server_ts: 1, pdus: [], edus: [{ edu_type: 'm.presence', content: { push } }] }),
        }),
        b.serverName,
      );
    // B claims something about a user of A's, alongside its own bob: the whole EDU is dropped, with the reason.
    expect((await send('t1', [{ user_id: bob.userId, presence: 'unavailable' }, { user_id: `@carol:${a.serverName}`, presence: 'offline' }])).status).toBe(200);
    expect(warnings.some((w) => w.includes(`EDU from ${b.serverName} dropped: presence for a user not of ${b.serverName}`))).toBe(true);
    expect((await a.call('GET', `/_matrix/client/v3/presence/${enc(bob.userId)}/status`, undefined, alice.accessToken)).status).toBe(404);
    // About its own user only: kept.
    expect((await send('t2', [{ user_id: bob.userId, presence: 'unavailable', status_msg: 'away' }])).status).toBe(200);
    expect((await a.call('GET', `/_matrix/client/v3/presence/${enc(bob.userId)}/status`, undefined, alice.accessToken)).json).toMatchObject({ presence: 'unavailable', status_msg: 'away' });
  });
});
