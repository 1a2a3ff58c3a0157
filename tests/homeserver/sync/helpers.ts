/**
 * Helpers for the sync-area tests: users as small API clients over the
 * in-process test server (register, create rooms, send, sync, paginate).
 */
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

const CS = '/_matrix/client/v3';

export interface User {
  userId: string;
  accessToken: string;
  deviceId: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Calls and fails the test on a non-200 answer. */
  ok(method: string, path: string, body?: unknown): Promise<any>;
  createRoom(body?: Record<string, unknown>): Promise<string>;
  send(roomId: string, body: string | Record<string, unknown>, type?: string): Promise<string>;
  join(roomId: string): Promise<void>;
  invite(roomId: string, userId: string): Promise<void>;
  leave(roomId: string): Promise<void>;
  sync(params?: Record<string, string | number | boolean | object>): Promise<any>;
}

let txnCounter = 0;

export function enc(value: string): string {
  return encodeURIComponent(value);
}

export function query(params: Record<string, string | number | boolean | object | undefined>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    parts.push(`${key}=${enc(typeof value === 'object' ? JSON.stringify(value) : String(value))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

export function userOf(server: TestServer, account: { userId: string; accessToken: string; deviceId: string }): User {
  const call = (method: string, path: string, body?: unknown) => server.call(method, CS + path, body, account.accessToken);
  const ok = async (method: string, path: string, body?: unknown) => {
    const { status, json } = await call(method, path, body);
    if (status !== 200) throw new Error(`${method} ${path} -> ${status} ${JSON.stringify(json)}`);
    return json;
  };
  return {
    ...account,
    call,
    ok,
    async createRoom(body = {}) {
      return (await ok('POST', '/createRoom', body)).room_id;
    },
    async send(roomId, body, type = 'm.room.message') {
      const content = typeof body === 'string' ? { msgtype: 'm.text', body } : body;
      return (await ok('PUT', `/rooms/${enc(roomId)}/send/${enc(type)}/t${++txnCounter}`, content)).event_id;
    },
    async join(roomId) {
      await ok('POST', `/join/${enc(roomId)}`, {});
    },
    async invite(roomId, userId) {
      await ok('POST', `/rooms/${enc(roomId)}/invite`, { user_id: userId });
    },
    async leave(roomId) {
      await ok('POST', `/rooms/${enc(roomId)}/leave`, {});
    },
    async sync(params = {}) {
      return ok('GET', `/sync${query(params)}`);
    },
  };
}

/**
 * The storage the sync tests run on: memory by default; `SYNC_TEST_STORAGE=idb`
 * (fake-indexeddb) or `=sqlite` (a temporary file) run the same suites on the
 * other backends, which catches transactions that would go inactive.
 */
async function testStorage(): Promise<Storage | undefined> {
  const backend = process.env.SYNC_TEST_STORAGE;
  if (backend === 'idb') {
    // Installs the global IDB* classes `idb` checks requests against (a side effect; the module has no usable types).
    const auto = 'fake-indexeddb/auto';
    await import(auto);
    const { IDBFactory, IDBKeyRange } = await import('fake-indexeddb');
    const { openIdbStorage } = await import('../../../src/storage/idb/index.js');
    return openIdbStorage('sync-test', { indexedDB: new IDBFactory(), IDBKeyRange });
  }
  if (backend === 'sqlite') {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { openSqliteStorage } = await import('../../../src/storage/sqlite/index.js');
    // Left in the OS temp directory: this switch is for manual runs.
    return openSqliteStorage(join(mkdtempSync(join(tmpdir(), 'sync-test-')), 'hs.sqlite'));
  }
  return undefined;
}

export async function setup(...localparts: string[]): Promise<{ server: TestServer; users: User[] }> {
  const storage = await testStorage();
  const started = await startTestServer({ storage });
  // A storage handed in is the caller's to close; close it with the server.
  const server: TestServer = storage ? { ...started, close: async () => (await started.close(), await storage.close()) } : started;
  const users: User[] = [];
  for (const localpart of localparts) users.push(userOf(server, await server.register(localpart)));
  return { server, users };
}

/** Event IDs of a list of client events. */
export function ids(events: Array<{ event_id: string }>): string[] {
  return events.map((e) => e.event_id);
}

/** Bodies of the m.room.message events of a list. */
export function bodies(events: Array<{ type: string; content: { body?: string } }>): string[] {
  return events.filter((e) => e.type === 'm.room.message').map((e) => e.content.body!);
}
