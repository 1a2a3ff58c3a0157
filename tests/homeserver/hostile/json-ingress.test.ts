/**
 * The JSON ingress over HTTP (issue 6): bodies and JSON query parameters get
 * the same answers on every route, the limits come from HomeserverConfig, and
 * the lone-surrogate display name that used to break every later createRoom
 * inviting its owner is refused on input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

const V3 = '/_matrix/client/v3';
const enc = encodeURIComponent;
const nested = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('JSON ingress over HTTP', () => {
  it('refuses a display name with a lone surrogate (400 M_BAD_JSON); createRoom inviting its owner still works', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const bad = await server.call('PUT', `${V3}/profile/${enc(bob.userId)}/displayname`, '{"displayname":"b\\ud800b"}', bob.accessToken);
    expect([bad.status, bad.json.errcode]).toEqual([400, 'M_BAD_JSON']);
    const created = await server.call('POST', `${V3}/createRoom`, { invite: [bob.userId] }, alice.accessToken);
    expect(created.status).toBe(200);
  });

  it('answers bodies: not UTF-8 → M_NOT_JSON, too deep → M_BAD_JSON, not an object → M_BAD_JSON, array too long → 413', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    const path = `${V3}/user/${enc(alice.userId)}/account_data/m.test`;
    const cases: [string | Uint8Array, number, string][] = [
      [new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), 400, 'M_NOT_JSON'],
      ['{"a":', 400, 'M_NOT_JSON'],
      [nested(101), 400, 'M_BAD_JSON'],
      ['[1]', 400, 'M_BAD_JSON'],
      [`{"a":[${Array(10_001).fill(0).join(',')}]}`, 413, 'M_TOO_LARGE'],
    ];
    for (const [body, status, errcode] of cases) {
      const res = await server.call('PUT', path, body, alice.accessToken, { 'content-type': 'application/json' });
      expect([res.status, res.json.errcode]).toEqual([status, errcode]);
    }
    expect((await server.call('PUT', path, nested(99), alice.accessToken)).status).toBe(200);
  });

  it('answers JSON query parameters (filter= on /sync, /messages, /context) the same way', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    const room = (await server.call('POST', `${V3}/createRoom`, {}, alice.accessToken)).json.room_id as string;
    const eventId = (await server.call('PUT', `${V3}/rooms/${enc(room)}/send/m.room.message/t1`, { msgtype: 'm.text', body: 'x' }, alice.accessToken)).json.event_id as string;
    const paths = [`${V3}/sync?filter=`, `${V3}/rooms/${enc(room)}/messages?dir=b&filter=`, `${V3}/rooms/${enc(room)}/context/${enc(eventId)}?filter=`];
    const filters: [string, number, string][] = [
      [`{"room":{"timeline":${nested(100)}}}`, 400, 'M_BAD_JSON'],
      ['{"types":["\\udc00"]}', 400, 'M_BAD_JSON'],
      ['{"types":', 400, 'M_NOT_JSON'],
    ];
    for (const path of paths) {
      for (const [filter, status, errcode] of filters) {
        const res = await server.call('GET', path + enc(filter), undefined, alice.accessToken);
        expect([path, res.status, res.json.errcode]).toEqual([path, status, errcode]);
      }
      expect((await server.call('GET', path + enc('{"limit":5}'), undefined, alice.accessToken)).status).toBe(200);
    }
  });

  it('answers 400 M_BAD_JSON, not 500, when a too generous maxJsonDepth lets through a value storage refuses', async () => {
    server = await startTestServer({ config: { maxJsonDepth: 5_000 } });
    const alice = await server.register('alice');
    const res = await server.call('PUT', `${V3}/user/${enc(alice.userId)}/account_data/m.test`, nested(2_400), alice.accessToken);
    expect([res.status, res.json.errcode]).toEqual([400, 'M_BAD_JSON']);
    const sync = await server.call('GET', `${V3}/sync`, undefined, alice.accessToken);
    expect(sync.status).toBe(200);
  });

  it('takes its depth limit from HomeserverConfig.maxJsonDepth', async () => {
    server = await startTestServer({ config: { maxJsonDepth: 5 } });
    const alice = await server.register('alice');
    const path = `${V3}/user/${enc(alice.userId)}/account_data/m.test`;
    expect((await server.call('PUT', path, nested(4), alice.accessToken)).status).toBe(200);
    const deep = await server.call('PUT', path, nested(6), alice.accessToken);
    expect([deep.status, deep.json.errcode]).toEqual([400, 'M_BAD_JSON']);
    const sync = await server.call('GET', `${V3}/sync?filter=${enc(`{"room":{"timeline":${nested(4)}}}`)}`, undefined, alice.accessToken);
    expect([sync.status, sync.json.errcode]).toEqual([400, 'M_BAD_JSON']);
  });
});
