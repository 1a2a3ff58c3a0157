/**
 * The accounts endpoints' table of bad inputs (fixtures/bad-inputs.json): each
 * request gets the spec's errcode and HTTP status, and storage is exactly as
 * it was before.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { accountsServer, snapshot, V3 } from './helpers.js';

interface BadInput {
  name: string;
  method: string;
  path: string;
  token: 'alice' | 'bob' | 'none' | 'bogus';
  body?: unknown;
  raw?: string;
  status: number;
  errcode: string | null;
}

const TABLE: BadInput[] = JSON.parse(readFileSync(new URL('./fixtures/bad-inputs.json', import.meta.url), 'utf8'));
const ROOM = '!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';

let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };
let bob: { userId: string; accessToken: string; deviceId: string };

beforeAll(async () => {
  server = await accountsServer();
  alice = await server.register('alice', 'pw');
  bob = await server.register('bob', 'pw');
  // One filter and one tag exist, so "someone else's" rows have something to reach for.
  await server.call('POST', `${V3}/user/${bob.userId}/filter`, { room: { timeline: { limit: 5 } } }, bob.accessToken);
});
afterAll(async () => {
  await server.close();
});

function expand(path: string): string {
  return path
    .replaceAll('{alice}', encodeURIComponent(alice.userId))
    .replaceAll('{bob}', encodeURIComponent(bob.userId))
    .replaceAll('{aliceDevice}', alice.deviceId)
    .replaceAll('{bobDevice}', bob.deviceId)
    .replaceAll('{room}', encodeURIComponent(ROOM));
}

describe('bad inputs to the accounts endpoints', () => {
  it('has a table', () => {
    expect(TABLE.length).toBeGreaterThan(100);
  });

  for (const row of TABLE) {
    it(`${row.name}: ${row.status} ${row.errcode ?? '(UIA)'}`, async () => {
      const before = await snapshot(server.storage, [alice.userId, bob.userId]);
      const token = row.token === 'alice' ? alice.accessToken : row.token === 'bob' ? bob.accessToken : row.token === 'bogus' ? 'bogus' : undefined;
      const path = row.path.startsWith('/no/') ? row.path : `${V3}${expand(row.path)}`;
      const { status, json } = await server.call(row.method, path, row.raw ?? row.body, token, row.raw ? { 'content-type': 'application/json' } : {});
      expect(status).toBe(row.status);
      if (row.errcode) {
        expect(json.errcode).toBe(row.errcode);
        expect(typeof json.error).toBe('string');
      } else {
        expect(json).toMatchObject({ flows: expect.any(Array), params: {}, session: expect.any(String) });
        expect(json.errcode).toBeUndefined();
      }
      expect(await snapshot(server.storage, [alice.userId, bob.userId])).toEqual(before);
    });
  }

  it('refuses a body over the configured limit with 413 M_TOO_LARGE', async () => {
    const before = await snapshot(server.storage, [alice.userId, bob.userId]);
    const { status, json } = await server.call('PUT', `${V3}/user/${encodeURIComponent(alice.userId)}/account_data/x.big`, { blob: 'x'.repeat(1024 * 1024) }, alice.accessToken);
    expect([status, json.errcode]).toEqual([413, 'M_TOO_LARGE']);
    expect(await snapshot(server.storage, [alice.userId, bob.userId])).toEqual(before);
  });

  it('still serves the users afterwards', async () => {
    expect((await server.call('GET', `${V3}/account/whoami`, undefined, alice.accessToken)).json.user_id).toBe(alice.userId);
    const login = await server.call('POST', `${V3}/login`, { type: 'm.login.password', user: 'alice', password: 'pw' });
    expect(login.status).toBe(200);
  });
});
