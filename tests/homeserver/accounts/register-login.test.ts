import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

let server: TestServer;
beforeEach(async () => {
  server = await accountsServer();
});
afterEach(async () => {
  await server.close();
});

describe('server discovery', () => {
  it('lists spec versions without a token', async () => {
    const { status, json } = await server.call('GET', '/_matrix/client/versions');
    expect(status).toBe(200);
    expect(json.versions).toContain('r0.6.1');
    expect(json.versions).toContain('v1.1');
    expect(json.unstable_features).toEqual({});
  });

  it('answers .well-known with the configured base URL, never the Host it was asked under', async () => {
    const configured = await accountsServer({ publicBaseUrl: 'https://matrix.example.org' });
    try {
      // The Node adapter builds the request URL from the Host header, so a hostile Host is a hostile origin.
      for (const origin of [configured.baseUrl, 'http://evil.example', 'https://evil.example:443']) {
        const response = await configured.homeserver.handleClient(new Request(`${origin}/.well-known/matrix/client`, { headers: { host: 'evil.example' } }));
        expect(response.status).toBe(200);
        expect(await response.json()).toEqual({ 'm.homeserver': { base_url: 'https://matrix.example.org' } });
      }
      // Unconfigured, nothing is published (the spec's "no discovery"), rather than a guess from the request.
      const unset = await server.homeserver.handleClient(new Request('http://evil.example/.well-known/matrix/client'));
      expect(unset.status).toBe(404);
      expect(((await unset.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
    } finally {
      await configured.close();
    }
  });

  it('reports capabilities, room versions 10 to 12 with 12 the default', async () => {
    const alice = await server.register('alice');
    const { status, json } = await server.call('GET', `${V3}/capabilities`, undefined, alice.accessToken);
    expect(status).toBe(200);
    expect(json.capabilities['m.room_versions']).toEqual({ default: '12', available: { '10': 'stable', '11': 'stable', '12': 'stable' } });
    expect(json.capabilities['m.change_password']).toEqual({ enabled: true });
    expect(json.capabilities['m.3pid_changes']).toEqual({ enabled: false });
  });
});

describe('POST /register', () => {
  it('asks for m.login.dummy first, then registers with the session', async () => {
    const first = await server.call('POST', `${V3}/register`, { username: 'alice', password: 'pw' });
    expect(first.status).toBe(401);
    expect(first.json).toEqual({ flows: [{ stages: ['m.login.dummy'] }], params: {}, session: expect.any(String) });
    const second = await server.call('POST', `${V3}/register`, {
      username: 'alice',
      password: 'pw',
      initial_device_display_name: 'Laptop',
      auth: { type: 'm.login.dummy', session: first.json.session },
    });
    expect(second.status).toBe(200);
    expect(second.json).toEqual({
      user_id: '@alice:hs.test',
      access_token: expect.any(String),
      device_id: expect.any(String),
      home_server: 'hs.test',
    });
    const device = await server.call('GET', `${V3}/devices/${second.json.device_id}`, undefined, second.json.access_token);
    expect(device.json.display_name).toBe('Laptop');
    // A used session is gone: replaying it is an unknown session.
    const replay = await server.call('POST', `${V3}/register`, { username: 'bob', auth: { type: 'm.login.dummy', session: first.json.session } });
    expect(replay.status).toBe(400);
  });

  it('serves the r0 path too and keeps a requested device ID', async () => {
    const { status, json } = await server.call('POST', '/_matrix/client/r0/register', {
      username: 'nio',
      device_id: 'NIODEVICE',
      auth: { type: 'm.login.dummy' },
    });
    expect(status).toBe(200);
    expect(json.device_id).toBe('NIODEVICE');
  });

  it('generates a valid user ID without a username, and folds case', async () => {
    const generated = await server.call('POST', `${V3}/register`, { auth: { type: 'm.login.dummy' } });
    expect(generated.status).toBe(200);
    expect(generated.json.user_id).toMatch(/^@[a-z0-9]+:hs\.test$/);
    const upper = await server.call('POST', `${V3}/register`, { username: 'Carol', auth: { type: 'm.login.dummy' } });
    expect(upper.json.user_id).toBe('@carol:hs.test');
  });

  it('honours inhibit_login: a user, no device, no token', async () => {
    const { status, json } = await server.call('POST', `${V3}/register`, { username: 'quiet', inhibit_login: true, auth: { type: 'm.login.dummy' } });
    expect(status).toBe(200);
    expect(json).toEqual({ user_id: '@quiet:hs.test', home_server: 'hs.test' });
    const devices = await server.storage.read((txn) => txn.devices.forUser('@quiet:hs.test'));
    expect(devices).toEqual([]);
  });

  it('reports a taken username before user-interactive auth', async () => {
    await server.register('alice');
    const { status, json } = await server.call('POST', `${V3}/register`, { username: 'alice' });
    expect(status).toBe(400);
    expect(json.errcode).toBe('M_USER_IN_USE');
  });

  it('gives a new account its display name and the default push rules in account data', async () => {
    const alice = await server.register('alice');
    const profile = await server.call('GET', `${V3}/profile/${alice.userId}`);
    expect(profile.json).toEqual({ displayname: 'alice' });
    const rules = await server.call('GET', `${V3}/user/${alice.userId}/account_data/m.push_rules`, undefined, alice.accessToken);
    expect(rules.status).toBe(200);
    expect(rules.json.global.override[0].rule_id).toBe('.m.rule.master');
  });

  it('refuses guests and, when registration is closed, everyone', async () => {
    const guest = await server.call('POST', `${V3}/register?kind=guest`, {});
    expect([guest.status, guest.json.errcode]).toEqual([403, 'M_GUEST_ACCESS_FORBIDDEN']);
    const closed = await accountsServer({ registrationEnabled: false });
    const refused = await closed.call('POST', `${V3}/register`, { username: 'x', auth: { type: 'm.login.dummy' } });
    expect([refused.status, refused.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    await closed.close();
  });
});

describe('GET /register/available', () => {
  it('says whether a username is free', async () => {
    await server.register('alice');
    expect((await server.call('GET', `${V3}/register/available?username=bob`)).json).toEqual({ available: true });
    const taken = await server.call('GET', `${V3}/register/available?username=alice`);
    expect([taken.status, taken.json.errcode]).toEqual([400, 'M_USER_IN_USE']);
    const invalid = await server.call('GET', `${V3}/register/available?username=a%20b`);
    expect([invalid.status, invalid.json.errcode]).toEqual([400, 'M_INVALID_USERNAME']);
    const tooLong = await server.call('GET', `${V3}/register/available?username=${'a'.repeat(250)}`);
    expect([tooLong.status, tooLong.json.errcode]).toEqual([400, 'M_INVALID_USERNAME']);
  });
});

describe('login and logout', () => {
  const password = 'correct horse battery staple';

  it('offers m.login.password', async () => {
    expect((await server.call('GET', `${V3}/login`)).json).toEqual({ flows: [{ type: 'm.login.password' }] });
  });

  it('logs in by identifier (localpart or user ID, any case) and by legacy user', async () => {
    await server.register('alice', password);
    for (const body of [
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: '@alice:hs.test' }, password },
      { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'ALICE' }, password },
      { type: 'm.login.password', user: 'alice', password },
    ]) {
      const { status, json } = await server.call('POST', `${V3}/login`, body);
      expect(status, JSON.stringify(body)).toBe(200);
      expect(json).toMatchObject({ user_id: '@alice:hs.test', home_server: 'hs.test' });
      const whoami = await server.call('GET', `${V3}/account/whoami`, undefined, json.access_token);
      expect(whoami.json).toEqual({ user_id: '@alice:hs.test', device_id: json.device_id, is_guest: false });
    }
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    await server.register('alice', password);
    for (const user of ['alice', 'nobody', '@alice:other.server']) {
      const { status, json } = await server.call('POST', `${V3}/login`, { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: user === 'alice' ? 'wrong' : password });
      expect([status, json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    }
  });

  it('reuses a known device ID, keeping its other tokens', async () => {
    const alice = await server.register('alice', password);
    const { json } = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password, device_id: alice.deviceId, initial_device_display_name: 'ignored' });
    expect(json.device_id).toBe(alice.deviceId);
    const devices = await server.call('GET', `${V3}/devices`, undefined, json.access_token);
    expect(devices.json.devices).toHaveLength(1);
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, alice.accessToken)).status).toBe(200);
  });

  it('logout revokes the token and deletes the device; logout/all does so for every device', async () => {
    const alice = await server.register('alice', password);
    const second = (await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password })).json;
    const third = (await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password })).json;

    expect((await server.call('POST', `${V3}/logout`, {}, second.access_token)).status).toBe(200);
    const gone = await server.call('GET', `${V3}/account/whoami`, undefined, second.access_token);
    expect([gone.status, gone.json.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    const devices = await server.call('GET', `${V3}/devices`, undefined, alice.accessToken);
    expect(devices.json.devices.map((d: { device_id: string }) => d.device_id).sort()).toEqual([alice.deviceId, third.device_id].sort());

    expect((await server.call('POST', `${V3}/logout/all`, {}, alice.accessToken)).status).toBe(200);
    for (const token of [alice.accessToken, third.access_token]) {
      expect((await server.call('GET', `${V3}/account/whoami`, undefined, token)).status).toBe(401);
    }
    expect(await server.storage.read((txn) => txn.devices.forUser(alice.userId))).toEqual([]);
  });

  it('tells a deactivated user so, but only with the right password', async () => {
    const alice = await server.register('alice', password);
    const deactivate = await server.call('POST', `${V3}/account/deactivate`, { auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password } }, alice.accessToken);
    expect(deactivate.status).toBe(200);
    expect(deactivate.json).toEqual({ id_server_unbind_result: 'no-support' });
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, alice.accessToken)).status).toBe(401);
    const login = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password });
    expect([login.status, login.json.errcode]).toEqual([403, 'M_USER_DEACTIVATED']);
    const wrong = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password: 'nope' });
    expect([wrong.status, wrong.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    // The user ID stays taken.
    const again = await server.call('POST', `${V3}/register`, { username: 'alice' });
    expect(again.json.errcode).toBe('M_USER_IN_USE');
  });
});

describe('POST /account/password', () => {
  it('changes the password behind UIA and logs out other devices', async () => {
    const alice = await server.register('alice', 'old password');
    const other = (await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password: 'old password' })).json;
    const first = await server.call('POST', `${V3}/account/password`, { new_password: 'new password' }, alice.accessToken);
    expect(first.status).toBe(401);
    expect(first.json.flows).toEqual([{ stages: ['m.login.password'] }]);
    const wrong = await server.call('POST', `${V3}/account/password`, {
      new_password: 'new password',
      auth: { type: 'm.login.password', session: first.json.session, identifier: { type: 'm.id.user', user: 'alice' }, password: 'bad' },
    }, alice.accessToken);
    expect([wrong.status, wrong.json.errcode, wrong.json.session]).toEqual([401, 'M_FORBIDDEN', first.json.session]);
    const ok = await server.call('POST', `${V3}/account/password`, {
      new_password: 'new password',
      auth: { type: 'm.login.password', session: first.json.session, identifier: { type: 'm.id.user', user: 'alice' }, password: 'old password' },
    }, alice.accessToken);
    expect(ok.status).toBe(200);
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, alice.accessToken)).status).toBe(200);
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, other.access_token)).status).toBe(401);
    const oldLogin = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password: 'old password' });
    expect(oldLogin.status).toBe(403);
    const newLogin = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password: 'new password' });
    expect(newLogin.status).toBe(200);
  });
});

describe('requests without a token where none is needed', () => {
  it('serve /versions and profiles even with a stale token', async () => {
    await server.register('alice');
    expect((await server.call('GET', '/_matrix/client/versions', undefined, 'stale')).status).toBe(200);
    expect((await server.call('GET', `${V3}/profile/@alice:hs.test`, undefined, 'stale')).status).toBe(200);
  });
});
