/**
 * Issue 6, prototype pollution, written as the attack. The worst case seen:
 * an `event_fields` path `content.__proto__.membership` over an event whose
 * content has an own `__proto__` key set Object.prototype.membership for the
 * whole process, and a stranger then joined invite-only rooms. Here, with the
 * shared prototypes frozen (frozen-prototypes.ts) so a write attempt fails
 * loudly, every request is checked afterwards: Object.prototype and
 * Array.prototype have no new properties, events with own `__proto__`,
 * `constructor` and `prototype` keys at several depths round-trip byte for
 * byte through /sync and /event, and a stranger still cannot join.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;

/** Own property names and symbols of the shared prototypes, to compare after each request. */
const snapshot = () => [Reflect.ownKeys(Object.prototype), Reflect.ownKeys(Array.prototype), Reflect.ownKeys(Function.prototype)];
let before: ReturnType<typeof snapshot>;

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let eve: { userId: string; accessToken: string; deviceId: string };
let roomId: string;

/** Calls the API, then checks that no shared prototype changed and nothing answered 500. */
async function call(method: string, path: string, body: unknown, token: string): Promise<{ status: number; json: any; text: string }> {
  const result = await server.call(method, V3 + path, body, token);
  const text = await result.response.text();
  expect(snapshot(), `${method} ${path} changed a shared prototype`).toEqual(before);
  expect(({} as Record<string, unknown>).membership, `${method} ${path}`).toBeUndefined();
  expect(result.status, `${method} ${path}: ${text}`).not.toBe(500);
  return { status: result.status, json: result.json, text };
}

/** Contents (as wire text) with own `__proto__`, `constructor` and `prototype` keys at several depths. */
const HOSTILE_CONTENTS = [
  '{"msgtype":"m.text","body":"a","__proto__":{"membership":"join","x":1}}',
  '{"msgtype":"m.text","body":"b","constructor":{"prototype":{"membership":"join"}}}',
  '{"msgtype":"m.text","body":"c","prototype":{"__proto__":{"membership":"join"}}}',
  '{"msgtype":"m.text","body":"d","nested":{"deeper":{"__proto__":{"membership":"join"},"list":[{"__proto__":{"y":2}},{"constructor":{"prototype":{"z":3}}}]}}}',
  '{"__proto__":{"__proto__":{"__proto__":{"membership":"join"}}},"body":"e","msgtype":"m.text"}',
];

/** `event_fields` paths that walk into inherited objects. */
const HOSTILE_FIELDS = [
  'content.__proto__.membership',
  '__proto__.x',
  'constructor.prototype.x',
  'content.constructor.prototype.membership',
  'content.prototype.__proto__.membership',
  'content.__proto__.__proto__.__proto__.membership',
  'content.nested.deeper.__proto__.membership',
  'unsigned.__proto__.toString',
];

/** The text of `content` inside a response's text, as sent: no reparsing, which could hide a changed key. */
function contentTextIn(responseText: string, sentContent: string): boolean {
  return responseText.includes(`"content":${sentContent}`);
}

beforeEach(async () => {
  before = snapshot();
  server = await startTestServer();
  alice = await server.register('alice');
  eve = await server.register('eve');
  const created = await call('POST', '/createRoom', { preset: 'private_chat' }, alice.accessToken);
  roomId = created.json.room_id;
});

afterEach(async () => {
  await server.close();
});

describe('prototype pollution', () => {
  it('runs with the shared prototypes frozen', () => {
    expect(Object.isFrozen(Object.prototype)).toBe(true);
    expect(Object.isFrozen(Array.prototype)).toBe(true);
  });

  it('events with own __proto__, constructor and prototype keys round-trip byte for byte in /event and /sync', async () => {
    const ids: string[] = [];
    for (const [i, content] of HOSTILE_CONTENTS.entries()) {
      const sent = await call('PUT', `/rooms/${enc(roomId)}/send/m.room.message/p${i}`, content, alice.accessToken);
      expect(sent.status).toBe(200);
      ids.push(sent.json.event_id);
    }
    for (const [i, eventId] of ids.entries()) {
      const event = await call('GET', `/rooms/${enc(roomId)}/event/${enc(eventId)}`, undefined, alice.accessToken);
      expect(event.status).toBe(200);
      expect(contentTextIn(event.text, HOSTILE_CONTENTS[i]!), event.text).toBe(true);
    }
    const sync = await call('GET', '/sync', undefined, alice.accessToken);
    expect(sync.status).toBe(200);
    for (const content of HOSTILE_CONTENTS) expect(contentTextIn(sync.text, content), content).toBe(true);
    const messages = await call('GET', `/rooms/${enc(roomId)}/messages?dir=b&limit=50`, undefined, alice.accessToken);
    for (const content of HOSTILE_CONTENTS) expect(contentTextIn(messages.text, content), content).toBe(true);
  });

  for (const field of HOSTILE_FIELDS) {
    it(`event_fields ${field}, uploaded and inline, leaves the prototypes alone and a stranger outside`, async () => {
      for (const [i, content] of HOSTILE_CONTENTS.entries()) {
        await call('PUT', `/rooms/${enc(roomId)}/send/m.room.message/f${i}`, content, alice.accessToken);
      }
      const filter = { event_fields: [field, 'type', 'content.body'] };
      const uploaded = await call('POST', `/user/${enc(alice.userId)}/filter`, filter, alice.accessToken);
      expect(uploaded.status).toBe(200);
      for (const filterParam of [uploaded.json.filter_id, JSON.stringify(filter)]) {
        const sync = await call('GET', `/sync?filter=${enc(filterParam)}`, undefined, alice.accessToken);
        expect(sync.status).toBe(200);
      }
      const messages = await call('GET', `/rooms/${enc(roomId)}/messages?dir=b&filter=${enc(JSON.stringify(filter))}`, undefined, alice.accessToken);
      expect(messages.status).toBe(200);

      const join = await call('POST', `/rooms/${enc(roomId)}/join`, {}, eve.accessToken);
      expect([join.status, join.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    });
  }

  it('request bodies and path parameters keyed by __proto__, constructor and prototype are data, not prototypes', async () => {
    const room = enc(roomId);
    const me = enc(alice.userId);
    const requests: [string, string, unknown][] = [
      ['PUT', `/user/${me}/account_data/m.hostile`, '{"__proto__":{"membership":"join"},"constructor":{"prototype":{"x":1}}}'],
      ['PUT', `/user/${me}/rooms/${room}/account_data/m.hostile`, '{"a":{"__proto__":{"membership":"join"}}}'],
      ['PUT', `/user/${me}/rooms/${room}/tags/__proto__`, '{"order":0.5}'],
      ['PUT', `/user/${me}/rooms/${room}/tags/constructor`, '{"order":0.25}'],
      // Some keys are refused as user IDs before any code uses them; each such request has a twin with a valid
      // user ID, so the hostile keys one level down reach the code that indexes with them.
      ['PUT', '/sendToDevice/m.test/h1', `{"messages":{"__proto__":{"__proto__":{"membership":"join"}}}}`],
      ['PUT', '/sendToDevice/m.test/h2', `{"messages":{"${alice.userId}":{"__proto__":{"a":1},"constructor":{"prototype":{"x":1}}}}}`],
      ['POST', '/keys/upload', '{"one_time_keys":{"__proto__:AAAA":{"key":"k"},"constructor:BBBB":"k2"},"fallback_keys":{"__proto__:CCCC":"k3"}}'],
      ['POST', '/keys/query', '{"device_keys":{"__proto__":[],"constructor":["prototype"]}}'],
      ['POST', '/keys/query', `{"device_keys":{"${alice.userId}":["__proto__","constructor"]}}`],
      ['POST', '/keys/claim', `{"one_time_keys":{"__proto__":{"__proto__":"signed_curve25519"}}}`],
      ['POST', '/keys/claim', `{"one_time_keys":{"${alice.userId}":{"__proto__":"__proto__","constructor":"__proto__"}}}`],
      ['POST', '/keys/signatures/upload', `{"__proto__":{"__proto__":{"membership":"join"}}}`],
      ['POST', '/keys/signatures/upload', `{"${alice.userId}":{"__proto__":{"signatures":{"__proto__":{"x":"y"}}},"constructor":{}}}`],
      ['POST', '/createRoom', '{"preset":"private_chat","power_level_content_override":{"users":{"__proto__":100}},"creation_content":{"__proto__":{"membership":"join"}}}'],
      ['POST', '/createRoom', '{"invite":["__proto__","constructor"],"preset":"trusted_private_chat"}'],
      ['PUT', `/rooms/${room}/state/m.hostile/__proto__`, '{"__proto__":{"membership":"join"}}'],
      ['PUT', `/rooms/${room}/state/__proto__/constructor`, '{"prototype":{"membership":"join"}}'],
      ['POST', `/rooms/${room}/receipt/m.read/__proto__`, '{}'],
      ['POST', `/rooms/${room}/read_markers`, '{"m.fully_read":"__proto__","m.read":"constructor"}'],
      ['PUT', `/profile/${me}/displayname`, '{"displayname":"__proto__","__proto__":{"membership":"join"}}'],
      ['POST', `/user/${me}/filter`, '{"__proto__":{"membership":"join"},"room":{"__proto__":{"x":1},"timeline":{"constructor":{"prototype":1}}}}'],
      ['PUT', '/pushrules/global/override/__proto__', '{"actions":["notify"],"conditions":[{"kind":"event_match","key":"content.__proto__.membership","pattern":"join"}]}'],
      ['PUT', '/devices/__proto__', '{"display_name":"x"}'],
      ['PUT', `/presence/${me}/status`, '{"presence":"online","__proto__":{"membership":"join"}}'],
    ];
    for (const [method, path, body] of requests) await call(method, path, body, alice.accessToken);

    for (const token of [alice.accessToken, eve.accessToken]) {
      expect((await call('GET', '/sync', undefined, token)).status).toBe(200);
      expect((await call('POST', '/keys/query', { device_keys: { [alice.userId]: [] } }, token)).status).toBe(200);
    }
    expect((await call('GET', '/pushrules/', undefined, alice.accessToken)).status).toBe(200);
    const tags = await call('GET', `/user/${me}/rooms/${room}/tags`, undefined, alice.accessToken);
    expect(tags.text).toContain('"__proto__":{"order":0.5}');
    const join = await call('POST', `/rooms/${room}/join`, {}, eve.accessToken);
    expect([join.status, join.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
  });
});
