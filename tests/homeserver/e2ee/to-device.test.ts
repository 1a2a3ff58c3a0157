/**
 * PUT /sendToDevice/{eventType}/{txnId}: messages land in the inboxes of the
 * addressed devices ('*' = all of a user's devices), unknown targets are
 * skipped, and a repeated transaction ID delivers nothing twice.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };
let bobSecondDevice: string;

beforeEach(async () => {
  server = await startTestServer();
  alice = await server.register('alice');
  bob = await server.register('bob');
  bobSecondDevice = 'BOBPHONE';
  // A second device for Bob, written directly: this suite is about inboxes, not logins.
  await server.storage.write((txn) => txn.devices.put({ userId: bob.userId, deviceId: bobSecondDevice, createdAt: 0 }));
});
afterEach(() => server.close());

const inbox = (userId: string, deviceId: string) => server.storage.read((txn) => txn.toDevice.list(userId, deviceId, {}));

describe('PUT /sendToDevice', () => {
  it("delivers to every device for '*', and to one named device", async () => {
    const res = await server.call(
      'PUT',
      '/_matrix/client/v3/sendToDevice/m.room_key_request/txn1',
      { messages: { [bob.userId]: { '*': { hello: 'all' } }, [alice.userId]: { [alice.deviceId]: { hello: 'me' } } } },
      alice.accessToken,
    );
    expect(res.status).toBe(200);
    expect(res.json).toEqual({});
    for (const deviceId of [bob.deviceId, bobSecondDevice]) {
      const messages = await inbox(bob.userId, deviceId);
      expect(messages.map((m) => [m.sender, m.type, m.content])).toEqual([[alice.userId, 'm.room_key_request', { hello: 'all' }]]);
    }
    expect((await inbox(alice.userId, alice.deviceId)).map((m) => m.content)).toEqual([{ hello: 'me' }]);
  });

  it('skips unknown users, unknown devices and other servers', async () => {
    const before = await server.storage.read((txn) => txn.stream.current());
    const res = await server.call(
      'PUT',
      '/_matrix/client/v3/sendToDevice/m.test/txn2',
      { messages: { '@nobody:hs.test': { '*': {} }, [bob.userId]: { NOSUCH: {} }, '@carol:remote.test': { '*': {} } } },
      alice.accessToken,
    );
    expect(res.status).toBe(200);
    expect(await inbox(bob.userId, bob.deviceId)).toEqual([]);
    expect(await server.storage.read((txn) => txn.stream.current())).toBe(before);
  });

  it('delivers once per transaction ID; the same ID with another event type is another transaction', async () => {
    const body = { messages: { [bob.userId]: { [bob.deviceId]: { n: 1 } } } };
    await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.test/same', body, alice.accessToken);
    const again = await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.test/same', body, alice.accessToken);
    expect(again.status).toBe(200);
    expect(await inbox(bob.userId, bob.deviceId)).toHaveLength(1);
    await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.other/same', body, alice.accessToken);
    expect(await inbox(bob.userId, bob.deviceId)).toHaveLength(2);
    // Transaction IDs belong to the sending device: Bob may use the same one.
    await server.call('PUT', '/_matrix/client/r0/sendToDevice/m.test/same', { messages: { [bob.userId]: { [bob.deviceId]: { n: 2 } } } }, bob.accessToken);
    expect(await inbox(bob.userId, bob.deviceId)).toHaveLength(3);
  });

  it('tells the storage listeners which inboxes got mail', async () => {
    const seen: string[] = [];
    const stop = server.storage.subscribe((commit) => {
      for (const c of commit.changes) if (c.kind === 'toDevice') seen.push(`${c.userId}|${c.deviceId}`);
    });
    await server.call('PUT', '/_matrix/client/v3/sendToDevice/m.test/t', { messages: { [bob.userId]: { '*': {} } } }, alice.accessToken);
    stop();
    expect(seen.sort()).toEqual([`${bob.userId}|${bob.deviceId}`, `${bob.userId}|${bobSecondDevice}`].sort());
  });
});
