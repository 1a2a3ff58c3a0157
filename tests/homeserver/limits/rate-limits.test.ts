/**
 * The rc_* rate limits over the client-server API, in process with a fake
 * clock (no sleeping): each limited action (fixtures/limited-actions.json)
 * answers 429 M_LIMIT_EXCEEDED with retry_after_ms and a Retry-After header
 * once its burst is spent, and is allowed again exactly retry_after_ms later;
 * 90 wrong passwords in a row meet 429 after 5; per-address limits apply to
 * the address the transport reports and not at all in process; the defaults
 * let a pasted batch of 20 messages through.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_RATE_LIMITS, NO_RATE_LIMITS, type RateLimitConfig } from '../../../src/homeserver/index.js';
import { addressKey } from '../../../src/homeserver/limits/rate-limits.js';
import { startTestServer, type TestServer } from '../harness.js';

interface ActionCase {
  action: Exclude<keyof RateLimitConfig, 'maxTrackedKeys'>;
  address?: string;
  token?: 'alice' | 'bob';
  method: string;
  path: string;
  body?: unknown;
  raw?: string;
  status: number;
}

const { actions } = JSON.parse(readFileSync(new URL('./fixtures/limited-actions.json', import.meta.url), 'utf8')) as { actions: ActionCase[] };

function fakeClock() {
  let t = Date.UTC(2026, 11, 7);
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** One request as a transport would hand it over: `address` is what the socket reported, if any. */
async function request(s: TestServer, c: { method: string; path: string; body?: unknown; raw?: string; token?: string; address?: string }) {
  const headers: Record<string, string> = {};
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  let body: string | undefined;
  if (c.raw !== undefined) {
    body = c.raw;
    headers['content-type'] = 'text/plain';
  } else if (c.body !== undefined) {
    body = JSON.stringify(c.body);
    headers['content-type'] = 'application/json';
  }
  const response = await s.homeserver.handleClient(new Request(s.baseUrl + c.path, { method: c.method, headers, body }), c.address ? { remoteAddress: c.address } : undefined);
  return { status: response.status, json: (await response.json()) as Record<string, any>, response };
}

function fill(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return value.replace(/\{(\w+)\}/g, (m, name: string) => vars[name] ?? m);
  if (Array.isArray(value)) return value.map((v) => fill(v, vars));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [fill(k, vars) as string, fill(v, vars)]));
  return value;
}

/** A server where only `action` is limited (to a burst of 3, one more every 2 s), alice's public room, bob. */
async function limitedServer(action: ActionCase['action']) {
  const clock = fakeClock();
  server = await startTestServer({
    clock,
    config: { rateLimits: { ...NO_RATE_LIMITS, [action]: { perSecond: 0.5, burstCount: 3 } } },
  });
  const alice = await server.register('alice');
  const bob = await server.register('bob');
  const room = await server.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.accessToken);
  return { s: server, clock, alice, bob, roomId: room.json.room_id as string };
}

describe('rate limits', () => {
  for (const c of actions) {
    it(`${c.action}: ${c.method} ${c.path.replace(/\?.*/, '')} answers 429 with retry_after_ms and Retry-After, and resets after that long`, async () => {
      const { s, clock, alice, bob, roomId } = await limitedServer(c.action);
      let n = 0;
      const send = () => {
        n++;
        const vars = { n: String(n), roomId: encodeURIComponent(roomId), serverName: s.serverName };
        const token = c.token === 'alice' ? alice.accessToken : c.token === 'bob' ? bob.accessToken : undefined;
        return request(s, { ...c, path: fill(c.path, vars) as string, body: fill(c.body, { ...vars, roomId }), token });
      };
      for (let i = 0; i < 3; i++) {
        const ok = await send();
        expect(ok.status, JSON.stringify(ok.json)).toBe(c.status);
      }
      const refused = await send();
      expect(refused.status).toBe(429);
      expect(refused.json).toEqual({ errcode: 'M_LIMIT_EXCEEDED', error: expect.any(String), retry_after_ms: 2000 });
      expect(refused.response.headers.get('retry-after')).toBe('2');
      expect(refused.response.headers.get('access-control-expose-headers')).toMatch(/Retry-After/i);

      clock.advance(1999);
      expect((await send()).status).toBe(429);
      clock.advance(1);
      expect((await send()).status).toBe(c.status);
      expect((await send()).status).toBe(429);
    });
  }

  it('90 wrong passwords in a row meet 429 after 5 (defaults); the right password waits too, then works', async () => {
    const clock = fakeClock();
    server = await startTestServer({ clock, config: { rateLimits: DEFAULT_RATE_LIMITS } });
    await server.register('victim', 'the real password');
    const attempt = (password: string, address = '198.51.100.9') =>
      request(server!, { method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', user: 'victim', password }, address });
    const statuses: number[] = [];
    for (let i = 0; i < 90; i++) statuses.push((await attempt(`guess ${i}`)).status);
    expect(statuses.slice(0, 5)).toEqual([403, 403, 403, 403, 403]);
    expect(statuses.indexOf(429)).toBe(5);
    // The address limit (burst 10) and the account's failed attempts both refuse from then on.
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    // Another address gets no further with the same account: the account's own limit holds.
    const elsewhere = await attempt('the real password', '192.0.2.1');
    expect(elsewhere.status).toBe(429);
    clock.advance(elsewhere.json.retry_after_ms);
    expect((await attempt('the real password', '192.0.2.1')).status).toBe(200);
  });

  it('once an account has opened its burst of sessions, right and wrong passwords alike get 429 (no oracle)', async () => {
    const { s } = await limitedServer('loginAccount');
    const login = (password: string) =>
      request(s, { method: 'POST', path: '/_matrix/client/v3/login', body: { type: 'm.login.password', user: 'alice', password } });
    for (let i = 0; i < 3; i++) expect((await login('correct horse battery staple')).status).toBe(200);
    expect((await login('correct horse battery staple')).status).toBe(429);
    expect((await login('a wrong guess')).status).toBe(429);
  });

  it('per-address limits apply to the address the transport reports, and not at all in process', async () => {
    const clock = fakeClock();
    server = await startTestServer({ clock, config: { rateLimits: { ...NO_RATE_LIMITS, registration: { perSecond: 0.1, burstCount: 2 } } } });
    const register = (username: string, address?: string) =>
      request(server!, { method: 'POST', path: '/_matrix/client/v3/register', body: { username, password: 'pass phrase', auth: { type: 'm.login.dummy' } }, address });
    expect((await register('a1', '203.0.113.1')).status).toBe(200);
    expect((await register('a2', '203.0.113.1')).status).toBe(200);
    expect((await register('a3', '203.0.113.1')).status).toBe(429);
    // Another address has its own budget.
    expect((await register('b1', '203.0.113.2')).status).toBe(200);
    // In process there is one client, the tab's owner: no address, no limit.
    for (let i = 0; i < 20; i++) expect((await register(`local${i}`)).status).toBe(200);
    // The user-interactive auth round trip (401, no account made) does not count.
    for (let i = 0; i < 5; i++) {
      const uia = await request(server, { method: 'POST', path: '/_matrix/client/v3/register', body: { username: 'c1', password: 'pass phrase' }, address: '203.0.113.3' });
      expect(uia.status).toBe(401);
    }
    expect((await register('c1', '203.0.113.3')).status).toBe(200);
  });

  it('a retried send (same transaction ID) over the limit gets its event ID back and stores nothing', async () => {
    const { s, alice, roomId } = await limitedServer('message');
    const send = (txn: string) =>
      s.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, { msgtype: 'm.text', body: txn }, alice.accessToken);
    const first = await send('a');
    await send('b');
    await send('c');
    expect((await send('d')).status).toBe(429);
    const before = await s.storage.read((t) => t.stream.current());
    const replay = await send('a');
    expect(replay.status).toBe(200);
    expect(replay.json.event_id).toBe(first.json.event_id);
    expect(await s.storage.read((t) => t.stream.current())).toBe(before);
  });

  it('the defaults let a pasted batch of 20 messages through, and stop a flood', async () => {
    const clock = fakeClock();
    server = await startTestServer({ clock, config: { rateLimits: DEFAULT_RATE_LIMITS } });
    const alice = await server.register('alice');
    const roomId = (await server.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.accessToken)).json.room_id;
    const send = (i: number) => server!.call('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/p${i}`, { msgtype: 'm.text', body: `line ${i}` }, alice.accessToken);
    for (let i = 0; i < 20; i++) expect((await send(i)).status).toBe(200);
    let first429 = -1;
    for (let i = 20; i < 200 && first429 < 0; i++) if ((await send(i)).status === 429) first429 = i;
    expect(first429).toBe(DEFAULT_RATE_LIMITS.message === false ? -1 : DEFAULT_RATE_LIMITS.message.burstCount);
  });
});

describe('addressKey', () => {
  it('keys IPv4 as it is (mapped or not) and IPv6 by its /64; no address, no key', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::7')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey(undefined)).toBeUndefined();
  });
});
