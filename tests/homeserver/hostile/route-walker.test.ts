/**
 * The hostile-input walk: every route of the client-server API's route table,
 * called by an attacker ("mallory") with bodies, path parameters and query
 * parameters built to break it — `__proto__` / `constructor` / `prototype`
 * keys at every depth of a valid body, every leaf swapped for a wrong type, a
 * huge array, a huge string, a lone surrogate or nesting past the ingress
 * limit, hostile path segments and JSON query parameters. For every request:
 * a documented Matrix error or success, never a 5xx, never a hang; afterwards
 * Object.prototype and Array.prototype are untouched. After every route, the
 * victims' /sync, /keys/query and room reads still work.
 *
 * Example bodies live in fixtures/route-bodies.json; a route that takes a body
 * and has no example there fails the first test, so new routes join the walk.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_RATE_LIMITS } from '../../../src/homeserver/index.js';
import { startTestServer, type TestServer } from '../harness.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const BODIES: Record<string, Json> = JSON.parse(readFileSync(new URL('./fixtures/route-bodies.json', import.meta.url), 'utf8'));
const PASSWORD = 'walker password 1';
const PREFIX = /^\/_matrix\/(client|media)\/(v3|r0|v1|unstable)/;
/** One prefix per route is enough: the others reach the same handler. */
const WALKED_PREFIXES = ['/_matrix/client/v3', '/_matrix/media/v3', '/_matrix/client/v1', '/_matrix/media/v1'];
const REQUEST_DEADLINE_MS = 10_000;

// Every way to break a leaf, and what to graft into objects.
const DEEP = 3000;
const deepArray = () => JSON.parse('['.repeat(DEEP) + ']'.repeat(DEEP)) as Json;
const deepObject = () => JSON.parse('{"a":'.repeat(DEEP) + '1' + '}'.repeat(DEEP)) as Json;
const LEAF_REPLACEMENTS: Array<[string, () => Json]> = [
  ['null', () => null],
  ['number', () => 1.5],
  ['huge number', () => 1e308],
  ['string', () => 'x'],
  ['boolean', () => true],
  ['empty array', () => []],
  ['empty object', () => ({})],
  ['huge array', () => new Array(60_000).fill('a')],
  ['huge string', () => 'a'.repeat(600_000)],
  ['lone surrogate', () => 'a\ud800b'],
  ['deep array', deepArray],
  ['deep object', deepObject],
];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

function clone(value: Json): Json {
  return JSON.parse(JSON.stringify(value));
}

/** Defines an own enumerable key even when it is `__proto__` (as JSON.parse does). */
function defineOwn(target: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

type PathStep = string | number;

function walkNodes(value: Json, path: PathStep[] = [], out: Array<{ path: PathStep[]; value: Json }> = []) {
  out.push({ path, value });
  if (Array.isArray(value)) value.forEach((v, i) => walkNodes(v, [...path, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walkNodes(v, [...path, k], out);
  return out;
}

function at(root: Json, path: PathStep[]): Json {
  let node: any = root;
  for (const step of path) node = node[step];
  return node;
}

function replaceAt(root: Json, path: PathStep[], value: Json): Json {
  if (path.length === 0) return value;
  const copy = clone(root);
  const parent: any = at(copy, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (typeof last === 'number') parent[last] = value;
  else defineOwn(parent, last, value);
  return copy;
}

/** The hostile variants of one example body, each with a label for failure messages. */
function hostileBodies(example: Json): Array<{ label: string; body: string }> {
  const out: Array<{ label: string; body: string }> = [];
  const nodes = walkNodes(example);
  for (const { path, value } of nodes) {
    const where = path.length ? path.join('.') : '(root)';
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const key of PROTO_KEYS) {
        const copy = clone(example);
        const target = at(copy, path) as Record<string, Json>;
        defineOwn(target, key, { polluted: 'yes', membership: 'join', users_default: 100, prototype: { polluted: 'yes' } });
        out.push({ label: `${key} key at ${where}`, body: JSON.stringify(copy) });
      }
      const copy = clone(example);
      defineOwn(at(copy, path) as Record<string, Json>, 'k\udc00', 1);
      out.push({ label: `lone surrogate key at ${where}`, body: JSON.stringify(copy) });
    }
    if (path.length === 0) continue;
    for (const [name, make] of LEAF_REPLACEMENTS) {
      out.push({ label: `${name} at ${where}`, body: JSON.stringify(replaceAt(example, path, make())) });
    }
  }
  out.push({ label: 'body is an array', body: '[]' });
  out.push({ label: 'body is a string', body: '"x"' });
  out.push({ label: 'body is deep', body: JSON.stringify(deepObject()) });
  out.push({ label: 'body is not JSON', body: '{"a":' });
  out.push({ label: 'body has a raw lone surrogate escape', body: '{"a":"\\ud800"}' });
  return out;
}

const HOSTILE_SEGMENTS = ['__proto__', 'constructor', 'prototype', 'x'.repeat(4096), '%ED%A0%80', '%00', '..', '%2F'];
const HOSTILE_QUERIES = [
  'filter=' + encodeURIComponent('{"__proto__":{"polluted":1},"room":{"timeline":{"limit":1}}}'),
  'filter=' + encodeURIComponent(JSON.stringify(deepObject())),
  'filter=' + encodeURIComponent('{"event_fields":["content.__proto__.membership","__proto__.polluted","constructor.prototype.polluted"]}'),
  'filter=' + encodeURIComponent(JSON.stringify({ types: Array.from({ length: 20 }, () => '*a*a*a*a*a*b') })),
  'filter=%7B',
  'filter=' + encodeURIComponent('{"a":"\\ud800"}'),
  'limit=-1&from=zzz&to=%00&dir=q',
  'limit=1e400&since=__proto__&timeout=99999999999999',
  'limit=abc&full_state=maybe&set_presence=__proto__',
  '__proto__=1&constructor=2&prototype=3',
  'via=' + 'a'.repeat(5000) + '&server_name=__proto__',
  'width=-5&height=1e309&method=__proto__&allow_redirect=x',
];

const BUILTIN_PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype];
const ORIGINAL_KEYS = BUILTIN_PROTOTYPES.map((proto) => new Set(Reflect.ownKeys(proto)));

/** Removes what a polluting request added, so the walk goes on to find the next flaw. */
function restorePrototypes(): void {
  BUILTIN_PROTOTYPES.forEach((proto, i) => {
    for (const key of Reflect.ownKeys(proto)) if (!ORIGINAL_KEYS[i]!.has(key)) delete (proto as any)[key];
  });
}

function snapshotPrototypes(): string {
  return JSON.stringify([Object.getOwnPropertyNames(Object.prototype).sort(), Object.getOwnPropertyNames(Array.prototype).sort(), Object.getOwnPropertyNames(Function.prototype).sort()]);
}

interface Actor {
  userId: string;
  accessToken: string;
  deviceId: string;
}

describe('hostile input against every route', () => {
  let server: TestServer;
  let alice: Actor;
  let bob: Actor;
  let victimRoom: string;
  let victimEvent: string;
  let mallory: Actor;
  let malloryRoom: string;
  let malloryEvent: string;
  let generation = 0;
  const prototypesBefore = snapshotPrototypes();

  async function call(method: string, path: string, body?: string, token?: string, headers: Record<string, string> = {}) {
    const init: RequestInit = { method, headers: { ...headers } };
    if (token) (init.headers as Record<string, string>).authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.body = body;
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hang: ${method} ${path.slice(0, 200)} did not answer in ${REQUEST_DEADLINE_MS} ms`)), REQUEST_DEADLINE_MS);
    });
    try {
      const response = await Promise.race([server.homeserver.handleClient(new Request(server.baseUrl + path, init)), deadline]);
      const text = method === 'HEAD' ? '' : await response.text();
      let json: any;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, json, contentType: response.headers.get('content-type') ?? '' };
    } finally {
      clearTimeout(timer);
    }
  }

  async function ok(method: string, path: string, body?: unknown, token?: string) {
    const res = await call(method, path, body === undefined ? undefined : JSON.stringify(body), token);
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json;
  }

  /** A fresh attacker with a room and an event of their own (after a route logged them out or deactivated them). */
  async function newMallory(): Promise<void> {
    generation++;
    mallory = await server.register(`mallory${generation}`, PASSWORD);
    malloryRoom = (await ok('POST', '/_matrix/client/v3/createRoom', { name: 'mallory' }, mallory.accessToken)).room_id;
    malloryEvent = (await ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(malloryRoom)}/send/m.room.message/t0`, { msgtype: 'm.text', body: 'mine' }, mallory.accessToken)).event_id;
  }

  async function ensureMallory(): Promise<void> {
    const who = await call('GET', '/_matrix/client/v3/account/whoami', undefined, mallory.accessToken);
    if (who.status !== 200) await newMallory();
  }

  function fill(template: string, own: boolean): string {
    return template
      .replaceAll('$ME', mallory.userId)
      .replaceAll('$VICTIM', alice.userId)
      .replaceAll('$ROOM', own ? malloryRoom : victimRoom)
      .replaceAll('$EVENT', own ? malloryEvent : victimEvent)
      .replaceAll('$DEVICE', mallory.deviceId)
      .replaceAll('$PASSWORD', PASSWORD)
      .replaceAll('$N', String(generation));
  }

  /** Path parameters: the attacker's own objects (deep code paths) or the victim's (access checks). */
  function paramValue(name: string, own: boolean): string {
    switch (name) {
      case 'roomId':
      case 'roomIdOrAlias':
        return own ? malloryRoom : victimRoom;
      case 'eventId':
        return own ? malloryEvent : victimEvent;
      case 'userId':
        return own ? mallory.userId : alice.userId;
      case 'deviceId':
        return own ? mallory.deviceId : alice.deviceId;
      case 'eventType':
        return 'm.room.message';
      case 'stateKey':
        return own ? '' : alice.userId;
      case 'txnId':
        return `walk${Math.random().toString(36).slice(2)}`;
      case 'type':
        return 'org.example.walk';
      case 'tag':
        return 'u.walk';
      case 'scope':
        return 'global';
      case 'kind':
        return 'override';
      case 'ruleId':
        return 'walk.rule';
      case 'roomAlias':
        return `#walk${generation}:${server.serverName}`;
      case 'serverName':
        return server.serverName;
      case 'mediaId':
        return 'walkmedia';
      case 'fileName':
        return 'file.txt';
      case 'receiptType':
        return 'm.read';
      case 'filterId':
        return '0';
      default:
        return 'x';
    }
  }

  function buildPath(pattern: string, own: boolean, hostile?: { name: string; value: string }): string {
    return pattern.replace(/\{(\w+)\}/g, (_, name: string) =>
      hostile && hostile.name === name ? hostile.value : encodeURIComponent(paramValue(name, own)),
    );
  }

  /** Every broken expectation, so one run shows all of them (a few per route, 300 in all). */
  const failures: string[] = [];
  const failuresPerRoute = new Map<string, number>();
  let currentRoute = '';
  function fail(message: string): void {
    const count = failuresPerRoute.get(currentRoute) ?? 0;
    failuresPerRoute.set(currentRoute, count + 1);
    if (count < 4 && failures.length < 300) failures.push(message.slice(0, 400));
  }

  function check(label: string, method: string, res: { status: number; json: any; contentType: string }): void {
    if (res.status >= 500) fail(`${label}: answered ${res.status} ${JSON.stringify(res.json)}`);
    if (method === 'HEAD') {
      if (res.status === 405) fail(`${label}: HEAD refused on a GET route`);
    } else if (res.status >= 400 && !(res.status === 401 && Array.isArray(res.json?.flows)) && (typeof res.json?.errcode !== 'string' || !res.json.errcode.startsWith('M_'))) {
      fail(`${label}: ${res.status} without a Matrix errcode`);
    }
    if (res.status === 429 && typeof res.json?.retry_after_ms !== 'number') fail(`${label}: 429 without retry_after_ms`);
    if (snapshotPrototypes() !== prototypesBefore) {
      fail(`${label}: a built-in prototype changed`);
      restorePrototypes();
    }
  }

  /** The victims keep working: sync, keys, room history and state, to-device delivery. */
  async function victimsStillServed(after: string): Promise<void> {
    for (const victim of [alice, bob]) {
      const who = `after ${after}: ${victim.userId}'s`;
      const sync = await call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, victim.accessToken);
      if (sync.status !== 200) fail(`${who} /sync ${sync.status} ${JSON.stringify(sync.json)}`);
      else if (!sync.json.rooms?.join?.[victimRoom]) fail(`${who} /sync lost the victim room`);
      const keys = await call('POST', '/_matrix/client/v3/keys/query', JSON.stringify({ device_keys: { [alice.userId]: [], [bob.userId]: [], [mallory.userId]: [] } }), victim.accessToken);
      if (keys.status !== 200) fail(`${who} /keys/query ${keys.status} ${JSON.stringify(keys.json)}`);
      const room = encodeURIComponent(victimRoom);
      const messages = await call('GET', `/_matrix/client/v3/rooms/${room}/messages?dir=b&limit=5`, undefined, victim.accessToken);
      if (messages.status !== 200) fail(`${who} /messages ${messages.status}`);
      const state = await call('GET', `/_matrix/client/v3/rooms/${room}/state`, undefined, victim.accessToken);
      if (state.status !== 200) {
        fail(`${who} /state ${state.status}`);
        continue;
      }
      const members = state.json.filter((e: any) => e.type === 'm.room.member' && e.content.membership === 'join').map((e: any) => e.state_key).sort();
      if (JSON.stringify(members) !== JSON.stringify([alice.userId, bob.userId].sort())) fail(`${who} victim room's members changed: ${members}`);
    }
  }

  beforeAll(async () => {
    server = await startTestServer({ config: WALKER_CONFIG });
    alice = await server.register('alice', PASSWORD);
    bob = await server.register('bob', PASSWORD);
    victimRoom = (await ok('POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat', name: 'secret', invite: [bob.userId] }, alice.accessToken)).room_id;
    await ok('POST', `/_matrix/client/v3/join/${encodeURIComponent(victimRoom)}`, {}, bob.accessToken);
    victimEvent = (await ok('PUT', `/_matrix/client/v3/rooms/${encodeURIComponent(victimRoom)}/send/m.room.message/v1`, { msgtype: 'm.text', body: 'secret' }, alice.accessToken)).event_id;
    await ok('POST', '/_matrix/client/v3/keys/upload', { device_keys: { user_id: alice.userId, device_id: alice.deviceId, algorithms: ['m.megolm.v1.aes-sha2'], keys: { [`ed25519:${alice.deviceId}`]: 'k' }, signatures: {} } }, alice.accessToken);
    await newMallory();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('has an example body for every route that takes one', () => {
    const missing = new Set<string>();
    for (const route of server.homeserver.clientRoutes) {
      if (route.method !== 'POST' && route.method !== 'PUT') continue;
      const key = `${route.method} ${route.path.replace(PREFIX, '')}`;
      if (!(key in BODIES) && !isRawBodyRoute(route.path)) missing.add(key);
    }
    expect([...missing]).toEqual([]);
  });

  it('answers every hostile request to every route with a Matrix error or success, and the victims stay served', async () => {
    const routes = server.homeserver.clientRoutes.filter((r) => WALKED_PREFIXES.some((p) => r.path.startsWith(p + '/')) || !PREFIX.test(r.path));
    const seen = new Set<string>();
    let requests = 0;
    for (const route of routes) {
      const key = `${route.method} ${route.path.replace(PREFIX, '')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      currentRoute = key;
      const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      const example = BODIES[key];
      const methods = route.method === 'GET' ? ['GET', 'HEAD'] : [route.method];

      for (const own of [true, false]) {
        await ensureMallory();
        for (const method of methods) {
          const path = buildPath(route.path, own);
          // Plain call (the example body, filled in), then hostile query strings.
          const plainBody = example === undefined ? undefined : fill(JSON.stringify(example), own);
          check(`${method} ${path} (plain)`, method, await call(method, path, plainBody, mallory.accessToken));
          requests++;
          for (const query of HOSTILE_QUERIES) {
            await ensureMallory();
            check(`${method} ${path}?${query.slice(0, 80)}`, method, await call(method, `${buildPath(route.path, own)}?${query}`, plainBody, mallory.accessToken));
            requests++;
          }
        }
        // Hostile path segments.
        for (const name of params) {
          for (const value of HOSTILE_SEGMENTS) {
            await ensureMallory();
            const path = buildPath(route.path, own, { name, value });
            const body = example === undefined ? undefined : fill(JSON.stringify(example), own);
            check(`${route.method} ${path.slice(0, 200)}`, route.method, await call(route.method, path, body, mallory.accessToken));
            requests++;
          }
        }
        // Hostile bodies (against the attacker's own objects, where the deepest code runs).
        if (own && (route.method === 'POST' || route.method === 'PUT')) {
          const variants = example === undefined ? hostileBodies({}) : hostileBodies(JSON.parse(fill(JSON.stringify(example), own)));
          for (const { label, body } of variants) {
            await ensureMallory();
            const path = buildPath(route.path, own);
            check(`${route.method} ${route.path} with ${label}`, route.method, await call(route.method, path, fill(body, own), mallory.accessToken));
            requests++;
          }
          // Bytes that are not UTF-8 at all.
          check(`${route.method} ${route.path} with invalid UTF-8`, route.method, await call(route.method, buildPath(route.path, own), new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) as unknown as string, mallory.accessToken));
          requests++;
        }
      }
      await victimsStillServed(key);
    }
    expect(failures).toEqual([]);
    expect(seen.size).toBeGreaterThan(80);
    expect(requests).toBeGreaterThan(5000);
  }, 600_000);
});

/** Media uploads take raw bytes, not JSON. */
function isRawBodyRoute(path: string): boolean {
  return /\/upload(\/|$)/.test(path);
}

/** Limits that keep the walk about input, not about throttling (rate limits have their own tests), and long-polls short. */
const WALKER_CONFIG = { maxSyncTimeoutMs: 50, rateLimits: NO_RATE_LIMITS };
