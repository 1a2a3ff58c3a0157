// End-to-end encryption state across two (three) servers federating in process (tests/support/federation.ts):
// what m.device_list_update and m.signing_key_update EDUs carry, the remote device list cache behind
// keys/query (filled by user/keys/query, kept right by updates, resynced through user/devices on a gap,
// dropped when no room is shared any more), device_lists.changed / left in /sync for remote users, to-device
// EDUs stored once per message_id, and EDUs about another server's users refused with a logged reason.
import { afterEach, describe, expect, test } from 'vitest';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { logBook } from '../../support/e2ee.js';
import { enc, withUsers, type Client } from '../rooms/helpers.js';
import { crossSigningKey, deviceKeys, makeKey } from '../e2ee/helpers.js';
import type { TestServer } from '../harness.js';
import { signJson } from '../../../src/core/index.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** alice on A and bob on B in one room. */
async function sharedRoom(count = 2, log = logBook()) {
  net = await startFederation(count, { log });
  const [a, b] = net.servers as [TestServer, TestServer];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'private_chat', invite: [bob!.userId] });
  expect((await bob!.call('POST', `/join/${enc(roomId)}`, {})).status).toBe(200);
  await net.flush();
  return { a, b, alice: alice!, bob: bob!, roomId, log };
}

async function uploadDeviceKeys(client: Client, seed: number): Promise<Record<string, unknown>> {
  const { keys } = await deviceKeys(client.userId, client.deviceId, seed);
  const res = await client.call('POST', '/keys/upload', { device_keys: keys });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return keys;
}

async function queuedEdus(from: TestServer, to: TestServer, type: string): Promise<any[]> {
  const records = await from.storage.read((t) => t.outbound.peek(to.serverName, 1_000));
  return records.map((r) => (r.payload as any).edu).filter((e) => e?.edu_type === type).map((e) => e.content);
}

const federationCalls = (path: string) => net!.log.filter((line) => line.startsWith(path)).length;

async function query(client: Client, userId: string): Promise<any> {
  const res = await client.call('POST', '/keys/query', { device_keys: { [userId]: [] } });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  return res.json;
}

async function loginAgain(server: TestServer, client: Client): Promise<Client> {
  const res = await server.call('POST', '/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: client.userId }, password: 'correct horse battery staple' });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
  const call = (method: string, path: string, body?: unknown) => server.call(method, '/_matrix/client/v3' + path, body, res.json.access_token);
  return { ...client, deviceId: res.json.device_id, accessToken: res.json.access_token, call };
}

describe('device lists across servers', () => {
  test('device list updates carry stream_id, prev_id, keys and deleted; cross-signing goes as m.signing_key_update', async () => {
    const { a, b, bob } = await sharedRoom();
    const keys = await uploadDeviceKeys(bob, 31);
    const [upload] = (await queuedEdus(b, a, 'm.device_list_update')).slice(-1);
    expect(upload).toMatchObject({ user_id: bob.userId, device_id: bob.deviceId, keys });
    expect(Number.isSafeInteger(upload.stream_id)).toBe(true);

    const phone = await loginAgain(b, bob);
    const [login] = (await queuedEdus(b, a, 'm.device_list_update')).slice(-1);
    expect(login).toMatchObject({ user_id: bob.userId, device_id: phone.deviceId, prev_id: [upload.stream_id] });
    expect(login.stream_id).toBeGreaterThan(upload.stream_id);
    expect(login.deleted).toBeUndefined();

    const logout = await phone.call('POST', '/logout', {});
    expect(logout.status).toBe(200);
    const [gone] = (await queuedEdus(b, a, 'm.device_list_update')).slice(-1);
    expect(gone).toMatchObject({ device_id: phone.deviceId, deleted: true, prev_id: [login.stream_id] });

    const master = await makeKey(bob.userId, 41);
    const ssk = await makeKey(bob.userId, 42);
    const usk = await makeKey(bob.userId, 43);
    const upload2 = await bob.call('POST', '/keys/device_signing/upload', {
      master_key: await crossSigningKey(bob.userId, 'master', master),
      self_signing_key: await crossSigningKey(bob.userId, 'self_signing', ssk, master),
      user_signing_key: await crossSigningKey(bob.userId, 'user_signing', usk, master),
    });
    expect(upload2.status, JSON.stringify(upload2.json)).toBe(200);
    const [signing] = await queuedEdus(b, a, 'm.signing_key_update');
    expect(signing.master_key.keys).toEqual({ [`ed25519:${master.publicKey}`]: master.publicKey });
    expect(signing.self_signing_key.keys).toEqual({ [`ed25519:${ssk.publicKey}`]: ssk.publicKey });
    // The user-signing key is its owner's alone.
    expect(JSON.stringify(await b.storage.read((t) => t.outbound.peek(a.serverName, 1_000)))).not.toContain(usk.publicKey);
  });

  test('keys/query for a remote user is answered from the cache, which updates keep right', async () => {
    const { a, b, alice, bob } = await sharedRoom();
    const keys = await uploadDeviceKeys(bob, 31);
    await net!.flush();
    const first = await query(alice, bob.userId);
    expect(first.device_keys[bob.userId][bob.deviceId]).toMatchObject({ keys: keys.keys });
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);
    await query(alice, bob.userId);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);

    // A new device and its keys arrive as updates: alice's /sync says bob changed, the cache has the device.
    const since = (await alice.call('GET', '/sync?timeout=0')).json.next_batch;
    const phone = await loginAgain(b, bob);
    const phoneKeys = await uploadDeviceKeys(phone, 32);
    await net!.flush();
    const sync = await alice.call('GET', `/sync?timeout=0&since=${since}`);
    expect(sync.json.device_lists.changed).toContain(bob.userId);
    const second = await query(alice, bob.userId);
    expect(Object.keys(second.device_keys[bob.userId]).sort()).toEqual([bob.deviceId, phone.deviceId].sort());
    expect(second.device_keys[bob.userId][phone.deviceId].keys).toEqual(phoneKeys.keys);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);

    // Cross-signing keys come by m.signing_key_update and are served from the cache too.
    const master = await makeKey(bob.userId, 41);
    const ssk = await makeKey(bob.userId, 42);
    await bob.call('POST', '/keys/device_signing/upload', {
      master_key: await crossSigningKey(bob.userId, 'master', master),
      self_signing_key: await crossSigningKey(bob.userId, 'self_signing', ssk, master),
    });
    await net!.flush();
    const third = await query(alice, bob.userId);
    expect(third.master_keys[bob.userId].keys).toEqual({ [`ed25519:${master.publicKey}`]: master.publicKey });
    expect(third.self_signing_keys[bob.userId].keys).toEqual({ [`ed25519:${ssk.publicKey}`]: ssk.publicKey });
    expect(third.user_signing_keys[bob.userId]).toBeUndefined();
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);

    // The phone logs out: deleted, gone from the answer.
    await phone.call('POST', '/logout', {});
    await net!.flush();
    expect(Object.keys((await query(alice, bob.userId)).device_keys[bob.userId])).toEqual([bob.deviceId]);
    expect(a.serverName).not.toBe(b.serverName);
  });

  test("a remote user's master and self-signing keys come in user/keys/query's answer, never the user-signing key", async () => {
    const { a, b, alice, bob } = await sharedRoom();
    await uploadDeviceKeys(bob, 31);
    const master = await makeKey(bob.userId, 41);
    const ssk = await makeKey(bob.userId, 42);
    const usk = await makeKey(bob.userId, 43);
    await bob.call('POST', '/keys/device_signing/upload', {
      master_key: await crossSigningKey(bob.userId, 'master', master),
      self_signing_key: await crossSigningKey(bob.userId, 'self_signing', ssk, master),
      user_signing_key: await crossSigningKey(bob.userId, 'user_signing', usk, master),
    });
    // B's answer to A itself.
    const direct = await b.homeserver.handleFederation(
      new Request(`http://${b.serverName}/_matrix/federation/v1/user/keys/query`, { method: 'POST', body: JSON.stringify({ device_keys: { [bob.userId]: [] } }) }),
      a.serverName,
    );
    const answer: any = await direct.json();
    expect(answer.master_keys[bob.userId].keys).toEqual({ [`ed25519:${master.publicKey}`]: master.publicKey });
    expect(answer.self_signing_keys[bob.userId].keys).toEqual({ [`ed25519:${ssk.publicKey}`]: ssk.publicKey });
    expect(answer.user_signing_keys).toBeUndefined();
    expect(JSON.stringify(answer)).not.toContain(usk.publicKey);
    // Alice's keys/query, before any m.signing_key_update reached A: asked of B, answered with both keys.
    const seen = await query(alice, bob.userId);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);
    expect(seen.master_keys[bob.userId]).toEqual(answer.master_keys[bob.userId]);
    expect(seen.self_signing_keys[bob.userId]).toEqual(answer.self_signing_keys[bob.userId]);
    expect(seen.user_signing_keys?.[bob.userId]).toBeUndefined();
  });

  test('concurrent queries about the same remote users make one request to their server', async () => {
    const { a, alice, bob } = await sharedRoom();
    await uploadDeviceKeys(bob, 31);
    await net!.flush();
    const others = await withUsers(a, 'carol', 'dave', 'erin');
    const answers = await Promise.all([alice, ...others].map((client) => query(client, bob.userId)));
    for (const answer of answers) expect(Object.keys(answer.device_keys[bob.userId])).toEqual([bob.deviceId]);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);
  });

  test('a missed update (a gap in prev_id) makes the server resync through user/devices', async () => {
    const { a, b, alice, bob } = await sharedRoom();
    await uploadDeviceKeys(bob, 31);
    await net!.flush();
    await query(alice, bob.userId);
    // The next update is lost on the way (acknowledged without being delivered).
    const phone = await loginAgain(b, bob);
    await b.storage.write(async (t) => {
      const queued = await t.outbound.peek(a.serverName, 1_000);
      await t.outbound.ack(a.serverName, queued[queued.length - 1]!.seq);
    });
    // The one after names the lost one as prev_id: A sees the gap and fetches the whole list.
    const phoneKeys = await uploadDeviceKeys(phone, 32);
    await net!.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(federationCalls('GET /_matrix/federation/v1/user/devices')).toBe(1);
    const answer = await query(alice, bob.userId);
    expect(answer.device_keys[bob.userId][phone.deviceId].keys).toEqual(phoneKeys.keys);
    // Answered from the resynced copy, not by asking again.
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);
  });

  test('sharing a room starts and ends: device_lists.changed, then left, and the copy is no longer used', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [TestServer, TestServer];
    const [alice] = await withUsers(a, 'alice');
    const [bob] = await withUsers(b, 'bob');
    await uploadDeviceKeys(bob!, 31);
    const since = (await alice!.call('GET', '/sync?timeout=0')).json.next_batch;
    const roomId = await alice!.createRoom({ preset: 'private_chat', invite: [bob!.userId] });
    await bob!.call('POST', `/join/${enc(roomId)}`, {});
    await net.flush();
    const joined = await alice!.call('GET', `/sync?timeout=0&since=${since}`);
    expect(joined.json.device_lists.changed).toContain(bob!.userId);
    await query(alice!, bob!.userId);
    await query(alice!, bob!.userId);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(1);

    const before = joined.json.next_batch;
    expect((await bob!.call('POST', `/rooms/${enc(roomId)}/leave`, {})).status).toBe(200);
    await net.flush();
    const left = await alice!.call('GET', `/sync?timeout=0&since=${before}`);
    expect(left.json.device_lists.left).toContain(bob!.userId);
    // No updates would reach A any more: its copy is dropped and the next query asks B.
    await query(alice!, bob!.userId);
    expect(federationCalls('POST /_matrix/federation/v1/user/keys/query')).toBe(2);
    expect(await a.storage.read((t) => t.meta.get(`e2ee.remoteDeviceList:${bob!.userId}`))).toBeUndefined();
  });

  test('a remote server answering about users it does not own, or with keys filed under the wrong device, is ignored', async () => {
    const { a, b, alice, bob } = await sharedRoom();
    await uploadDeviceKeys(bob, 31);
    await net!.flush();
    // B's stored keys are tampered with to claim another device ID: A drops that entry.
    await b.storage.write(async (t) => {
      const record = await t.deviceKeys.get(bob.userId, bob.deviceId);
      await t.deviceKeys.put({ ...record!, keys: { ...record!.keys, device_id: 'SOMEONEELSE' } });
    });
    const answer = await query(alice, bob.userId);
    expect(answer.device_keys[bob.userId]).toEqual({});
    expect(a.serverName).not.toBe(b.serverName);
  });
});

describe('verifying a user of another server', () => {
  test("a user-signing signature of a remote user's master key is accepted against the cached key and shown to the signer only", async () => {
    const { a, b, alice, bob } = await sharedRoom();
    const [carol] = await withUsers(a, 'carol');
    const roomId = await alice.createRoom({ preset: 'public_chat' });
    await carol!.call('POST', `/join/${enc(roomId)}`, {});
    const bobMaster = await makeKey(bob.userId, 51);
    await bob.call('POST', '/keys/device_signing/upload', { master_key: await crossSigningKey(bob.userId, 'master', bobMaster) });
    await net!.flush();
    const aliceMaster = await makeKey(alice.userId, 61);
    const aliceUsk = await makeKey(alice.userId, 62);
    const setUp = await alice.call('POST', '/keys/device_signing/upload', {
      master_key: await crossSigningKey(alice.userId, 'master', aliceMaster),
      user_signing_key: await crossSigningKey(alice.userId, 'user_signing', aliceUsk, aliceMaster),
    });
    expect(setUp.status, JSON.stringify(setUp.json)).toBe(200);

    const seen = (await query(alice, bob.userId)).master_keys[bob.userId];
    const { signatures: _ignored, ...unsigned } = seen;
    const signed = await signJson(unsigned, aliceUsk.signer);
    const upload = await alice.call('POST', '/keys/signatures/upload', { [bob.userId]: { [bobMaster.publicKey]: signed } });
    expect(upload.status, JSON.stringify(upload.json)).toBe(200);
    expect(upload.json.failures).toEqual({});

    const forAlice = (await query(alice, bob.userId)).master_keys[bob.userId];
    expect(forAlice.signatures[alice.userId]).toEqual({ [`ed25519:${aliceUsk.publicKey}`]: (signed.signatures as any)[alice.userId][`ed25519:${aliceUsk.publicKey}`] });
    expect(forAlice.signatures[bob.userId]).toBeUndefined();
    const forCarol = (await query(carol!, bob.userId)).master_keys[bob.userId];
    expect(forCarol.signatures?.[alice.userId]).toBeUndefined();
    // The signature is alice's private business: it never goes to B.
    expect(JSON.stringify(await a.storage.read((t) => t.outbound.peek(b.serverName, 1_000)))).not.toContain(aliceUsk.publicKey);
  });
});

describe('to-device messages across servers', () => {
  test('go out as m.direct_to_device in order, and a resent EDU is stored once', async () => {
    const { a, b, alice, bob } = await sharedRoom();
    for (let i = 0; i < 3; i++) {
      const res = await alice.call('PUT', `/sendToDevice/m.test/txn${i}`, { messages: { [bob.userId]: { [bob.deviceId]: { n: i } } } });
      expect(res.status).toBe(200);
    }
    const queued = await queuedEdus(a, b, 'm.direct_to_device');
    expect(queued.map((c) => c.messages[bob.userId][bob.deviceId].n)).toEqual([0, 1, 2]);
    expect(queued.every((c) => c.sender === alice.userId && typeof c.message_id === 'string')).toBe(true);
    await net!.flush();
    // The same transaction again (an answer lost, the sender resends): nothing new in bob's inbox.
    const again = await b.homeserver.handleFederation(
      new Request(`http://${b.serverName}/_matrix/federation/v1/send/again`, { method: 'PUT', body: JSON.stringify({ origin: a.serverName, origin_server_ts: 0, pdus: [], edus: [{ edu_type: 'm.direct_to_device', content: queued[0] }] }) }),
      a.serverName,
    );
    expect(again.status).toBe(200);
    const sync = await bob.call('GET', '/sync?timeout=0');
    expect(sync.json.to_device.events.map((e: any) => e.content.n)).toEqual([0, 1, 2]);
    expect(sync.json.to_device.events.every((e: any) => e.sender === alice.userId)).toBe(true);
  });
});

describe('hostile EDUs', () => {
  test('to-device, device list and signing key updates about another server’s users are refused with a logged reason', async () => {
    const log = logBook();
    const { a, b, alice, bob } = await sharedRoom(3, log);
    const c = net!.servers[2]!;
    await uploadDeviceKeys(bob, 31);
    await net!.flush();
    await query(alice, bob.userId);
    const before = await a.storage.read(async (t) => [await t.meta.get(`e2ee.remoteDeviceList:${bob.userId}`), await t.toDevice.list(alice.userId, alice.deviceId, {})]);
    const forged = [
      // C speaks for bob (B's user) to alice.
      { edu_type: 'm.direct_to_device', content: { sender: bob.userId, type: 'm.room_key', message_id: 'x', messages: { [alice.userId]: { '*': { forged: true } } } } },
      { edu_type: 'm.device_list_update', content: { user_id: bob.userId, device_id: 'EVIL', stream_id: 1_000_000, prev_id: [], keys: { user_id: bob.userId, device_id: 'EVIL', keys: {} } } },
      { edu_type: 'm.signing_key_update', content: { user_id: bob.userId, master_key: { user_id: bob.userId, usage: ['master'], keys: { 'ed25519:evil': 'evil' } } } },
    ];
    const res = await a.homeserver.handleFederation(
      new Request(`http://${a.serverName}/_matrix/federation/v1/send/forged`, { method: 'PUT', body: JSON.stringify({ origin: c.serverName, origin_server_ts: 0, pdus: [], edus: forged }) }),
      c.serverName,
    );
    expect(res.status).toBe(200);
    const reasons = log.warnings.filter((w) => w.startsWith(`EDU from ${c.serverName} dropped`));
    expect(reasons).toEqual([
      `EDU from ${c.serverName} dropped: to-device message from ${bob.userId}, not a user of ${c.serverName}`,
      `EDU from ${c.serverName} dropped: device list update for ${bob.userId}, not a user of ${c.serverName}`,
      `EDU from ${c.serverName} dropped: signing key update for ${bob.userId}, not a user of ${c.serverName}`,
    ]);
    const after = await a.storage.read(async (t) => [await t.meta.get(`e2ee.remoteDeviceList:${bob.userId}`), await t.toDevice.list(alice.userId, alice.deviceId, {})]);
    expect(after).toEqual(before);
    expect(JSON.stringify((await query(alice, bob.userId)).device_keys)).not.toContain('EVIL');

    // From B itself, keys filed under another device are refused too, with the reason.
    const misfiled = await a.homeserver.handleFederation(
      new Request(`http://${a.serverName}/_matrix/federation/v1/send/misfiled`, {
        method: 'PUT',
        body: JSON.stringify({ origin: b.serverName, origin_server_ts: 0, pdus: [], edus: [{ edu_type: 'm.device_list_update', content: { user_id: bob.userId, device_id: 'ONE', stream_id: 1_000_000, prev_id: [], keys: { user_id: bob.userId, device_id: 'TWO', keys: {} } } }] }),
      }),
      b.serverName,
    );
    expect(misfiled.status).toBe(200);
    expect(log.warnings).toContain(`EDU from ${b.serverName} dropped: keys in the device list update are not ${bob.userId}'s ONE`);
  });
});
