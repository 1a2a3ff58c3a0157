import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

const password = 'correct horse battery staple';
let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await accountsServer();
  alice = await server.register('alice', password);
});
afterEach(async () => {
  await server.close();
});

async function login(deviceName?: string) {
  const { json } = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password, initial_device_display_name: deviceName });
  return json as { access_token: string; device_id: string };
}

/** Gives a device keys of every kind, as keys/upload would. */
async function giveKeys(deviceId: string) {
  await server.storage.write(async (txn) => {
    await txn.deviceKeys.put({ userId: alice.userId, deviceId, keys: { device_id: deviceId } });
    await txn.oneTimeKeys.add(alice.userId, deviceId, { 'signed_curve25519:AAAA': { key: 'x' } });
    await txn.fallbackKeys.put(alice.userId, deviceId, 'signed_curve25519:BBBB', { key: 'y' });
    await txn.toDevice.add(alice.userId, deviceId, { sender: '@bob:hs.test', type: 'm.test', content: {} });
  });
}

async function keysOf(deviceId: string) {
  return server.storage.read(async (txn) => ({
    device: await txn.deviceKeys.get(alice.userId, deviceId),
    otks: await txn.oneTimeKeys.counts(alice.userId, deviceId),
    fallback: await txn.fallbackKeys.unusedAlgorithms(alice.userId, deviceId),
    inbox: await txn.toDevice.list(alice.userId, deviceId, {}),
  }));
}

const passwordAuth = (session?: string, pw = password) => ({
  type: 'm.login.password',
  identifier: { type: 'm.id.user', user: alice.userId },
  password: pw,
  ...(session ? { session } : {}),
});

describe('devices', () => {
  it('lists, reads and renames devices', async () => {
    const phone = await login('Phone');
    const list = await server.call('GET', `${V3}/devices`, undefined, alice.accessToken);
    expect(list.status).toBe(200);
    expect(list.json.devices).toHaveLength(2);
    const one = await server.call('GET', `${V3}/devices/${phone.device_id}`, undefined, alice.accessToken);
    expect(one.json).toMatchObject({ device_id: phone.device_id, display_name: 'Phone', last_seen_ts: expect.any(Number) });

    const before = await server.storage.read((txn) => txn.stream.current());
    expect((await server.call('PUT', `${V3}/devices/${phone.device_id}`, { display_name: 'Old phone' }, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', `${V3}/devices/${phone.device_id}`, undefined, alice.accessToken)).json.display_name).toBe('Old phone');
    // A rename is a device list change, so other users' clients refresh the name.
    expect(await server.storage.read((txn) => txn.deviceLists.changes({ from: before }))).toEqual([alice.userId]);
  });

  it('answers 404 for devices the user does not have (including other users\' devices)', async () => {
    const bob = await server.register('bob');
    for (const [method, body] of [['GET', undefined], ['PUT', { display_name: 'x' }]] as const) {
      const { status, json } = await server.call(method, `${V3}/devices/${bob.deviceId}`, body, alice.accessToken);
      expect([status, json.errcode]).toEqual([404, 'M_NOT_FOUND']);
    }
  });

  it('deletes a device behind password UIA, with its tokens, keys and inbox', async () => {
    const phone = await login('Phone');
    await giveKeys(phone.device_id);
    const first = await server.call('DELETE', `${V3}/devices/${phone.device_id}`, undefined, alice.accessToken);
    expect(first.status).toBe(401);
    expect(first.json).toEqual({ flows: [{ stages: ['m.login.password'] }], params: {}, session: expect.any(String) });

    const wrong = await server.call('DELETE', `${V3}/devices/${phone.device_id}`, { auth: passwordAuth(first.json.session, 'wrong') }, alice.accessToken);
    expect([wrong.status, wrong.json.errcode]).toEqual([401, 'M_FORBIDDEN']);
    expect((await keysOf(phone.device_id)).device).toBeDefined();

    const before = await server.storage.read((txn) => txn.stream.current());
    const ok = await server.call('DELETE', `${V3}/devices/${phone.device_id}`, { auth: passwordAuth(first.json.session) }, alice.accessToken);
    expect(ok.status).toBe(200);
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, phone.access_token)).status).toBe(401);
    expect(await keysOf(phone.device_id)).toEqual({ device: undefined, otks: {}, fallback: [], inbox: [] });
    expect(await server.storage.read((txn) => txn.deviceLists.changes({ from: before }))).toEqual([alice.userId]);
  });

  it('binds a UIA session to its operation', async () => {
    const phone = await login();
    const tablet = await login();
    const first = await server.call('DELETE', `${V3}/devices/${phone.device_id}`, {}, alice.accessToken);
    const other = await server.call('DELETE', `${V3}/devices/${tablet.device_id}`, { auth: passwordAuth(first.json.session) }, alice.accessToken);
    expect([other.status, other.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, tablet.access_token)).status).toBe(200);
  });

  it('refuses to re-authenticate as another user', async () => {
    await server.register('bob', 'bobs password');
    const phone = await login();
    const res = await server.call('DELETE', `${V3}/devices/${phone.device_id}`, {
      auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bob' }, password: 'bobs password' },
    }, alice.accessToken);
    expect([res.status, res.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });

  it('deletes several devices with POST /delete_devices', async () => {
    const phone = await login();
    const tablet = await login();
    await giveKeys(tablet.device_id);
    const res = await server.call('POST', `${V3}/delete_devices`, { devices: [phone.device_id, tablet.device_id, 'UNKNOWN'], auth: passwordAuth() }, alice.accessToken);
    expect(res.status).toBe(200);
    const left = await server.call('GET', `${V3}/devices`, undefined, alice.accessToken);
    expect(left.json.devices.map((d: { device_id: string }) => d.device_id)).toEqual([alice.deviceId]);
    expect((await keysOf(tablet.device_id)).device).toBeUndefined();
  });

  it('offers m.login.dummy to accounts without a password', async () => {
    const { json: nopw } = await server.call('POST', `${V3}/register`, { username: 'nopw', auth: { type: 'm.login.dummy' } });
    const first = await server.call('DELETE', `${V3}/devices/${nopw.device_id}`, {}, nopw.access_token);
    expect(first.json.flows).toEqual([{ stages: ['m.login.dummy'] }]);
    const ok = await server.call('DELETE', `${V3}/devices/${nopw.device_id}`, { auth: { type: 'm.login.dummy', session: first.json.session } }, nopw.access_token);
    expect(ok.status).toBe(200);
  });

  it('logout takes the device\'s keys with it', async () => {
    const phone = await login();
    await giveKeys(phone.device_id);
    await server.call('POST', `${V3}/logout`, {}, phone.access_token);
    expect(await keysOf(phone.device_id)).toEqual({ device: undefined, otks: {}, fallback: [], inbox: [] });
  });
});
