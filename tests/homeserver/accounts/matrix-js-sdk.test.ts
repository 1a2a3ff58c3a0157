/**
 * The accounts API as matrix-js-sdk 43 uses it, in process: user-interactive
 * registration, password login, push rules (which the SDK needs before its
 * first sync), profile, devices with re-authentication, filters, account
 * data, tags, presence, password change and logout.
 */
import { ClientEvent, createClient, type MatrixClient, MatrixError } from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer } from './helpers.js';

// The SDK logs every request at debug level.
(logger as unknown as { setLevel(level: string): void }).setLevel('warn');

let server: TestServer;
let fetchFn: typeof fetch;
const clients: MatrixClient[] = [];

beforeAll(async () => {
  server = await accountsServer();
  fetchFn = ((input: RequestInfo | URL, init?: RequestInit) => server.homeserver.handleClient(new Request(input, init))) as typeof fetch;
});
afterAll(async () => {
  for (const client of clients) client.stopClient();
  await server.close();
});

function client(opts: { userId?: string; accessToken?: string; deviceId?: string } = {}): MatrixClient {
  const c = createClient({ baseUrl: server.baseUrl, fetchFn, ...opts });
  clients.push(c);
  return c;
}

async function uiaSession(request: () => Promise<unknown>): Promise<string> {
  try {
    await request();
  } catch (error) {
    expect(error).toBeInstanceOf(MatrixError);
    expect((error as MatrixError).httpStatus).toBe(401);
    return (error as MatrixError).data.session as string;
  }
  throw new Error('expected a 401 asking for user-interactive auth');
}

describe('matrix-js-sdk and the accounts API', () => {
  it('registers through user-interactive auth and logs in with a password', async () => {
    const anonymous = client();
    expect((await anonymous.getVersions()).versions).toContain('v1.11');
    expect(await anonymous.isUsernameAvailable('carol')).toBe(true);
    const session = await uiaSession(() => anonymous.registerRequest({ username: 'carol', password: 'pass phrase' }));
    const registered = await anonymous.registerRequest({ username: 'carol', password: 'pass phrase', auth: { type: 'm.login.dummy', session } });
    expect(registered.user_id).toBe('@carol:hs.test');
    // The SDK turns M_USER_IN_USE into `false`.
    expect(await anonymous.isUsernameAvailable('carol')).toBe(false);

    const login = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'carol' }, password: 'pass phrase' });
    expect(login.user_id).toBe('@carol:hs.test');
    const carol = client({ userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
    expect(await carol.whoami()).toMatchObject({ user_id: '@carol:hs.test', device_id: login.device_id });
  });

  it('syncs with push rules, filters and account data, and edits them', async () => {
    const reg = await server.register('dave', 'pass phrase');
    const dave = client({ userId: reg.userId, accessToken: reg.accessToken, deviceId: reg.deviceId });
    const prepared = new Promise<void>((resolve, reject) =>
      dave.on(ClientEvent.Sync, (state, _prev, data) => {
        if (state === 'PREPARED') resolve();
        if (state === 'ERROR') reject(data?.error);
      }),
    );
    await dave.startClient({ initialSyncLimit: 5, lazyLoadMembers: true });
    await prepared;
    expect(dave.pushRules?.global.override?.[0]?.rule_id).toBe('.m.rule.master');
    expect(dave.getAccountData('m.push_rules' as never)).toBeDefined();

    const capabilities = await dave.getCapabilities();
    expect(capabilities['m.room_versions']?.default).toBe('12');

    await dave.addPushRule('global', 'override' as never, 'mute-x', { actions: [], conditions: [{ kind: 'event_match', key: 'type', pattern: 'x.y' }] } as never);
    await dave.setPushRuleEnabled('global', 'override' as never, '.m.rule.master', true);
    const rules = await dave.getPushRules();
    expect(rules.global.override?.map((r) => r.rule_id).slice(0, 2)).toEqual(['.m.rule.master', 'mute-x']);
    expect(rules.global.override?.[0]?.enabled).toBe(true);
    await dave.deletePushRule('global', 'override' as never, 'mute-x');

    await dave.setAccountData('org.example.settings' as never, { theme: 'dark' } as never);
    expect(await dave.getAccountDataFromServer('org.example.settings' as never)).toEqual({ theme: 'dark' });

    const roomId = '!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';
    await dave.setRoomTag(roomId, 'm.favourite', { order: 0.5 });
    expect(await dave.getRoomTags(roomId)).toEqual({ tags: { 'm.favourite': { order: 0.5 } } });
    await dave.deleteRoomTag(roomId, 'm.favourite');

    await dave.setDisplayName('Dave D.');
    expect(await dave.getProfileInfo(reg.userId)).toEqual({ displayname: 'Dave D.' });

    await dave.setPresence({ presence: 'unavailable', status_msg: 'away' });
    expect(await dave.getPresence(reg.userId)).toMatchObject({ presence: 'unavailable', status_msg: 'away' });
    dave.stopClient();
  });

  it('manages devices with re-authentication, changes the password and logs out', async () => {
    const reg = await server.register('erin', 'first pass');
    const erin = client({ userId: reg.userId, accessToken: reg.accessToken, deviceId: reg.deviceId });
    const second = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'erin' }, password: 'first pass', initial_device_display_name: 'Tablet' });

    const { devices } = await erin.getDevices();
    expect(devices.map((d) => d.device_id).sort()).toEqual([reg.deviceId, second.device_id].sort());
    await erin.setDeviceDetails(second.device_id, { display_name: 'Old tablet' });
    expect((await erin.getDevice(second.device_id)).display_name).toBe('Old tablet');

    const session = await uiaSession(() => erin.deleteDevice(second.device_id));
    await erin.deleteDevice(second.device_id, { type: 'm.login.password', session, identifier: { type: 'm.id.user', user: reg.userId }, password: 'first pass' } as never);
    expect((await erin.getDevices()).devices.map((d) => d.device_id)).toEqual([reg.deviceId]);

    const pwSession = await uiaSession(() => erin.setPassword({}, 'second pass'));
    await erin.setPassword({ type: 'm.login.password', session: pwSession, identifier: { type: 'm.id.user', user: reg.userId }, password: 'first pass' } as never, 'second pass');
    const again = await client().loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'erin' }, password: 'second pass' });
    expect(again.user_id).toBe(reg.userId);

    await erin.logout();
    await expect(client({ accessToken: reg.accessToken }).whoami()).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
  });
});
