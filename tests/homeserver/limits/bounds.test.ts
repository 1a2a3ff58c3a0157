/**
 * The bounds of limits/bounds.ts, each as the attack it stops
 * (fixtures/oversized-bodies.json): the request is refused at once with 413
 * M_TOO_LARGE naming the field, and nothing is stored. Then the caps on what
 * accumulates: tags per room, to-device messages per inbox (oldest dropped),
 * and pending media reservations per user.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BOUNDS } from '../../../src/homeserver/limits/bounds.js';
import { NO_RATE_LIMITS } from '../../../src/homeserver/index.js';
import { startTestServer, type TestServer } from '../harness.js';

interface Attack {
  name: string;
  method: string;
  path: string;
  field: string;
  body: unknown;
}

const { attacks } = JSON.parse(readFileSync(new URL('./fixtures/oversized-bodies.json', import.meta.url), 'utf8')) as { attacks: Attack[] };

/** Expands the fixture's {"$list"} and {"$map"} generators and fills placeholders. */
function expand(value: unknown, vars: Record<string, string>): unknown {
  const fill = (s: string, i?: number) => s.replace(/\{(\w+)\}/g, (m, name: string) => (name === 'i' && i !== undefined ? String(i) : (vars[name] ?? m)));
  const at = (v: unknown, i: number): unknown =>
    typeof v === 'string' ? fill(v, i) : v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [fill(k, i), at(x, i)])) : v;
  if (typeof value === 'string') return fill(value);
  if (Array.isArray(value)) return value.map((v) => expand(v, vars));
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.$list === 'number') return Array.from({ length: o.$list }, (_, i) => at(o.item, i));
    if (typeof o.$map === 'number') {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < o.$map; i++) out[fill(o.key as string, i)] = at(o.value, i);
      return out;
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [fill(k), expand(v, vars)]));
  }
  return value;
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup() {
  server = await startTestServer({ config: { rateLimits: NO_RATE_LIMITS } });
  const alice = await server.register('alice');
  const bob = await server.register('bob');
  const roomId = (await server.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat' }, alice.accessToken)).json.room_id as string;
  return { s: server, alice, bob, roomId };
}

/** What any of the attacked routes could have written. */
async function snapshot(s: TestServer, users: { userId: string; deviceId: string }[]) {
  return s.storage.read(async (txn) => ({
    stream: await txn.stream.current(),
    rooms: await txn.rooms.list(),
    perUser: await Promise.all(
      users.map(async (u) => ({
        devices: await txn.devices.forUser(u.userId),
        oneTimeKeys: await txn.oneTimeKeys.counts(u.userId, u.deviceId),
        toDevice: await txn.toDevice.list(u.userId, u.deviceId, {}),
        pushRules: await txn.accountData.get(u.userId, 'm.push_rules'),
      })),
    ),
  }));
}

describe('bounds on request bodies', () => {
  for (const attack of attacks) {
    it(`${attack.name}: 413 M_TOO_LARGE naming '${attack.field}', promptly, nothing stored`, async () => {
      const { s, alice, bob, roomId } = await setup();
      const body = expand(attack.body, { alice: alice.userId, aliceDevice: alice.deviceId, bob: bob.userId, roomId });
      const before = await snapshot(s, [alice, bob]);
      const started = performance.now();
      const res = await s.call(attack.method, attack.path, body, alice.accessToken);
      const elapsed = performance.now() - started;
      expect({ status: res.status, errcode: res.json?.errcode }, JSON.stringify(res.json).slice(0, 300)).toEqual({ status: 413, errcode: 'M_TOO_LARGE' });
      expect(res.json.error).toContain(`'${attack.field}`);
      // Refused before any per-entry work: parsing the body is all it costs.
      expect(elapsed).toBeLessThan(1000);
      expect(await snapshot(s, [alice, bob])).toEqual(before);
    });
  }

  it('a room holds at most BOUNDS.tagsPerRoom tags; re-tagging an existing one still works', async () => {
    const { s, alice, roomId } = await setup();
    const tag = (name: string) => s.call('PUT', `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags/${name}`, { order: 0.5 }, alice.accessToken);
    for (let i = 0; i < BOUNDS.tagsPerRoom; i++) expect((await tag(`u.t${i}`)).status).toBe(200);
    const refused = await tag('u.one-too-many');
    expect(refused.status).toBe(413);
    expect(refused.json.error).toContain("'tags'");
    expect((await tag('u.t0')).status).toBe(200);
    const tags = await s.call('GET', `/_matrix/client/v3/user/${encodeURIComponent(alice.userId)}/rooms/${encodeURIComponent(roomId)}/tags`, undefined, alice.accessToken);
    expect(Object.keys(tags.json.tags)).toHaveLength(BOUNDS.tagsPerRoom);
  });

  it("a device's to-device inbox keeps its newest maxToDevicePerDevice messages; senders never see an error", async () => {
    server = await startTestServer({ config: { rateLimits: NO_RATE_LIMITS, maxToDevicePerDevice: 10 } });
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    for (let i = 0; i < 25; i++) {
      const res = await server.call('PUT', `/_matrix/client/v3/sendToDevice/org.example.ping/f${i}`, { messages: { [bob.userId]: { '*': { n: i } } } }, alice.accessToken);
      expect(res.status).toBe(200);
    }
    const sync = await server.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, bob.accessToken);
    expect(sync.json.to_device.events.map((e: any) => e.content.n)).toEqual(Array.from({ length: 10 }, (_, i) => i + 15));
  });

  it('a user holds at most maxPendingMediaUploads reservations: 429 until one is filled or expires', async () => {
    let now = Date.UTC(2026, 11, 7);
    server = await startTestServer({ clock: { now: () => now }, config: { rateLimits: NO_RATE_LIMITS, maxPendingMediaUploads: 3 } });
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const create = (token: string) => server!.call('POST', '/_matrix/media/v1/create', undefined, token);
    const uris: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await create(alice.accessToken);
      expect(res.status).toBe(200);
      uris.push(res.json.content_uri);
    }
    const refused = await create(alice.accessToken);
    expect(refused.status).toBe(429);
    expect(refused.json.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(refused.json.retry_after_ms).toBeGreaterThan(23 * 3600 * 1000);
    expect(refused.response.headers.get('retry-after')).toBe(String(Math.ceil(refused.json.retry_after_ms / 1000)));
    // Another user has their own allowance.
    expect((await create(bob.accessToken)).status).toBe(200);
    // Filling one frees its place.
    const [, mediaId] = /^mxc:\/\/[^/]+\/(.+)$/.exec(uris[0]!)!;
    const put = await server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, new TextEncoder().encode('bytes'), alice.accessToken, { 'content-type': 'text/plain' });
    expect(put.status).toBe(200);
    expect((await create(alice.accessToken)).status).toBe(200);
    expect((await create(alice.accessToken)).status).toBe(429);
    // Once the reservations expire, they no longer count.
    now += refused.json.retry_after_ms + 1;
    for (let i = 0; i < 3; i++) expect((await create(alice.accessToken)).status).toBe(200);
  });
});
