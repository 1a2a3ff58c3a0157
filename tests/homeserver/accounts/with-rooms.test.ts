/**
 * Accounts meeting rooms and sync: profile changes reach every joined room,
 * deactivation leaves rooms, and the first /sync carries the push rules.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await accountsServer();
  alice = await server.register('alice', 'pw');
  bob = await server.register('bob', 'pw');
});
afterEach(async () => {
  await server.close();
});

async function sharedRoom(): Promise<string> {
  const created = await server.call('POST', `${V3}/createRoom`, { preset: 'public_chat' }, alice.accessToken);
  expect(created.status).toBe(200);
  const roomId = created.json.room_id as string;
  expect((await server.call('POST', `${V3}/join/${encodeURIComponent(roomId)}`, {}, bob.accessToken)).status).toBe(200);
  return roomId;
}

const memberPath = (roomId: string, userId: string) => `${V3}/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(userId)}`;

describe('accounts with rooms', () => {
  it('sends a display name or avatar change into every joined room', async () => {
    const first = await sharedRoom();
    const second = await sharedRoom();
    expect((await server.call('GET', memberPath(first, alice.userId), undefined, bob.accessToken)).json).toMatchObject({ displayname: 'alice' });
    await server.call('PUT', `${V3}/profile/${encodeURIComponent(alice.userId)}/displayname`, { displayname: 'Alice A.' }, alice.accessToken);
    await server.call('PUT', `${V3}/profile/${encodeURIComponent(alice.userId)}/avatar_url`, { avatar_url: 'mxc://hs.test/pic' }, alice.accessToken);
    for (const roomId of [first, second]) {
      const member = await server.call('GET', memberPath(roomId, alice.userId), undefined, bob.accessToken);
      expect(member.json).toEqual({ membership: 'join', displayname: 'Alice A.', avatar_url: 'mxc://hs.test/pic' });
    }
  });

  it('leaves every room on deactivation', async () => {
    const roomId = await sharedRoom();
    const res = await server.call('POST', `${V3}/account/deactivate`, {
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'pw' },
    }, bob.accessToken);
    expect(res.status).toBe(200);
    const member = await server.call('GET', memberPath(roomId, bob.userId), undefined, alice.accessToken);
    expect(member.json.membership).toBe('leave');
  });

  it('puts m.push_rules in the account data of the first /sync', async () => {
    const sync = await server.call('GET', `${V3}/sync?timeout=0`, undefined, alice.accessToken);
    expect(sync.status).toBe(200);
    const rules = sync.json.account_data.events.find((e: { type: string }) => e.type === 'm.push_rules');
    expect(rules.content.global.underride.map((r: { rule_id: string }) => r.rule_id)).toContain('.m.rule.message');
  });
});
