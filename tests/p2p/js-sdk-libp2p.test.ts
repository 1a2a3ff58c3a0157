// Real homeservers (r7/federation) over REAL libp2p WebSockets on loopback through a circuit relay, each with a
// replicator and a matrix-js-sdk 43 client (in process, fetchFn into handleClient): invite across servers, join,
// chat both ways; one server stops while the others keep chatting; the author stops too; the first one restarts on
// its storage and seed and its client sees what it missed, fetched from the server that is not the author.
import { afterAll, describe, expect, it } from 'vitest';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import { createReplicator, type Replicator } from '../../src/p2p/replicator.js';
import { startTestServer, type TestServer } from '../homeserver/harness.js';
import { hexSigner, quietLogger } from '../support/federation.js';
import { ClientEvent } from 'matrix-js-sdk';
import { registerClient, waitFor } from '../clients/js-sdk-scenario.js';

/** startClient with a 1 s long-poll, so a test waiting on replication is not waiting on the poll. */
async function startAndSync(client: MatrixClient): Promise<void> {
  const prepared = new Promise<void>((resolve, reject) => {
    client.on(ClientEvent.Sync, (state, _prev, data) => {
      if (state === 'PREPARED') resolve();
      if (state === 'ERROR') reject(data?.error ?? new Error('sync error'));
    });
  });
  await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: true, pollTimeout: 1_000 });
  await prepared;
}

interface Node {
  seed: Uint8Array;
  server: TestServer;
  transport?: Libp2pFederationTransport;
  replicator?: Replicator;
}

const nodes: Node[] = [];
const clients: MatrixClient[] = [];
let relay: Relay | undefined;

async function goOnline(node: Node, relays: string[]): Promise<void> {
  node.transport = await createNodeTransport({ seed: node.seed, relays });
  expect(node.transport.localServer).toBe(node.server.serverName);
  node.replicator = createReplicator({
    storage: node.server.storage,
    transport: node.transport,
    homeserver: node.server.homeserver,
    outbox: { backoffBaseMs: 200, backoffMaxMs: 2_000 },
    catchUp: { antiEntropyIntervalMs: 2_000 },
  });
  await node.replicator.start();
  await waitFor('relay reservation', () => node.transport!.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')));
}

async function goOffline(node: Node): Promise<void> {
  node.replicator?.stop();
  await node.transport?.close();
  node.transport = undefined;
}

function clientOf(node: Node): { baseUrl: string; fetchFn: typeof fetch } {
  return { baseUrl: node.server.baseUrl, fetchFn: ((input: RequestInfo | URL, init?: RequestInit) => node.server.homeserver.handleClient(new Request(input, init))) as typeof fetch };
}

function bodies(client: MatrixClient, roomId: string): string[] {
  return (client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getType() === 'm.room.message').map((e) => e.getContent().body as string);
}

afterAll(async () => {
  for (const c of clients) c.stopClient();
  for (const n of nodes) await goOffline(n).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  for (const n of nodes) await n.server.close().catch(() => {});
  await relay?.stop();
});

describe('matrix-js-sdk clients on homeservers replicating over libp2p', () => {
  it('invite, join, chat both ways, a server stops and catches up from a non-author after restarting', async () => {
    relay = await createRelay();
    const relays = relay.addresses();
    for (let i = 0; i < 3; i++) {
      const signer = await hexSigner(71 + i);
      const node: Node = { seed: new Uint8Array(32).fill(71 + i), server: await startTestServer({ signer, log: quietLogger }) };
      nodes.push(node);
      await goOnline(node, relays);
    }
    const [a, b, c] = nodes as [Node, Node, Node];
    const alice = await registerClient(clientOf(a), 'alice');
    const bob = await registerClient(clientOf(b), 'bob');
    let carol = await registerClient(clientOf(c), 'carol');
    clients.push(alice, bob, carol);
    await Promise.all([startAndSync(alice), startAndSync(bob), startAndSync(carol)]);

    const { room_id: roomId } = await alice.createRoom({ name: 'over libp2p' });
    await alice.invite(roomId, bob.getUserId()!);
    await alice.invite(roomId, carol.getUserId()!);
    await waitFor('bob invited', () => bob.getRoom(roomId)?.getMyMembership() === 'invite', 20_000);
    await waitFor('carol invited', () => carol.getRoom(roomId)?.getMyMembership() === 'invite', 20_000);
    await bob.joinRoom(roomId);
    await carol.joinRoom(roomId);

    await alice.sendTextMessage(roomId, 'hello from alice');
    await waitFor('bob sees alice', () => bodies(bob, roomId).includes('hello from alice'), 20_000);
    await waitFor('carol sees alice', () => bodies(carol, roomId).includes('hello from alice'), 20_000);
    await bob.sendTextMessage(roomId, 'hello from bob');
    await waitFor('alice sees bob', () => bodies(alice, roomId).includes('hello from bob'), 20_000);

    // carol's server stops; alice and bob keep chatting.
    carol.stopClient();
    await goOffline(c);
    await alice.sendTextMessage(roomId, 'while carol is away');
    await bob.sendTextMessage(roomId, 'bob too');
    await waitFor('alice and bob in step', () => bodies(alice, roomId).includes('bob too') && bodies(bob, roomId).includes('while carol is away'), 20_000);
    // The author's server goes away as well, and bob's pushes to c are dropped: only anti-entropy with b can help.
    alice.stopClient();
    await goOffline(a);
    await b.server.storage.write((t) => t.outbound.ack(c.server.serverName, Number.MAX_SAFE_INTEGER));

    // carol's server restarts on the same storage and seed; a new client with carol's token syncs.
    const asked = new Set<string>();
    await goOnline(c, relays);
    c.replicator!.events.addEventListener('catchup:progress', (e) => asked.add((e as CustomEvent).detail.peer));
    carol = createClient({ ...clientOf(c), userId: carol.getUserId()!, accessToken: carol.getAccessToken()!, deviceId: carol.getDeviceId()! });
    clients.push(carol);
    await startAndSync(carol);
    await waitFor('carol caught up', () => bodies(carol, roomId).includes('while carol is away') && bodies(carol, roomId).includes('bob too'), 30_000);
    expect(asked.has(b.server.serverName)).toBe(true);
    expect(asked.has(a.server.serverName)).toBe(false);
    // And the conversation goes on from carol.
    await carol.sendTextMessage(roomId, 'back');
    await waitFor('bob sees carol', () => bodies(bob, roomId).includes('back'), 20_000);
  }, 180_000);
});
