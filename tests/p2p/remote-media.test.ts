// Remote media over the p2p transports with real homeservers and replicators: a user on A uploads an image
// (matrix-js-sdk), users on B and C download it through their own servers and get identical bytes; with A
// offline, C's server fetches it from B, which cached it. Once on the seeded memory network (virtual time),
// once over real libp2p WebSockets through a circuit relay on loopback.
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import { createReplicator, type Replicator } from '../../src/p2p/replicator.js';
import { cachedMediaKey } from '../../src/homeserver/media/index.js';
import { startTestServer, type TestServer } from '../homeserver/harness.js';
import { hexSigner, quietLogger } from '../support/federation.js';
import { expectImage, IMAGE, mediaIdOf, mediaUser, shareRoom, uploadImage } from '../support/remote-media.js';
import { waitFor } from '../clients/js-sdk-scenario.js';
import { createRealSim, type RealSim } from './simulation/real-harness.js';

let sim: RealSim | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

describe('remote media over the p2p transports', () => {
  it('memory network: B and C get A\'s image; with A offline C gets it from B', async () => {
    sim = await createRealSim({ seed: 5, servers: 3, network: { minDelayMs: 1, maxDelayMs: 5 } });
    const [a, b, c] = sim.peers as [any, any, any];
    const settle = () => sim!.quiesce();
    const alice = await mediaUser(a.server, 'alice');
    const bob = await mediaUser(b.server, 'bob');
    const carol = await mediaUser(c.server, 'carol');
    await shareRoom(alice, [bob, carol], settle);
    const mxc = await uploadImage(alice);
    await expectImage(bob, mxc);
    expect(await b.server.storage.read((t: any) => t.media.get(cachedMediaKey(a.name, mediaIdOf(mxc))))).toMatchObject({ size: IMAGE.byteLength });

    sim.network.partition([a.name], [b.name, c.name]);
    await expectImage(carol, mxc);
    expect(await c.server.storage.read((t: any) => t.media.get(cachedMediaKey(a.name, mediaIdOf(mxc))))).toMatchObject({ size: IMAGE.byteLength });
  }, 60_000);

  it('libp2p WebSockets through a relay: B and C get A\'s image; with A offline C gets it from B', async () => {
    const relay: Relay = await createRelay();
    cleanups.push(() => relay.stop());
    const servers: Array<{ server: TestServer; transport: Libp2pFederationTransport; replicator: Replicator }> = [];
    for (let i = 0; i < 3; i++) {
      const signer = await hexSigner(91 + i);
      const server = await startTestServer({ signer, log: quietLogger });
      const transport = await createNodeTransport({ seed: new Uint8Array(32).fill(91 + i), relays: relay.addresses() });
      const replicator = createReplicator({ storage: server.storage, transport, homeserver: server.homeserver, outbox: { backoffBaseMs: 200, backoffMaxMs: 2_000 } });
      await replicator.start();
      cleanups.push(async () => {
        replicator.stop();
        await transport.close();
        await server.close();
      });
      await waitFor('relay reservation', () => transport.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 15_000);
      servers.push({ server, transport, replicator });
    }
    const [a, b, c] = servers as [(typeof servers)[0], (typeof servers)[0], (typeof servers)[0]];
    const alice = await mediaUser(a.server, 'alice');
    const bob = await mediaUser(b.server, 'bob');
    const carol = await mediaUser(c.server, 'carol');
    const settle = () => waitFor('outboxes drained', () => servers.every((s) => s.replicator.idle()), 20_000).then(() => undefined);
    const roomId = await shareRoom(alice, [bob, carol], settle);
    await waitFor('C knows B is in the room', async () => (await c.server.homeserver.replication.rooms()).some((r) => r.roomId === roomId && r.servers.includes(b.server.serverName)), 20_000);

    const mxc = await uploadImage(alice);
    await expectImage(bob, mxc);

    // A goes offline; C's server is told of no A, tries it anyway (its origin), fails, and gets the file from B.
    a.replicator.stop();
    await a.transport.close();
    await expectImage(carol, mxc);
  }, 120_000);
});
