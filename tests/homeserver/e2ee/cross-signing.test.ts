/**
 * Cross-signing: POST /keys/device_signing/upload (first upload without UIA,
 * replacement with the password) and POST /keys/signatures/upload (own
 * devices, own master key, other users' master keys), as seen in /keys/query.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signJson } from '../../../src/core/index.js';
import { startTestServer, type TestServer } from '../harness.js';
import { crossSigningKey, deviceKeys, makeKey, type TestKey } from './helpers.js';

const PASSWORD = 'correct horse battery staple';
let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await startTestServer();
  alice = await server.register('alice', PASSWORD);
  bob = await server.register('bob', PASSWORD);
});
afterEach(() => server.close());

interface CrossSigning {
  master: TestKey;
  selfSigning: TestKey;
  userSigning: TestKey;
  body: Record<string, unknown>;
}

async function crossSigningFor(userId: string, seed: number): Promise<CrossSigning> {
  const master = await makeKey(userId, seed);
  const selfSigning = await makeKey(userId, seed + 1);
  const userSigning = await makeKey(userId, seed + 2);
  return {
    master,
    selfSigning,
    userSigning,
    body: {
      master_key: await crossSigningKey(userId, 'master', master),
      self_signing_key: await crossSigningKey(userId, 'self_signing', selfSigning, master),
      user_signing_key: await crossSigningKey(userId, 'user_signing', userSigning, master),
    },
  };
}

const query = (token: string, userIds: string[]) =>
  server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: Object.fromEntries(userIds.map((u) => [u, []])) }, token);

describe('POST /keys/device_signing/upload', () => {
  it('takes the first upload without UIA and shows user_signing keys to their owner only', async () => {
    const cs = await crossSigningFor(alice.userId, 10);
    const before = await server.storage.read((txn) => txn.stream.current());
    const res = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);
    expect(res.status).toBe(200);
    expect(await server.storage.read((txn) => txn.deviceLists.changes({ from: before }))).toEqual([alice.userId]);

    const own = await query(alice.accessToken, [alice.userId]);
    expect(own.json.master_keys[alice.userId]).toEqual(cs.body.master_key);
    expect(own.json.self_signing_keys[alice.userId]).toEqual(cs.body.self_signing_key);
    expect(own.json.user_signing_keys[alice.userId]).toEqual(cs.body.user_signing_key);
    const other = await query(bob.accessToken, [alice.userId]);
    expect(other.json.master_keys[alice.userId]).toEqual(cs.body.master_key);
    expect(other.json.user_signing_keys).toEqual({});
  });

  it('asks for the password to replace keys, and accepts the same keys again without it', async () => {
    const cs = await crossSigningFor(alice.userId, 10);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);
    const same = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);
    expect(same.status).toBe(200);

    const next = await crossSigningFor(alice.userId, 20);
    const challenge = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', next.body, alice.accessToken);
    expect(challenge.status).toBe(401);
    expect(challenge.json.flows).toEqual([{ stages: ['m.login.password'] }]);
    expect(typeof challenge.json.session).toBe('string');
    const identifier = { type: 'm.id.user', user: alice.userId };

    const wrong = await server.call(
      'POST',
      '/_matrix/client/v3/keys/device_signing/upload',
      { ...next.body, auth: { type: 'm.login.password', identifier, password: 'wrong', session: challenge.json.session } },
      alice.accessToken,
    );
    expect([wrong.status, wrong.json.errcode]).toEqual([401, 'M_FORBIDDEN']);
    expect((await query(alice.accessToken, [alice.userId])).json.master_keys[alice.userId]).toEqual(cs.body.master_key);

    const ok = await server.call(
      'POST',
      '/_matrix/client/v3/keys/device_signing/upload',
      { ...next.body, auth: { type: 'm.login.password', identifier, password: PASSWORD, session: challenge.json.session } },
      alice.accessToken,
    );
    expect(ok.status).toBe(200);
    expect((await query(alice.accessToken, [alice.userId])).json.master_keys[alice.userId]).toEqual(next.body.master_key);
  });

  it('refuses a self-signing key not signed by the master key, storing nothing', async () => {
    const cs = await crossSigningFor(alice.userId, 10);
    const stranger = await makeKey(alice.userId, 99);
    const body = { ...cs.body, self_signing_key: await crossSigningKey(alice.userId, 'self_signing', cs.selfSigning, stranger) };
    const res = await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', body, alice.accessToken);
    expect([res.status, res.json.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    expect(await server.storage.read((txn) => txn.crossSigningKeys.forUser(alice.userId))).toEqual([]);
  });

  it('is served under the unstable prefix too (older clients)', async () => {
    const cs = await crossSigningFor(alice.userId, 10);
    const res = await server.call('POST', '/_matrix/client/unstable/keys/device_signing/upload', cs.body, alice.accessToken);
    expect(res.status).toBe(200);
  });
});

describe('POST /keys/signatures/upload', () => {
  it("merges a self-signing signature into the own device's keys", async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const cs = await crossSigningFor(alice.userId, 10);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);

    const signed = await signJson(keys, cs.selfSigning.signer);
    const before = await server.storage.read((txn) => txn.stream.current());
    const res = await server.call('POST', '/_matrix/client/v3/keys/signatures/upload', { [alice.userId]: { [alice.deviceId]: signed } }, alice.accessToken);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ failures: {} });
    expect(await server.storage.read((txn) => txn.deviceLists.changes({ from: before }))).toEqual([alice.userId]);
    const seen = (await query(bob.accessToken, [alice.userId])).json.device_keys[alice.userId][alice.deviceId];
    expect(seen.signatures[alice.userId]).toEqual((signed.signatures as any)[alice.userId]);
  });

  it('merges a device signature into the own master key', async () => {
    const { keys, key } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const cs = await crossSigningFor(alice.userId, 10);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);
    const signed = await signJson(cs.body.master_key as object, key.signer);
    const res = await server.call('POST', '/_matrix/client/v3/keys/signatures/upload', { [alice.userId]: { [cs.master.publicKey]: signed } }, alice.accessToken);
    expect(res.json).toEqual({ failures: {} });
    const master = (await query(bob.accessToken, [alice.userId])).json.master_keys[alice.userId];
    expect(master.signatures[alice.userId][`ed25519:${alice.deviceId}`]).toBeTypeOf('string');
  });

  it("keeps a user-signing signature of another user's master key visible to the signer only", async () => {
    const aliceCs = await crossSigningFor(alice.userId, 10);
    const bobCs = await crossSigningFor(bob.userId, 30);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', aliceCs.body, alice.accessToken);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', bobCs.body, bob.accessToken);
    const signed = await signJson(bobCs.body.master_key as object, aliceCs.userSigning.signer);
    const res = await server.call('POST', '/_matrix/client/v3/keys/signatures/upload', { [bob.userId]: { [bobCs.master.publicKey]: signed } }, alice.accessToken);
    expect(res.json).toEqual({ failures: {} });
    const byAlice = (await query(alice.accessToken, [bob.userId])).json.master_keys[bob.userId];
    expect(byAlice.signatures[alice.userId][`ed25519:${aliceCs.userSigning.publicKey}`]).toBeTypeOf('string');
    const byBob = (await query(bob.accessToken, [bob.userId])).json.master_keys[bob.userId];
    expect(byBob.signatures?.[alice.userId]).toBeUndefined();
  });

  it('reports bad signatures, unknown keys and changed content as failures, storing nothing', async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const cs = await crossSigningFor(alice.userId, 10);
    await server.call('POST', '/_matrix/client/v3/keys/device_signing/upload', cs.body, alice.accessToken);
    const stranger = await makeKey(alice.userId, 77, cs.selfSigning.publicKey);
    const badSig = await signJson(keys, stranger.signer);
    const changed = await signJson({ ...keys, algorithms: ['other'] }, cs.selfSigning.signer);
    const before = await server.storage.read((txn) => txn.deviceKeys.get(alice.userId, alice.deviceId));
    const res = await server.call(
      'POST',
      '/_matrix/client/v3/keys/signatures/upload',
      { [alice.userId]: { [alice.deviceId]: badSig, NOSUCHDEVICE: badSig }, '@dave:remote.test': { X: {} } },
      alice.accessToken,
    );
    expect(res.status).toBe(200);
    expect(res.json.failures[alice.userId][alice.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    expect(res.json.failures[alice.userId].NOSUCHDEVICE.errcode).toBe('M_NOT_FOUND');
    expect(res.json.failures['@dave:remote.test'].X.status).toBe(503);
    const res2 = await server.call('POST', '/_matrix/client/v3/keys/signatures/upload', { [alice.userId]: { [alice.deviceId]: changed } }, alice.accessToken);
    expect(res2.json.failures[alice.userId][alice.deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    expect(await server.storage.read((txn) => txn.deviceKeys.get(alice.userId, alice.deviceId))).toEqual(before);
  });
});
