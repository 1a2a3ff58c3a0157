// History from before a server joined (backfill), driven by matrix-js-sdk clients on in-process servers: a late
// joiner's timeline starts with recent history, and paging back (scrollback -> /messages -> backfill) brings the
// rest, in order, when history_visibility is "shared"; with "joined", the resident server gives nothing from
// before the join and the late joiner sees none of it. Backfilled events never reach /sync as news, and forward
// extremities and current state are untouched by them.
import { Direction, EventType, type MatrixClient } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestServer } from '../harness.js';
import { eventIdOf, type PDU } from '../../../src/core/index.js';
import type { FederationClient } from '../../../src/homeserver/index.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { registerClient, startAndSync } from '../../clients/js-sdk-scenario.js';

let net: FederatedNetwork | undefined;
const clients: MatrixClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.stopClient();
  await net?.close();
  net = undefined;
});

const target = (server: TestServer) => ({
  baseUrl: server.baseUrl,
  fetchFn: ((input: RequestInfo | URL, init?: RequestInit) => server.homeserver.handleClient(new Request(input, init))) as typeof fetch,
});

const messageBodies = (client: MatrixClient, roomId: string) =>
  (client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getType() === EventType.RoomMessage).map((e) => e.getContent().body as string);

/** Pages back until the timeline has no more to give; returns the pages taken. */
async function scrollToStart(client: MatrixClient, roomId: string): Promise<number> {
  const room = client.getRoom(roomId)!;
  let pages = 0;
  while (pages < 50) {
    const before = room.getLiveTimeline().getEvents().length;
    await client.scrollback(room, 10);
    pages++;
    if (room.getLiveTimeline().getEvents().length === before && room.getLiveTimeline().getPaginationToken(Direction.Backward) === null) break;
  }
  return pages;
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    if (waited > 20_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two servers with their outboxes pumped, alice's client on A and bob's on B (stopped after the test). */
async function aliceAndBob() {
  const network = await startFederation(2);
  net = network;
  const stopPump = network.pump();
  const [a, b] = network.servers as [TestServer, TestServer];
  const alice = await registerClient(target(a), 'alice');
  const bob = await registerClient(target(b), 'bob');
  clients.push(alice, bob);
  return { net: network, a, b, alice, bob, stopPump };
}

const historyRoom = (visibility: 'shared' | 'joined') => ({ name: 'history', initial_state: [{ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: visibility } }] });

async function lateJoin(visibility: 'shared' | 'joined', count: number) {
  const { net, a, b, alice, bob, stopPump } = await aliceAndBob();
  const { room_id: roomId } = await alice.createRoom(historyRoom(visibility));
  const sent: string[] = [];
  for (let i = 0; i < count; i++) {
    const body = `before bob ${i}`;
    await alice.sendTextMessage(roomId, body);
    sent.push(body);
  }
  await alice.invite(roomId, bob.getUserId()!);
  await net.flush();
  await bob.joinRoom(roomId);
  await net.flush();
  return { a, b, alice, bob, roomId, sent, stopPump };
}

describe('backfill: history from before a server joined', () => {
  it('shared: the late joiner starts with recent history and pages back to the room\'s start, in order', async () => {
    const { a, b, bob, roomId, sent, stopPump } = await lateJoin('shared', 45);
    // The join fetched a first page: B holds some history before any client asked.
    const heldAfterJoin = await b.storage.read(async (t) => (await t.timeline.topological(roomId, { dir: 'f', limit: 1000 })).filter((r) => r.event.type === 'm.room.message').length);
    expect(heldAfterJoin).toBeGreaterThan(0);
    expect(heldAfterJoin).toBeLessThan(sent.length);
    const extremities = await b.storage.read((t) => t.dag.extremities(roomId));
    const state = await b.storage.read((t) => t.currentState.load(roomId));

    await startAndSync(bob);
    // The initial sync's timeline is not empty: it ends with the newest history and the join.
    expect(messageBodies(bob, roomId).length).toBeGreaterThan(0);
    expect(messageBodies(bob, roomId).at(-1)).toBe(sent.at(-1));

    await scrollToStart(bob, roomId);
    expect(messageBodies(bob, roomId)).toEqual(sent);
    const timeline = bob.getRoom(roomId)!.getLiveTimeline().getEvents();
    expect(timeline[0]!.getType()).toBe(EventType.RoomCreate);

    // History changed nothing of the room's present on B, and A's DAG and B's agree.
    expect(await b.storage.read((t) => t.dag.extremities(roomId))).toEqual(extremities);
    expect([...(await b.storage.read((t) => t.currentState.load(roomId)))].sort()).toEqual([...state].sort());
    const idsOn = async (s: TestServer) => (await s.storage.read((t) => t.timeline.topological(roomId, { dir: 'f', limit: 1000 }))).map((r) => r.eventId);
    expect(await idsOn(b)).toEqual(await idsOn(a));
    stopPump();
  }, 60_000);

  it('shared: a client that was running through the invite and the join pages back into the history from before the join', async () => {
    const { a, b, alice, bob, stopPump } = await aliceAndBob();
    await startAndSync(bob);
    const { room_id: roomId } = await alice.createRoom(historyRoom('shared'));
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      sent.push(`before bob ${i}`);
      await alice.sendTextMessage(roomId, sent.at(-1)!);
    }
    await alice.invite(roomId, bob.getUserId()!);
    await waitFor('bob to see the invite', () => bob.getRoom(roomId)?.getMyMembership() === 'invite');
    await bob.joinRoom(roomId);
    await waitFor('bob to see his join', () => bob.getRoom(roomId)?.getMyMembership() === 'join');
    // The room came to his client as an invite; the sync that says he joined must be limited (B holds the room
    // only from a first page of history on), or matrix-js-sdk keeps the invite's timeline, which has no
    // pagination token, and he can never scroll back. And a full page of /messages that reaches the oldest event
    // B holds must still lead on (a backfill, or an `end`), or the client stops there.
    await scrollToStart(bob, roomId);
    expect(messageBodies(bob, roomId)).toEqual(sent);
    stopPump();
  }, 60_000);

  it('backfilled events are not /sync news: an incremental sync after a backfill carries none of them', async () => {
    const { b, bob, roomId, stopPump } = await lateJoin('shared', 30);
    const login = await b.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, bob.getAccessToken()!);
    const since = login.json.next_batch as string;
    const page = await b.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`, undefined, bob.getAccessToken()!);
    expect(page.status).toBe(200);
    expect(page.json.chunk.filter((e: { type: string }) => e.type === 'm.room.message')).toHaveLength(30);
    const later = await b.call('GET', `/_matrix/client/v3/sync?timeout=0&since=${since}`, undefined, bob.getAccessToken()!);
    expect(later.json.rooms?.join?.[roomId]?.timeline?.events ?? []).toEqual([]);
    stopPump();
  }, 60_000);

  it('joined: nothing from before the join is given to the late joiner\'s server, nor shown', async () => {
    const { a, b, alice, bob, roomId, stopPump } = await lateJoin('joined', 12);
    await startAndSync(bob);
    await scrollToStart(bob, roomId);
    expect(messageBodies(bob, roomId)).toEqual([]);
    // The gap A will not fill is not asked about again on every page request.
    const backfills = () => net!.log.filter((l) => l.startsWith('GET /_matrix/federation/v1/backfill/')).length;
    const asked = backfills();
    for (let i = 0; i < 3; i++) {
      const page = await b.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, undefined, bob.getAccessToken()!);
      expect(page.status).toBe(200);
    }
    expect(backfills()).toBe(asked);
    // The resident filtered its answers for B: B holds no message from before its join at all.
    const held = await b.storage.read(async (t) => (await t.timeline.topological(roomId, { dir: 'f', limit: 1000 })).filter((r) => r.event.type === 'm.room.message'));
    expect(held).toEqual([]);
    // What is said after the join is seen.
    await alice.sendTextMessage(roomId, 'after bob joined');
    await net!.flush();
    const page = await b.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`, undefined, bob.getAccessToken()!);
    expect(page.json.chunk.filter((e: { type: string }) => e.type === 'm.room.message').map((e: { content: { body: string } }) => e.content.body)).toEqual(['after bob joined']);
    expect(a.serverName).not.toBe(b.serverName);
    stopPump();
  }, 60_000);
});

describe('hostile backfill answers', () => {
  /** B's honest federation client, as the harness wires it: A's handler with B as the authenticated origin. */
  const honestClient = (from: TestServer, to: TestServer): FederationClient => ({
    async request(server, request) {
      expect(server).toBe(to.serverName);
      const init: RequestInit = request.body === undefined ? { method: request.method } : { method: request.method, body: JSON.stringify(request.body), headers: { 'content-type': 'application/json' } };
      const response = await to.homeserver.handleFederation(new Request(`http://${server}${request.path}`, init), from.serverName);
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
  });

  it('drops forged, foreign and malformed events with a logged reason and stores none of them', async () => {
    const warnings: string[] = [];
    net = await startFederation(2, { log: { debug() {}, error() {}, warn: (m: string) => void warnings.push(m) } });
    const [a, b] = net.servers as [TestServer, TestServer];
    const alice = await registerClient(target(a), 'alice');
    const bob = await registerClient(target(b), 'bob');
    clients.push(alice, bob);
    const { room_id: roomId } = await alice.createRoom({ name: 'history' });
    const { room_id: otherRoom } = await alice.createRoom({ name: 'elsewhere' });
    for (let i = 0; i < 3; i++) await alice.sendTextMessage(roomId, `old ${i}`);
    await alice.sendTextMessage(otherRoom, 'not this room');
    // A's own PDUs, to doctor.
    const pdusOf = async (room: string) =>
      (await a.storage.read((t) => t.timeline.topological(room, { dir: 'f', limit: 100 }))).map((r) => {
        const { unsigned: _u, ...wire } = r.event as Record<string, unknown>;
        return wire;
      });
    const history = (await pdusOf(roomId)).filter((p) => p.type === 'm.room.message');
    const foreign = (await pdusOf(otherRoom)).filter((p) => p.type === 'm.room.message');
    const forged = { ...history[0]!, content: { ...(history[0]!.content as object), body: 'forged' }, hashes: { sha256: 'AAAA' } };
    const badSender = { ...history[1]!, sender: '@mallory:' + 'f'.repeat(64) };

    await alice.invite(roomId, bob.getUserId()!);
    await net.flush();
    // From here B's federation client is hostile for backfill and state; everything else reaches A as before.
    const honest = honestClient(b, a);
    b.homeserver.replication.setClient({
      async request(server, request, options) {
        if (request.path.startsWith('/_matrix/federation/v1/backfill/')) return { status: 200, body: { pdus: [forged, badSender, ...foreign, {}, 'junk'] } };
        if (request.path.startsWith('/_matrix/federation/v1/state/')) return { status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no' } };
        return honest.request(server, request, options);
      },
    });
    await bob.joinRoom(roomId);
    const ids = [...history, ...foreign].map((p) => eventIdOf(p as unknown as PDU, '12'));
    const held = async () => (await b.storage.read((t) => t.events.getMany(ids))).size;
    expect(await held()).toBe(0);
    const page = await b.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, undefined, bob.getAccessToken()!);
    expect(page.status).toBe(200);
    expect(page.json.chunk.filter((e: { type: string }) => e.type === 'm.room.message')).toEqual([]);
    expect(await held()).toBe(0);
    expect(warnings.some((w) => /backfill from .*: dropped .*not an event of this room/.test(w))).toBe(true);
    expect(warnings.some((w) => /backfill from .*: dropped a malformed event/.test(w))).toBe(true);
    expect(warnings.some((w) => /backfill from .*: dropped .*no valid signature/.test(w))).toBe(true);
  }, 60_000);
});
