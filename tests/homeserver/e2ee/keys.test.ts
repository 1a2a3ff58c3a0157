/**
 * The key management endpoints: /keys/upload, /keys/query, /keys/claim and
 * /keys/changes, driven over the client-server API of an in-process server.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';
import { deviceKeys, e2eeSnapshot, makeKey, oneTimeKey } from './helpers.js';

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await startTestServer();
  alice = await server.register('alice');
  bob = await server.register('bob');
});
afterEach(() => server.close());

describe('POST /keys/upload', () => {
  it('stores device keys, one-time and fallback keys and returns the counts', async () => {
    const { keys, key } = await deviceKeys(alice.userId, alice.deviceId, 1);
    const res = await server.call(
      'POST',
      '/_matrix/client/v3/keys/upload',
      {
        device_keys: keys,
        one_time_keys: {
          'signed_curve25519:AAAAAQ': await oneTimeKey(key, 'otk1'),
          'signed_curve25519:AAAAAg': await oneTimeKey(key, 'otk2'),
        },
        fallback_keys: { 'signed_curve25519:AAAAAw': await oneTimeKey(key, 'fb1', true) },
      },
      alice.accessToken,
    );
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ one_time_key_counts: { signed_curve25519: 2 } });
    const stored = await server.storage.read(async (txn) => ({
      keys: await txn.deviceKeys.get(alice.userId, alice.deviceId),
      fallback: await txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId),
    }));
    expect(stored.keys?.keys).toEqual(keys);
    expect(stored.fallback).toEqual(['signed_curve25519']);
  });

  it('reports signed_curve25519 as 0 when no keys are stored (clients rely on it)', async () => {
    const res = await server.call('POST', '/_matrix/client/v3/keys/upload', {}, alice.accessToken);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ one_time_key_counts: { signed_curve25519: 0 } });
  });

  it('accepts the unstable MSC2732 fallback key field', async () => {
    const key = await makeKey(alice.userId, 2, alice.deviceId);
    const res = await server.call(
      'POST',
      '/_matrix/client/r0/keys/upload',
      { 'org.matrix.msc2732.fallback_keys': { 'signed_curve25519:AAAAAw': await oneTimeKey(key, 'fb', true) } },
      alice.accessToken,
    );
    expect(res.status).toBe(200);
    const unused = await server.storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId));
    expect(unused).toEqual(['signed_curve25519']);
  });

  it('records a device list change when device keys change, and none for the same keys again', async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    const before = await server.storage.read((txn) => txn.stream.current());
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const changed = await server.storage.read((txn) => txn.deviceLists.changes({ from: before }));
    expect(changed).toEqual([alice.userId]);
    const middle = await server.storage.read((txn) => txn.stream.current());
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    expect(await server.storage.read((txn) => txn.deviceLists.changes({ from: middle }))).toEqual([]);
  });

  it('keeps signatures added since when the same device keys are uploaded again', async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    await server.storage.write(async (txn) => {
      const record = (await txn.deviceKeys.get(alice.userId, alice.deviceId))!;
      const signatures = record.keys.signatures as Record<string, Record<string, string>>;
      signatures[alice.userId]!['ed25519:SSK'] = 'sig';
      await txn.deviceKeys.put(record);
    });
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const record = await server.storage.read((txn) => txn.deviceKeys.get(alice.userId, alice.deviceId));
    expect((record!.keys.signatures as any)[alice.userId]['ed25519:SSK']).toBe('sig');
  });

  it('ignores a one-time key uploaded twice with the same content, refuses different content', async () => {
    const key = await makeKey(alice.userId, 3, alice.deviceId);
    const otk = await oneTimeKey(key, 'same');
    const body = { one_time_keys: { 'signed_curve25519:A': otk } };
    expect((await server.call('POST', '/_matrix/client/v3/keys/upload', body, alice.accessToken)).json.one_time_key_counts.signed_curve25519).toBe(1);
    expect((await server.call('POST', '/_matrix/client/v3/keys/upload', body, alice.accessToken)).json.one_time_key_counts.signed_curve25519).toBe(1);
    const other = { one_time_keys: { 'signed_curve25519:A': await oneTimeKey(key, 'different'), 'signed_curve25519:B': otk } };
    const res = await server.call('POST', '/_matrix/client/v3/keys/upload', other, alice.accessToken);
    expect(res.status).toBe(400);
    expect(res.json.errcode).toBe('M_INVALID_PARAM');
    // The whole request was refused: B was not stored either.
    expect(await server.storage.read((txn) => txn.oneTimeKeys.counts(alice.userId, alice.deviceId))).toEqual({ signed_curve25519: 1 });
  });

  it('does not make a used fallback key unused when the same key is uploaded again', async () => {
    const key = await makeKey(alice.userId, 4, alice.deviceId);
    const body = { fallback_keys: { 'signed_curve25519:F': await oneTimeKey(key, 'fb', true) } };
    await server.call('POST', '/_matrix/client/v3/keys/upload', body, alice.accessToken);
    await server.call('POST', '/_matrix/client/v3/keys/claim', { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } }, bob.accessToken);
    await server.call('POST', '/_matrix/client/v3/keys/upload', body, alice.accessToken);
    expect(await server.storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId))).toEqual([]);
    const fresh = { fallback_keys: { 'signed_curve25519:G': await oneTimeKey(key, 'fb2', true) } };
    await server.call('POST', '/_matrix/client/v3/keys/upload', fresh, alice.accessToken);
    expect(await server.storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId))).toEqual(['signed_curve25519']);
  });
});

describe('POST /keys/query', () => {
  it("returns each device's keys with its display name in unsigned", async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    await server.storage.write((txn) => txn.devices.update(alice.userId, alice.deviceId, { displayName: "Alice's laptop" }));
    const res = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.userId]: [] } }, bob.accessToken);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      device_keys: { [alice.userId]: { [alice.deviceId]: { ...keys, unsigned: { device_display_name: "Alice's laptop" } } } },
      master_keys: {},
      self_signing_keys: {},
      user_signing_keys: {},
      failures: {},
    });
  });

  it('filters by device ID, leaves unknown users empty and reports other servers as failures', async () => {
    const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
    await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, alice.accessToken);
    const res = await server.call(
      'POST',
      '/_matrix/client/v3/keys/query',
      { device_keys: { [alice.userId]: ['NOPE'], '@nobody:hs.test': [], '@carol:elsewhere.test': [] } },
      bob.accessToken,
    );
    expect(res.status).toBe(200);
    expect(res.json.device_keys).toEqual({ [alice.userId]: {}, '@nobody:hs.test': {} });
    expect(Object.keys(res.json.failures)).toEqual(['elsewhere.test']);
  });
});

describe('POST /keys/claim', () => {
  it('hands out each one-time key once, then the fallback key, marking it used', async () => {
    const { keys, key } = await deviceKeys(alice.userId, alice.deviceId, 1);
    const otk1 = await oneTimeKey(key, 'otk1');
    const otk2 = await oneTimeKey(key, 'otk2');
    const fallback = await oneTimeKey(key, 'fb', true);
    await server.call(
      'POST',
      '/_matrix/client/v3/keys/upload',
      { device_keys: keys, one_time_keys: { 'signed_curve25519:A1': otk1, 'signed_curve25519:A2': otk2 }, fallback_keys: { 'signed_curve25519:FB': fallback } },
      alice.accessToken,
    );
    const claim = () =>
      server.call('POST', '/_matrix/client/v3/keys/claim', { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519' } } }, bob.accessToken);

    const first = await claim();
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ one_time_keys: { [alice.userId]: { [alice.deviceId]: { 'signed_curve25519:A1': otk1 } } }, failures: {} });
    const second = await claim();
    expect(second.json.one_time_keys[alice.userId][alice.deviceId]).toEqual({ 'signed_curve25519:A2': otk2 });
    const counts = await server.call('POST', '/_matrix/client/v3/keys/upload', {}, alice.accessToken);
    expect(counts.json.one_time_key_counts.signed_curve25519).toBe(0);
    expect(await server.storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId))).toEqual(['signed_curve25519']);

    const third = await claim();
    expect(third.json.one_time_keys[alice.userId][alice.deviceId]).toEqual({ 'signed_curve25519:FB': fallback });
    expect(await server.storage.read((txn) => txn.fallbackKeys.unusedAlgorithms(alice.userId, alice.deviceId))).toEqual([]);
    // A used fallback key stays claimable until the device replaces it.
    expect((await claim()).json.one_time_keys[alice.userId][alice.deviceId]).toEqual({ 'signed_curve25519:FB': fallback });
  });

  it('leaves out devices with nothing to claim and reports other servers as failures', async () => {
    const res = await server.call(
      'POST',
      '/_matrix/client/v3/keys/claim',
      { one_time_keys: { [alice.userId]: { [alice.deviceId]: 'signed_curve25519', GHOST: 'signed_curve25519' }, '@x:far.test': { D: 'signed_curve25519' } } },
      bob.accessToken,
    );
    expect(res.status).toBe(200);
    expect(res.json.one_time_keys).toEqual({});
    expect(Object.keys(res.json.failures)).toEqual(['far.test']);
  });
});

describe('GET /keys/changes', () => {
  async function position(): Promise<number> {
    return server.storage.read((txn) => txn.stream.current());
  }

  it('lists the own user and users sharing a room, not strangers', async () => {
    const carol = await server.register('carol');
    // Alice and Bob share a room (membership written directly: this test is about key changes, not rooms).
    await server.storage.write(async (txn) => {
      await txn.memberships.set({ roomId: '!room:hs.test', userId: alice.userId, membership: 'join', eventId: '$a' });
      await txn.memberships.set({ roomId: '!room:hs.test', userId: bob.userId, membership: 'join', eventId: '$b' });
    });
    const from = await position();
    for (const user of [alice, bob, carol]) {
      const { keys } = await deviceKeys(user.userId, user.deviceId, 7);
      await server.call('POST', '/_matrix/client/v3/keys/upload', { device_keys: keys }, user.accessToken);
    }
    const to = await position();
    const res = await server.call('GET', `/_matrix/client/v3/keys/changes?from=s${from}_0&to=s${to}_0`, undefined, alice.accessToken);
    expect(res.status).toBe(200);
    expect(res.json.changed.sort()).toEqual([alice.userId, bob.userId].sort());
    expect(res.json.left).toEqual([]);
    // A window after the changes is empty; bare numbers are accepted too.
    const later = await server.call('GET', `/_matrix/client/v3/keys/changes?from=${to}&to=${to}`, undefined, alice.accessToken);
    expect(later.json).toEqual({ changed: [], left: [] });
  });

  it('refuses missing and malformed tokens', async () => {
    const missing = await server.call('GET', '/_matrix/client/v3/keys/changes?to=s1_0', undefined, alice.accessToken);
    expect([missing.status, missing.json.errcode]).toEqual([400, 'M_MISSING_PARAM']);
    const bad = await server.call('GET', '/_matrix/client/v3/keys/changes?from=nonsense&to=s1_0', undefined, alice.accessToken);
    expect([bad.status, bad.json.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });
});

describe('GET /room_keys/version', () => {
  it('is 404 M_NOT_FOUND: there is no backup', async () => {
    const res = await server.call('GET', '/_matrix/client/v3/room_keys/version', undefined, alice.accessToken);
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ errcode: 'M_NOT_FOUND', error: 'No current backup version' });
  });
});

describe('bad input to the key endpoints', () => {
  const cases: Array<{ name: string; method: string; path: string; body?: unknown; token?: 'none'; status: number; errcode: string }> = [
    { name: 'upload: not JSON', method: 'POST', path: '/keys/upload', body: '{nope', status: 400, errcode: 'M_NOT_JSON' },
    { name: 'upload: array body', method: 'POST', path: '/keys/upload', body: '[]', status: 400, errcode: 'M_BAD_JSON' },
    { name: 'upload: device_keys not an object', method: 'POST', path: '/keys/upload', body: { device_keys: 'x' }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'upload: device_keys of another user', method: 'POST', path: '/keys/upload', body: 'OTHER_USER', status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'upload: device_keys of another device', method: 'POST', path: '/keys/upload', body: 'OTHER_DEVICE', status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'upload: key ID without algorithm', method: 'POST', path: '/keys/upload', body: { one_time_keys: { nocolon: { key: 'k' } } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'upload: one-time key of a wrong type', method: 'POST', path: '/keys/upload', body: { one_time_keys: { 'signed_curve25519:A': 5 } }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'upload: fallback keys not an object', method: 'POST', path: '/keys/upload', body: { fallback_keys: [] }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'upload: no token', method: 'POST', path: '/keys/upload', body: {}, token: 'none', status: 401, errcode: 'M_MISSING_TOKEN' },
    { name: 'query: no device_keys', method: 'POST', path: '/keys/query', body: {}, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'query: device list not an array', method: 'POST', path: '/keys/query', body: { device_keys: { '@alice:hs.test': 'D' } }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'query: invalid user ID', method: 'POST', path: '/keys/query', body: { device_keys: { alice: [] } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'claim: algorithm not a string', method: 'POST', path: '/keys/claim', body: { one_time_keys: { '@alice:hs.test': { D: 1 } } }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'claim: invalid user ID', method: 'POST', path: '/keys/claim', body: { one_time_keys: { 'not-a-user': {} } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'sendToDevice: no messages', method: 'PUT', path: '/sendToDevice/m.test/t1', body: {}, status: 400, errcode: 'M_MISSING_PARAM' },
    { name: 'sendToDevice: content not an object', method: 'PUT', path: '/sendToDevice/m.test/t2', body: { messages: { '@bob:hs.test': { '*': 'hi' } } }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'sendToDevice: invalid user ID', method: 'PUT', path: '/sendToDevice/m.test/t3', body: { messages: { bob: { '*': {} } } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'device_signing: master of another user', method: 'POST', path: '/keys/device_signing/upload', body: { master_key: { user_id: '@bob:hs.test', usage: ['master'], keys: { 'ed25519:K': 'K' } } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'device_signing: key ID not matching key', method: 'POST', path: '/keys/device_signing/upload', body: { master_key: { user_id: '@alice:hs.test', usage: ['master'], keys: { 'ed25519:K': 'L' } } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'device_signing: wrong usage', method: 'POST', path: '/keys/device_signing/upload', body: { master_key: { user_id: '@alice:hs.test', usage: ['self_signing'], keys: { 'ed25519:K': 'K' } } }, status: 400, errcode: 'M_INVALID_PARAM' },
    { name: 'signatures: entry not an object', method: 'POST', path: '/keys/signatures/upload', body: { '@alice:hs.test': { D: 'x' } }, status: 400, errcode: 'M_BAD_JSON' },
    { name: 'keys: wrong method', method: 'GET', path: '/keys/upload', status: 405, errcode: 'M_UNRECOGNIZED' },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.status} ${c.errcode}, storage unchanged`, async () => {
      const { keys } = await deviceKeys(alice.userId, alice.deviceId, 1);
      let body = c.body;
      if (body === 'OTHER_USER') body = { device_keys: { ...keys, user_id: bob.userId } };
      if (body === 'OTHER_DEVICE') body = { device_keys: { ...keys, device_id: 'OTHER' } };
      const devices: Array<[string, string]> = [[alice.userId, alice.deviceId], [bob.userId, bob.deviceId]];
      const before = await e2eeSnapshot(server, devices);
      const headers = typeof body === 'string' ? { 'content-type': 'application/json' } : undefined;
      const res = await server.call(c.method, `/_matrix/client/v3${c.path}`, body, c.token === 'none' ? undefined : alice.accessToken, headers);
      expect(res.status).toBe(c.status);
      expect(res.json.errcode).toBe(c.errcode);
      expect(await e2eeSnapshot(server, devices)).toEqual(before);
    });
  }
});
