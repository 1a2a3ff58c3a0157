/**
 * Shared setup for the rooms tests: a test server with registered users, a
 * small client per user (paths under /_matrix/client/v3, room IDs encoded),
 * and a dump of everything a room write can change, to show that refused
 * requests leave storage exactly as it was.
 */
import { expect, onTestFinished } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';
import type { Storage } from '../../../src/storage/types.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';

export interface Client {
  userId: string;
  accessToken: string;
  deviceId: string;
  /** Calls `/_matrix/client/v3` + path. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  createRoom(body?: Record<string, unknown>): Promise<string>;
  send(roomId: string, content?: Record<string, unknown>, txnId?: string, type?: string): Promise<string>;
  putState(roomId: string, type: string, stateKey: string, content: Record<string, unknown>): Promise<{ status: number; json: any }>;
}

export const enc = encodeURIComponent;

let txnCounter = 0;

export async function withUsers(server: TestServer, ...localparts: string[]): Promise<Client[]> {
  const clients: Client[] = [];
  for (const localpart of localparts) {
    const user = await server.register(localpart);
    const call = (method: string, path: string, body?: unknown) => server.call(method, '/_matrix/client/v3' + path, body, user.accessToken);
    clients.push({
      ...user,
      call,
      async createRoom(body = {}) {
        const { status, json } = await call('POST', '/createRoom', body);
        expect(status, JSON.stringify(json)).toBe(200);
        return json.room_id;
      },
      async send(roomId, content = { msgtype: 'm.text', body: 'hello' }, txnId = `t${++txnCounter}`, type = 'm.room.message') {
        const { status, json } = await call('PUT', `/rooms/${enc(roomId)}/send/${enc(type)}/${enc(txnId)}`, content);
        expect(status, JSON.stringify(json)).toBe(200);
        return json.event_id;
      },
      putState(roomId, type, stateKey, content) {
        return call('PUT', `/rooms/${enc(roomId)}/state/${enc(type)}/${enc(stateKey)}`, content);
      },
    });
  }
  return clients;
}

export async function setup(...localparts: string[]): Promise<{ server: TestServer; clients: Client[] }> {
  const server = await startTestServer();
  const clients = await withUsers(server, ...localparts);
  return { server, clients };
}

/**
 * Two federated servers, alice on A and bob on B, both joined to a room alice creates with `createBody`
 * (bob joins through A), with the join delivered. The network closes when the test ends.
 */
export async function twoServersInRoom(createBody: Record<string, unknown>): Promise<{ net: FederatedNetwork; a: TestServer; b: TestServer; alice: Client; bob: Client; roomId: string }> {
  const net = await startFederation(2);
  onTestFinished(() => net.close());
  const [a, b] = net.servers as [TestServer, TestServer];
  const [alice] = (await withUsers(a, 'alice')) as [Client];
  const [bob] = (await withUsers(b, 'bob')) as [Client];
  const roomId = await alice.createRoom(createBody);
  const joined = await bob.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {});
  expect(joined.status, JSON.stringify(joined.json)).toBe(200);
  await net.flush();
  return { net, a, b, alice, bob, roomId };
}

/** Everything room writes touch, in comparable form. */
export async function dumpRooms(storage: Storage): Promise<unknown> {
  return storage.read(async (txn) => {
    const rooms = await txn.rooms.list();
    const out: Record<string, unknown> = { position: await txn.stream.current(), directory: (await txn.directory.list()).sort() };
    for (const room of rooms) {
      out[room.roomId] = {
        room,
        state: [...(await txn.currentState.load(room.roomId))].sort(),
        extremities: (await txn.dag.extremities(room.roomId)).sort(),
        members: (await txn.memberships.forRoom(room.roomId)).sort((a, b) => a.userId.localeCompare(b.userId)),
        aliases: await txn.aliases.forRoom(room.roomId),
      };
    }
    return out;
  });
}

/** Runs `fn` and checks that it left the rooms' stored data unchanged. */
export async function expectUnchanged(storage: Storage, fn: () => Promise<void>): Promise<void> {
  const before = await dumpRooms(storage);
  await fn();
  expect(await dumpRooms(storage)).toEqual(before);
}

/** The full state of a room as (type, state_key) -> content, through the API. */
export async function stateOf(client: Client, roomId: string): Promise<Map<string, any>> {
  const { status, json } = await client.call('GET', `/rooms/${enc(roomId)}/state`);
  expect(status, JSON.stringify(json)).toBe(200);
  return new Map(json.map((e: any) => [`${e.type}|${e.state_key}`, e]));
}
